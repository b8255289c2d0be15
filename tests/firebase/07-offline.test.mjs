// 7. Writes made while offline (goOffline, then set / update / push / remove, then goOnline)
//    reach the other client, applied in the order they were made.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { goOffline, goOnline, onChildAdded, onValue, push, remove, set, update } from '@firebase/database';

import { Recorder, firebaseApp, koraOnly, read, same, serverWithApps, uniquePath, within } from './harness.mjs';

const { server, apps: [observer] } = serverWithApps(['observer']);

// firebase-server answers `p` after an asynchronous step and `m` at once, so it reorders a
// connection's writes.
const inOrder = { skip: koraOnly('it reorders a set followed by an update') };

test('set / update / remove made while offline are applied in order after goOnline, and the other client sees them', inOrder, async () => {
  const p = uniquePath('offline');
  const a = firebaseApp(server, 'a');
  await within(set(a.ref(p), { n: 0 }), 'online write');
  const seen = new Recorder('observer values');
  seen.track(onValue(observer.ref(p), (s) => seen.push(s.val())));
  await seen.until((v) => v.at(-1)?.n === 0, 'initial value');

  goOffline(a.db);
  // The states after each offline write, in order. Later writes overwrite earlier ones, so
  // applying them out of order shows.
  const states = [{ n: 0 }];
  const writes = [];
  const step = (promise, next) => {
    writes.push(promise);
    states.push(next);
  };
  // The first write replaces the whole location, so the writer's offline view is complete.
  step(set(a.ref(p), { n: 1 }), { n: 1 });
  step(update(a.ref(p), { n: 2, m: 'x' }), { n: 2, m: 'x' });
  step(set(a.ref(`${p}/n`), 3), { n: 3, m: 'x' });
  step(remove(a.ref(`${p}/m`)), { n: 3 });
  step(update(a.ref(p), { 'deep/k': 'v', n: 4 }), { n: 4, deep: { k: 'v' } });
  step(set(a.ref(`${p}/n`), 5), { n: 5, deep: { k: 'v' } });
  const final = states.at(-1);

  // Offline, the writer sees its own writes at once.
  const local = await new Promise((resolve) => onValue(a.ref(p), (s) => resolve(s.val()), { onlyOnce: true }));
  assert.deepEqual(local, final);

  goOnline(a.db);
  await within(Promise.all(writes), 'the offline writes acknowledged after goOnline');
  await seen.until((v) => v.length && same(v.at(-1), final), 'the final state');

  // Every state the observer saw is one of the states in order (it may skip some, but never
  // goes back or sees a mix that no prefix of the writes produces).
  const index = seen.events.map((v) => states.findIndex((s) => same(s, v)));
  assert.ok(!index.includes(-1), `observer saw a state that no prefix of the writes gives: ${JSON.stringify(seen.events)}`);
  for (let i = 1; i < index.length; i++) {
    assert.ok(index[i] >= index[i - 1], `states out of order: ${JSON.stringify(seen.events)}`);
  }
  assert.deepEqual((await read(observer.ref(p))).val(), final);
  seen.off();
  await a.close();
});

test('push() children made offline arrive in push order on the other client after goOnline', async () => {
  const p = uniquePath('offline-push');
  const a = firebaseApp(server, 'a');
  await within(set(a.ref(`${p}/ready`), true), 'connect');
  const added = new Recorder('observer child_added');
  added.track(onChildAdded(observer.ref(`${p}/list`), (s, prev) => added.push({ key: s.key, val: s.val(), prev })));

  goOffline(a.db);
  const refs = [];
  for (let i = 0; i < 10; i++) refs.push(push(a.ref(`${p}/list`), i));
  goOnline(a.db);
  await within(Promise.all(refs), 'pushes acknowledged');

  const evs = await added.take(10);
  assert.deepEqual(
    evs.map((e) => e.val),
    Array.from({ length: 10 }, (_, i) => i),
  );
  assert.deepEqual(
    evs.map((e) => e.key),
    refs.map((r) => r.key),
  );
  assert.deepEqual(
    evs.map((e) => e.prev),
    [null, ...refs.slice(0, -1).map((r) => r.key)],
  );
  added.off();
  await a.close();
});

test('a listener registered while offline gets the server data after goOnline, with the offline writes on top', async () => {
  const p = uniquePath('offline-listen');
  await within(set(observer.ref(p), { server: 1, overwritten: 'old' }), 'data written by another client');
  const a = firebaseApp(server, 'a');
  goOffline(a.db);
  const seen = new Recorder('a values');
  seen.track(onValue(a.ref(p), (s) => seen.push(s.val())));
  const w = set(a.ref(`${p}/overwritten`), 'new');
  goOnline(a.db);
  await within(w, 'offline write acknowledged');
  await seen.until(
    (v) => v.length && same(v.at(-1), { server: 1, overwritten: 'new' }),
    'server data merged with the offline write',
  );
  assert.deepEqual((await read(observer.ref(p))).val(), { server: 1, overwritten: 'new' });
  seen.off();
  await a.close();
});

test('writes from a client that goes offline and online repeatedly all arrive, last one wins', async () => {
  const p = uniquePath('flap');
  const a = firebaseApp(server, 'a');
  const writes = [];
  for (let round = 0; round < 5; round++) {
    goOffline(a.db);
    writes.push(set(a.ref(`${p}/r${round}`), round));
    writes.push(set(a.ref(`${p}/last`), round));
    goOnline(a.db);
    writes.push(set(a.ref(`${p}/online${round}`), true));
  }
  await within(Promise.all(writes), 'all writes acknowledged', 60_000);
  const v = (await read(observer.ref(p))).val();
  assert.equal(v.last, 4);
  for (let round = 0; round < 5; round++) {
    assert.equal(v[`r${round}`], round);
    assert.equal(v[`online${round}`], true);
  }
  await a.close();
});
