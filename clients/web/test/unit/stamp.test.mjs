import test from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const { Clock, encodeStamp, decodeStamp, MAX_SKEW_MS } = await load("stamp");

test("stamps increase while the wall clock stands still or goes back", () => {
  let now = 1_000;
  const clock = new Clock(7n, () => now);
  const a = clock.now();
  const b = clock.now();
  assert.ok(b > a);
  assert.deepEqual(decodeStamp(a), { hlc: 1_000n << 16n, origin: 7n });
  assert.deepEqual(decodeStamp(b), { hlc: (1_000n << 16n) | 1n, origin: 7n });
  now = 500;
  assert.ok(clock.now() > b);
});

test("observing a stamp makes the next local one newer; one too far ahead is refused", () => {
  const clock = new Clock(1n, () => 1_000);
  const remote = encodeStamp((1_050n << 16n) | 9n, 2n);
  assert.ok(clock.observe(remote));
  const next = clock.now();
  assert.ok(next > remote);
  assert.deepEqual(decodeStamp(next), { hlc: (1_050n << 16n) | 10n, origin: 1n });
  const far = encodeStamp(BigInt(1_000 + MAX_SKEW_MS + 1) << 16n, 2n);
  assert.ok(!clock.observe(far));
  assert.ok(clock.now() < far);
});

test("text matches kora-core's and sorts like the stamps", () => {
  // From the protocol docs' examples: a server stamp parses and prints back the same.
  const s = "01M8C189M50006JRPVXJA7XEA6";
  const p = decodeStamp(s);
  assert.equal(encodeStamp(p.hlc, p.origin), s);
  assert.equal(encodeStamp(0n, 0n), "0".repeat(26));
  assert.equal(encodeStamp((1n << 64n) - 1n, (1n << 64n) - 1n), "7" + "Z".repeat(25));
  assert.ok(encodeStamp(5n, 9n) < encodeStamp(6n, 1n));
  assert.ok(encodeStamp(5n, 1n) < encodeStamp(5n, 2n));
  assert.equal(decodeStamp("not a stamp"), null);
  assert.equal(decodeStamp("8" + "0".repeat(25)), null);
  assert.deepEqual(decodeStamp(s.toLowerCase()), p);
});

test("two clocks with different origins never issue equal stamps", () => {
  const a = new Clock(1n, () => 5);
  const b = new Clock(2n, () => 5);
  const seen = new Set();
  for (let i = 0; i < 1000; i++) {
    for (const s of [a.now(), b.now()]) {
      assert.ok(!seen.has(s));
      seen.add(s);
    }
  }
});
