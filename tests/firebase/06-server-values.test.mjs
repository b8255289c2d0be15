// 6. Server values: serverTimestamp() is resolved by the server to its clock (a number close to
//    now on the other client); increment(n) is applied atomically by the server (two clients
//    concurrently lose nothing).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { increment, onValue, push, serverTimestamp, set, setWithPriority, update } from '@firebase/database';

import { Recorder, firebaseApp, koraOnly, onceValue, read, serverWithApps, uniquePath, within } from './harness.mjs';

const { server, apps: [a, b] } = serverWithApps(['a', 'b']);

const near = (ts, from, to) => Number.isInteger(ts) && ts >= from - 2000 && ts <= to + 2000;

test('serverTimestamp() reaches the other client as an integer close to now, equal to what the writer ends up with', async () => {
  const p = uniquePath('ts');
  const seen = new Recorder('b values');
  seen.track(onValue(b.ref(p), (s) => seen.push(s.val())));
  await seen.until((v) => v.length === 1, 'initial null');
  const t0 = Date.now();
  await within(set(a.ref(p), { at: serverTimestamp(), label: 'x' }), 'set with serverTimestamp');
  const t1 = Date.now();
  const evs = await seen.until((v) => v.at(-1)?.label === 'x', 'the write');
  const at = evs.at(-1).at;
  assert.ok(near(at, t0, t1), `timestamp ${at} within [${t0}, ${t1}] ± 2 s`);
  // The writer's own copy, after the acknowledgement, is the server's value.
  const mine = (await read(a.ref(`${p}/at`))).val();
  assert.equal(mine, at);
  seen.off();
});

test('serverTimestamp() inside update(), push() and as a priority is resolved too', async () => {
  const p = uniquePath('ts-more');
  const t0 = Date.now();
  await within(update(a.ref(p), { 'x/at': serverTimestamp(), y: { nested: { at: serverTimestamp() } } }), 'update');
  const pushed = push(a.ref(`${p}/log`), { at: serverTimestamp() });
  await within(pushed, 'push');
  await within(setWithPriority(a.ref(`${p}/prio`), 'v', serverTimestamp()), 'priority');
  const t1 = Date.now();
  const v = (await read(b.ref(p))).val();
  assert.ok(near(v.x.at, t0, t1), `update leaf ${v.x.at}`);
  assert.ok(near(v.y.nested.at, t0, t1), `nested ${v.y.nested.at}`);
  assert.ok(near(v.log[pushed.key].at, t0, t1), `pushed ${v.log[pushed.key].at}`);
  assert.equal(v.prio, 'v');
  const prio = (await read(b.ref(`${p}/prio`))).priority;
  assert.ok(near(prio, t0, t1), `priority ${prio}`);
});

test('increment(n) adds to a number, creates a missing value, and replaces a non-number', { skip: koraOnly('it does not resolve increment') }, async () => {
  const p = uniquePath('inc');
  await within(set(a.ref(p), { n: 5, s: 'text', f: 1.5 }), 'initial');
  await within(set(a.ref(`${p}/n`), increment(3)), 'n + 3');
  await within(set(a.ref(`${p}/missing`), increment(4)), 'missing + 4');
  await within(set(a.ref(`${p}/s`), increment(2)), 'string + 2');
  await within(update(a.ref(p), { f: increment(0.25), 'deep/m': increment(-1) }), 'update with increments');
  assert.deepEqual((await read(b.ref(p))).val(), { n: 8, missing: 4, s: 2, f: 1.75, deep: { m: -1 } });
  // Integers stay integers.
  await within(set(a.ref(`${p}/n`), increment(1)), 'n + 1');
  const n = (await read(b.ref(`${p}/n`))).val();
  assert.equal(n, 9);
  assert.ok(Number.isInteger(n));
});

test('increment(1) from two clients at once, 25 each without waiting, loses no increment (50)', { skip: koraOnly('it does not resolve increment') }, async () => {
  const p = uniquePath('inc-race');
  const seen = new Recorder('b values');
  seen.track(onValue(b.ref(p), (s) => seen.push(s.val())));
  const writes = [];
  for (let i = 0; i < 25; i++) {
    writes.push(set(a.ref(p), increment(1)));
    writes.push(set(b.ref(p), increment(1)));
  }
  await within(Promise.all(writes), 'all 50 increments acknowledged', 60_000);
  await seen.until((v) => v.at(-1) === 50, 'the final 50 on the listening client');
  // A third client reading fresh gets 50 too.
  const c = firebaseApp(server, 'c');
  assert.equal((await read(c.ref(p))).val(), 50);
  await c.close();
  seen.off();
});

test('increment() in update() on several children from two clients sums per child', { skip: koraOnly('it does not resolve increment') }, async () => {
  const p = uniquePath('inc-multi');
  const writes = [];
  for (let i = 0; i < 10; i++) {
    writes.push(update(a.ref(p), { x: increment(1), y: increment(2) }));
    writes.push(update(b.ref(p), { x: increment(1), 'z/w': increment(10) }));
  }
  await within(Promise.all(writes), 'all updates acknowledged', 60_000);
  const c = firebaseApp(server, 'c');
  assert.deepEqual((await read(c.ref(p))).val(), { x: 20, y: 20, z: { w: 100 } });
  await c.close();
});

test('the server clock in the handshake (.info/serverTimeOffset) is epoch milliseconds: the offset is near 0', async () => {
  const c = firebaseApp(server, 'clock');
  // A write makes sure the connection (and its handshake) happened.
  await within(set(c.ref(`${uniquePath('clock')}/x`), 1), 'a write');
  const offset = (await onceValue(c.ref('.info/serverTimeOffset'))).val();
  assert.equal(typeof offset, 'number');
  assert.ok(Math.abs(offset) < 5000, `serverTimeOffset ${offset} ms`);
  await c.close();
});
