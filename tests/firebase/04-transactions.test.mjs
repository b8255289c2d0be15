// 4. runTransaction: concurrent increments from two clients lose nothing; the server's
//    compare-and-set hash matches the SDK's for any data (else every transaction would end in
//    `maxretry`).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { onValue, runTransaction, set } from '@firebase/database';

import { Recorder, koraOnly, read, serverWithApps, uniquePath, within } from './harness.mjs';

const { apps: [a, b, reader] } = serverWithApps(['tx-a', 'tx-b', 'reader']);

const N = 25;

async function incrementLoop(client, path, n) {
  const results = [];
  for (let i = 0; i < n; i++) {
    const r = await within(
      runTransaction(client.ref(path), (v) => (v ?? 0) + 1),
      `${client.name} transaction ${i}`,
      60_000,
    );
    results.push(r);
  }
  return results;
}

test(`2 clients × ${N} sequential runTransaction increments on one counter end at exactly ${2 * N}, each value committed once`, async () => {
  const p = uniquePath('tx-counter');
  const [ra, rb] = await Promise.all([incrementLoop(a, p, N), incrementLoop(b, p, N)]);
  const all = [...ra, ...rb];
  assert.ok(all.every((r) => r.committed), 'every transaction committed');
  // Each committed transaction wrote a distinct value 1..2N: no increment was lost or doubled.
  const written = all.map((r) => r.snapshot.val()).sort((x, y) => x - y);
  assert.deepEqual(written, Array.from({ length: 2 * N }, (_, i) => i + 1));
  assert.equal((await read(reader.ref(p))).val(), 2 * N);
});

test(`2 clients × ${N} runTransaction increments issued at once (not awaited one by one) end at exactly ${2 * N}`, async () => {
  const p = uniquePath('tx-burst');
  const fire = (client) =>
    Array.from({ length: N }, (_, i) =>
      within(runTransaction(client.ref(p), (v) => (v ?? 0) + 1), `${client.name} burst ${i}`, 60_000),
    );
  const results = await Promise.all([...fire(a), ...fire(b)]);
  assert.ok(results.every((r) => r.committed), 'every transaction committed');
  assert.equal((await read(reader.ref(p))).val(), 2 * N);
});

test('a transaction on a child of a node another client listens to is seen by that listener', async () => {
  const p = uniquePath('tx-seen');
  await within(set(a.ref(p), { count: 1, name: 'x' }), 'initial');
  const seen = new Recorder('listener on the parent');
  seen.track(onValue(b.ref(p), (s) => seen.push(s.val())));
  await seen.until((v) => v.length && v.at(-1)?.count === 1, 'initial value');
  const r = await within(runTransaction(a.ref(`${p}/count`), (v) => v + 41), 'transaction');
  assert.equal(r.committed, true);
  assert.equal(r.snapshot.val(), 42);
  await seen.until((v) => v.at(-1)?.count === 42, 'count 42 on the other client');
  assert.deepEqual(seen.events.at(-1), { count: 42, name: 'x' });
  seen.off();
});

test('a transaction that returns undefined aborts: committed is false and the data is unchanged', async () => {
  const p = uniquePath('tx-abort');
  await within(set(a.ref(p), { v: 7 }), 'initial');
  const r = await within(
    runTransaction(a.ref(p), (cur) => {
      if (cur && cur.v === 7) return undefined;
      return { v: -1 };
    }),
    'aborting transaction',
  );
  assert.equal(r.committed, false);
  assert.deepEqual(r.snapshot.val(), { v: 7 });
  assert.deepEqual((await read(reader.ref(p))).val(), { v: 7 });
});

test('a transaction on an absent location starts from null and creates it', async () => {
  const p = uniquePath('tx-absent');
  let sawNull = false;
  const r = await within(
    runTransaction(a.ref(`${p}/new`), (cur) => {
      if (cur === null) sawNull = true;
      return { created: true, n: (cur?.n ?? 0) + 1 };
    }),
    'transaction',
  );
  assert.ok(sawNull, 'the update function saw null');
  assert.equal(r.committed, true);
  assert.deepEqual((await read(reader.ref(`${p}/new`))).val(), { created: true, n: 1 });
});

// The client sends `h` = hash of what it believes is stored; the server must compute the same
// hash of its data (docs: firebase-protocol.md §5.1). Data chosen to exercise every hashing
// rule: integer-like keys (1 < 01 < 001 < 10), priorities on leaves and nodes (number and
// string), floats, negative numbers, booleans, unicode strings, nesting.
const HASH_CASES = {
  'integer-like keys': { 1: 10, '01': 7, '001': 8, 10: 20, 11: 29, 12: 25, A: 15 },
  'keys B2, B1': { B2: 2, B1: 1 },
  'leaf with priority': { '.value': 2, '.priority': 1 },
  'node with priority': { '.priority': 2, A: 2 },
  'children with priorities': { B1: { '.value': 1, '.priority': 2 }, B2: { '.value': 2, '.priority': 1 }, B3: 3 },
  'string priorities and nesting': {
    x: { '.priority': 'p', deep: { a: 'é日本', b: -0.5 } },
    y: { '.value': true, '.priority': 'a' },
    z: false,
  },
  floats: { f1: 0.1, f2: 1e21, f3: -123.456, f4: 2 ** 40, f5: 1 / 3 },
  'a float leaf': 0.1,
  'a string leaf': 'i',
  'a boolean leaf': true,
  'a large integer leaf': 1234567890123,
};
// firebase-server's hash sorts keys as plain strings and drops priorities (a known divergence
// from the SDK): those cases cannot commit there.
const FIREBASE_SERVER_HASH_BUGS = new Set([
  'integer-like keys',
  'children with priorities',
  'string priorities and nesting',
]);
// Not tested: numbers whose JS SDK hash is not their IEEE-754 bits. The SDK's
// doubleToIEEE754String rounds 2^53-1 (9007199254740991) to 0x4340000000000000, so no server
// that hashes the true bits can commit a JS transaction over that value.

for (const [name, value] of Object.entries(HASH_CASES)) {
  const opts = { skip: FIREBASE_SERVER_HASH_BUGS.has(name) && koraOnly('its hash diverges from the SDK here') };
  test(`a transaction over existing data commits (server hash matches the SDK's): ${name}`, opts, async () => {
    const p = uniquePath('tx-hash');
    await within(set(a.ref(`${p}/v`), value), 'write the data');
    // The data (with its priorities) round-trips.
    assert.deepEqual((await read(reader.ref(`${p}/v`))).exportVal(), value);
    // Client b has no copy yet: a first run may see null (its put then carries the hash of
    // nothing, which the server must refuse as stale); the run on the server's data must commit.
    let calls = 0;
    const r = await within(
      runTransaction(b.ref(`${p}/v`), (cur) => {
        calls++;
        return cur === null ? 'first-run' : { replaced: true };
      }),
      `transaction over ${name}`,
      60_000,
    );
    assert.equal(r.committed, true, `committed (update function ran ${calls} times)`);
    assert.deepEqual(r.snapshot.val(), { replaced: true });
    assert.deepEqual((await read(reader.ref(`${p}/v`))).val(), { replaced: true });
  });
}
