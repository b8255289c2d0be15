// 2. value and child events on a second client, with the right previous-child keys, in key
//    order and under orderByChild / orderByValue / orderByPriority.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  onChildAdded,
  onChildChanged,
  onChildMoved,
  onChildRemoved,
  onValue,
  orderByChild,
  orderByPriority,
  orderByValue,
  query,
  remove,
  set,
  setPriority,
  update,
} from '@firebase/database';

import { Recorder, keys, same, serverWithApps, uniquePath, within } from './harness.mjs';

const { apps: [writer, observer] } = serverWithApps(['writer', 'observer']);

/** Record child_added/changed/removed/moved of `q` as {type, key, val, prev}. */
function recordChildEvents(q, label) {
  const rec = new Recorder(label);
  const cancel = (err) => rec.push({ type: 'cancel', error: String(err) });
  rec.track(onChildAdded(q, (s, prev) => rec.push({ type: 'added', key: s.key, val: s.val(), prev }), cancel));
  rec.track(onChildChanged(q, (s, prev) => rec.push({ type: 'changed', key: s.key, val: s.val(), prev }), cancel));
  rec.track(onChildMoved(q, (s, prev) => rec.push({ type: 'moved', key: s.key, val: s.val(), prev }), cancel));
  rec.track(onChildRemoved(q, (s) => rec.push({ type: 'removed', key: s.key, val: s.val() }), cancel));
  return rec;
}

/** Record value events of `q` as {keys, val}. */
function recordValues(q, label) {
  const rec = new Recorder(label);
  rec.track(
    onValue(
      q,
      (s) => rec.push({ keys: keys(s), val: s.val() }),
      (err) => rec.push({ cancel: String(err) }),
    ),
  );
  return rec;
}

test('child events in key order on a second client carry the right previous-child keys', async () => {
  const p = uniquePath('child-key');
  await within(set(writer.ref(p), { a: 1, c: 3 }), 'initial set');
  const ev = recordChildEvents(observer.ref(p), 'child events');
  const values = recordValues(observer.ref(p), 'values');

  assert.deepEqual(await ev.take(2), [
    { type: 'added', key: 'a', val: 1, prev: null },
    { type: 'added', key: 'c', val: 3, prev: 'a' },
  ]);

  await within(set(writer.ref(`${p}/b`), 2), 'add b');
  assert.deepEqual(await ev.next(), { type: 'added', key: 'b', val: 2, prev: 'a' });

  await within(set(writer.ref(`${p}/c`), 30), 'change c');
  assert.deepEqual(await ev.next(), { type: 'changed', key: 'c', val: 30, prev: 'b' });

  await within(set(writer.ref(`${p}/a/deep/x`), 1), 'deep change under a');
  assert.deepEqual(await ev.next(), { type: 'changed', key: 'a', val: { deep: { x: 1 } }, prev: null });

  await within(remove(writer.ref(`${p}/b`)), 'remove b');
  assert.deepEqual(await ev.next(), { type: 'removed', key: 'b', val: 2 });

  await within(update(writer.ref(p), { d: 4, e: 5 }), 'update adding d and e');
  assert.deepEqual(await ev.take(2), [
    { type: 'added', key: 'd', val: 4, prev: 'c' },
    { type: 'added', key: 'e', val: 5, prev: 'd' },
  ]);

  const last = await values.until(
    (evs) => evs.length && same(evs.at(-1).val, { a: { deep: { x: 1 } }, c: 30, d: 4, e: 5 }),
    'the final value',
  );
  assert.deepEqual(last.at(-1).keys, ['a', 'c', 'd', 'e']);
  assert.deepEqual(ev.drain(), [], 'no further child events');
  ev.off();
  values.off();
});

test('child events under orderByChild on a second client: moved and changed with the new previous key', async () => {
  const p = uniquePath('child-order');
  await within(set(writer.ref(p), { a: { score: 10 }, b: { score: 20 }, c: { score: 30 } }), 'initial set');
  const q = query(observer.ref(p), orderByChild('score'));
  const ev = recordChildEvents(q, 'ordered child events');
  const values = recordValues(q, 'ordered values');

  assert.deepEqual(await ev.take(3), [
    { type: 'added', key: 'a', val: { score: 10 }, prev: null },
    { type: 'added', key: 'b', val: { score: 20 }, prev: 'a' },
    { type: 'added', key: 'c', val: { score: 30 }, prev: 'b' },
  ]);

  // a: 10 → 25 moves it after b: order b, a, c.
  await within(set(writer.ref(`${p}/a/score`), 25), 'a to 25');
  assert.deepEqual(await ev.take(2), [
    { type: 'moved', key: 'a', val: { score: 25 }, prev: 'b' },
    { type: 'changed', key: 'a', val: { score: 25 }, prev: 'b' },
  ]);

  // d: 5 enters first: order d, b, a, c.
  await within(set(writer.ref(`${p}/d`), { score: 5 }), 'add d');
  assert.deepEqual(await ev.next(), { type: 'added', key: 'd', val: { score: 5 }, prev: null });

  await within(remove(writer.ref(`${p}/b`)), 'remove b');
  assert.deepEqual(await ev.next(), { type: 'removed', key: 'b', val: { score: 20 } });

  // c: 30 → 1 moves it to the front: order c, d, a.
  await within(update(writer.ref(`${p}/c`), { score: 1 }), 'c to 1');
  assert.deepEqual(await ev.take(2), [
    { type: 'moved', key: 'c', val: { score: 1 }, prev: null },
    { type: 'changed', key: 'c', val: { score: 1 }, prev: null },
  ]);

  // A change that keeps the order fires changed only (no moved).
  await within(set(writer.ref(`${p}/d/label`), 'x'), 'label d');
  assert.deepEqual(await ev.next(), { type: 'changed', key: 'd', val: { score: 5, label: 'x' }, prev: 'c' });

  // Equal scores tie by key: e (5) sorts after d (5).
  await within(set(writer.ref(`${p}/e`), { score: 5 }), 'add e');
  assert.deepEqual(await ev.next(), { type: 'added', key: 'e', val: { score: 5 }, prev: 'd' });

  // A child without the ordering child sorts first (null).
  await within(set(writer.ref(`${p}/z`), { other: true }), 'add z without score');
  assert.deepEqual(await ev.next(), { type: 'added', key: 'z', val: { other: true }, prev: null });

  const last = await values.until(
    (evs) => evs.length && evs.at(-1).keys.length === 5,
    'value with five children',
  );
  assert.deepEqual(last.at(-1).keys, ['z', 'c', 'd', 'e', 'a']);
  assert.deepEqual(ev.drain(), [], 'no further child events');
  ev.off();
  values.off();
});

test('child_moved under orderByValue and orderByPriority on a second client', async () => {
  const p = uniquePath('moved');
  await within(set(writer.ref(`${p}/v`), { a: 1, b: 2, c: 3 }), 'values');
  const byValue = recordChildEvents(query(observer.ref(`${p}/v`), orderByValue()), 'orderByValue events');
  assert.deepEqual(
    (await byValue.take(3)).map((e) => [e.type, e.key, e.prev]),
    [
      ['added', 'a', null],
      ['added', 'b', 'a'],
      ['added', 'c', 'b'],
    ],
  );
  await within(set(writer.ref(`${p}/v/a`), 'text'), 'a becomes a string (strings sort after numbers)');
  assert.deepEqual(
    (await byValue.take(2)).map((e) => [e.type, e.key, e.val, e.prev]),
    [
      ['moved', 'a', 'text', 'c'],
      ['changed', 'a', 'text', 'c'],
    ],
  );
  byValue.off();

  await within(
    set(writer.ref(`${p}/pr`), {
      a: { '.value': 'A', '.priority': 1 },
      b: { '.value': 'B', '.priority': 2 },
      c: { '.value': 'C', '.priority': 3 },
    }),
    'values with priorities',
  );
  const byPriority = recordChildEvents(query(observer.ref(`${p}/pr`), orderByPriority()), 'orderByPriority events');
  assert.deepEqual(
    (await byPriority.take(3)).map((e) => [e.type, e.key, e.prev]),
    [
      ['added', 'a', null],
      ['added', 'b', 'a'],
      ['added', 'c', 'b'],
    ],
  );
  await within(setPriority(writer.ref(`${p}/pr/c`), 0), 'c gets priority 0');
  // Only the priority changed: child_moved, then child_changed (a priority change is a change).
  const evs = await byPriority.take(2);
  assert.deepEqual(
    evs.map((e) => [e.type, e.key, e.prev]),
    [
      ['moved', 'c', null],
      ['changed', 'c', null],
    ],
  );
  byPriority.off();
});

test('value events on a second client follow each write, and an ordered query iterates in index order', async () => {
  const p = uniquePath('values');
  const values = recordValues(query(observer.ref(p), orderByChild('n')), 'values');
  await values.until((evs) => evs.length === 1, 'initial value');
  assert.deepEqual(values.events[0], { keys: [], val: null });

  await within(set(writer.ref(p), { x: { n: 3 }, y: { n: 1 }, z: { n: 2 } }), 'set');
  let evs = await values.until((e) => e.length && e.at(-1).keys.length === 3, 'three children');
  assert.deepEqual(evs.at(-1).keys, ['y', 'z', 'x']);

  await within(update(writer.ref(p), { 'y/n': 9 }), 'move y last');
  evs = await values.until((e) => e.at(-1).val?.y?.n === 9, 'y moved');
  assert.deepEqual(evs.at(-1).keys, ['z', 'x', 'y']);

  await within(remove(writer.ref(p)), 'remove');
  evs = await values.until((e) => e.at(-1).val === null, 'null');
  values.off();
});
