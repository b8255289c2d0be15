// The shared conformance vectors (crates/kora-core/tests/data, from /work/shared/conformance),
// run verbatim against the web client's code: `combine` (Riptide's vectors) and the local
// view's laying of stamped writes (Kora's stamped-apply vectors, every permutation, with
// repeats), which is what pending writes of several tabs look like to a reader.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load, root } from "./load.mjs";

const { combine, fromWire } = await load("mutation");
const { combinePending, overlay } = await load("view");
const { encodeStamp } = await load("stamp");

const data = (name) => JSON.parse(readFileSync(join(root, "../../crates/kora-core/tests/data", name), "utf8"));

function permutations(items) {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

test("every Riptide combine vector passes", () => {
  const cases = data("riptide-mutations.json");
  assert.ok(cases.length > 0);
  for (const [name, op, a, b, expected] of cases) {
    assert.equal(op, "combine", name);
    assert.deepEqual(combine(fromWire(a), fromWire(b)), fromWire(expected), name);
  }
});

test("every stamped-apply vector gives its tree in any order, with repeats", () => {
  const cases = data("stamped-apply.json");
  assert.ok(cases.length > 0);
  let runs = 0;
  for (const [name, writes, expected] of cases) {
    // The vectors' stamps are integers standing for ordered stamps: use them as milliseconds,
    // with different origins so that equal numbers would still be distinct stamps.
    const stamped = writes.map(([n, m], i) => ({ stamp: encodeStamp(BigInt(n) << 16n, BigInt(i + 1)), mutation: fromWire(m) }));
    for (const order of permutations(stamped)) {
      for (const list of [order, [...order, ...order.slice().reverse()]]) {
        const view = overlay(null, { path: "" }, combinePending(list));
        assert.deepEqual(view ?? {}, expected, `${name}: ${list.map((w) => w.stamp).join(", ")}`);
        runs++;
      }
    }
  }
  assert.ok(runs >= cases.length * 2);
});
