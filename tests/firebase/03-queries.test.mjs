// 3. Every query form, one-shot (`get(query(…))`) and live (a listener), against results worked
//    out by hand from Firebase's documented ordering:
//    - keys: integer-like keys (32-bit, `^-?0*\d{1,10}$`) first, numerically (equal numbers:
//      shorter first), then the rest as strings (UTF-16 code units);
//    - values (orderByChild / orderByValue): null < false < true < numbers < strings < objects,
//      ties by key;
//    - priorities (orderByPriority, also the default order when a limit or range is given
//      without orderBy): none < numbers < strings, ties by key.
//    Then live limited / ranged queries whose window changes.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  endAt,
  endBefore,
  equalTo,
  limitToFirst,
  limitToLast,
  onChildAdded,
  onChildChanged,
  onChildMoved,
  onChildRemoved,
  onValue,
  orderByChild,
  orderByKey,
  orderByPriority,
  orderByValue,
  query,
  remove,
  set,
  setPriority,
  setWithPriority,
  startAfter,
  startAt,
  update,
} from '@firebase/database';

import { Recorder, entries, keys, onceValue, read, serverWithApps, uniquePath, within } from './harness.mjs';

const base = uniquePath('queries');

// ---- the data sets --------------------------------------------------------------------------

// Children ordered by their child `v` (orderByChild('v')).
const SCORES = {
  3: { other: 1 }, // no v: null
  nv: { other: 2 }, // no v: null
  f: { v: false },
  t: { v: true },
  m1: { v: -1 },
  z0: { v: 0 },
  d: { v: 2.5 },
  10: { v: 10 },
  2: { v: 10 },
  i10: { v: 10 },
  s1: { v: '10' },
  sA: { v: 'A' },
  sa: { v: 'a' },
  o2: { v: { x: 1 } },
  o: { v: { y: 2 } },
};
// By v: nulls (3, nv), false, true, -1, 0, 2.5, 10 ×3 by key (2 < 10 < i10), then strings
// "10" < "A" < "a", then objects by key.
const BY_V = ['3', 'nv', 'f', 't', 'm1', 'z0', 'd', '2', '10', 'i10', 's1', 'sA', 'sa', 'o', 'o2'];
// By key: integer keys numerically, then strings.
const SCORES_BY_KEY = ['2', '3', '10', 'd', 'f', 'i10', 'm1', 'nv', 'o', 'o2', 's1', 'sA', 'sa', 't', 'z0'];

// Children ordered by a nested child `a/b`.
const NESTED = { x: { a: { b: 3 } }, y: { a: { b: 1 } }, z: { a: 2 }, w: { a: { b: 2 } }, u: { a: { b: 2 } } };
// z: a is a leaf, so a/b is null.
const BY_AB = ['z', 'y', 'u', 'w', 'x'];

// Keys only (orderByKey).
const KEY_LIST = ['~', 'a', '_', 'A', '2147483648', '-', '10', '9', '01', '1', '00', '0', '-5'];
const KEYS = Object.fromEntries(KEY_LIST.map((k) => [k, `v${k}`]));
// -5, 0, 00 (same number, longer), 1, 01, 9, 10 are 32-bit integers; 2147483648 is not (it is
// past 2^31-1) so it is a string, and strings compare by code unit: - 2 A _ a ~.
const BY_KEY = ['-5', '0', '00', '1', '01', '9', '10', '-', '2147483648', 'A', '_', 'a', '~'];

// Children ordered by value (orderByValue).
const VALUES = { a: 3, b: 'x', c: true, d: false, e: 1, f: 3, g: { k: 1 }, h: 'X', i: -2 };
const BY_VALUE = ['d', 'c', 'i', 'e', 'a', 'f', 'h', 'b', 'g'];

// Children with priorities (orderByPriority), written in export format.
const PRIORITIES = {
  a: { '.value': 'va', '.priority': 10 },
  b: { '.value': 'vb', '.priority': 'x' },
  c: 'vc',
  d: { '.value': 'vd', '.priority': 2 },
  e: { '.value': 've', '.priority': 'a' },
  f: { '.value': 'vf', '.priority': 2 },
  g: 'vg',
};
// No priority (c, g by key), numbers (d 2, f 2, a 10), strings ('a' e, 'x' b).
const BY_PRIORITY = ['c', 'g', 'd', 'f', 'a', 'e', 'b'];
const plain = (v) => (v && typeof v === 'object' && '.value' in v ? v['.value'] : v);

// oneShot only calls get() and never holds a listener, so every get() goes to the server;
// live only listens.
const { apps: [writer, oneShot, live] } = serverWithApps(['writer', 'one-shot', 'live'], {
  prepare: () =>
    within(
      set(writer.ref(base), { scores: SCORES, nested: NESTED, keys: KEYS, values: VALUES, priorities: PRIORITIES }),
      'writing the data sets',
    ),
});

const fmt = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
const label = (name, args) => `${name}(${args.map(fmt).join(', ')})`;

// Each case: [description, data set, constraint list builder, expected keys in order].
function c(name, ...args) {
  const fns = {
    orderByChild,
    orderByKey,
    orderByValue,
    orderByPriority,
    startAt,
    startAfter,
    endAt,
    endBefore,
    equalTo,
    limitToFirst,
    limitToLast,
  };
  return { text: label(name, args), make: () => fns[name](...args) };
}

const CASES = [
  // orderByChild('v')
  ['scores', [c('orderByChild', 'v')], BY_V],
  ['scores', [c('orderByChild', 'v'), c('startAt', 10)], ['2', '10', 'i10', 's1', 'sA', 'sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('endAt', 2.5)], ['3', 'nv', 'f', 't', 'm1', 'z0', 'd']],
  ['scores', [c('orderByChild', 'v'), c('startAt', 0), c('endAt', 10)], ['z0', 'd', '2', '10', 'i10']],
  ['scores', [c('orderByChild', 'v'), c('startAfter', 0)], ['d', '2', '10', 'i10', 's1', 'sA', 'sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('endBefore', 10)], ['3', 'nv', 'f', 't', 'm1', 'z0', 'd']],
  ['scores', [c('orderByChild', 'v'), c('equalTo', 10)], ['2', '10', 'i10']],
  ['scores', [c('orderByChild', 'v'), c('equalTo', 10, '10')], ['10']],
  ['scores', [c('orderByChild', 'v'), c('startAt', 10, '10')], ['10', 'i10', 's1', 'sA', 'sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('startAfter', 10, '10')], ['i10', 's1', 'sA', 'sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('endAt', 10, '10')], ['3', 'nv', 'f', 't', 'm1', 'z0', 'd', '2', '10']],
  ['scores', [c('orderByChild', 'v'), c('endBefore', 10, '10')], ['3', 'nv', 'f', 't', 'm1', 'z0', 'd', '2']],
  ['scores', [c('orderByChild', 'v'), c('equalTo', null)], ['3', 'nv']],
  ['scores', [c('orderByChild', 'v'), c('startAfter', null)], BY_V.slice(2)],
  ['scores', [c('orderByChild', 'v'), c('equalTo', false)], ['f']],
  ['scores', [c('orderByChild', 'v'), c('equalTo', true)], ['t']],
  ['scores', [c('orderByChild', 'v'), c('startAt', true), c('endAt', 0)], ['t', 'm1', 'z0']],
  ['scores', [c('orderByChild', 'v'), c('equalTo', 'A')], ['sA']],
  ['scores', [c('orderByChild', 'v'), c('startAt', 'a')], ['sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('startAfter', '10')], ['sA', 'sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('endBefore', 'A')], ['3', 'nv', 'f', 't', 'm1', 'z0', 'd', '2', '10', 'i10', 's1']],
  ['scores', [c('orderByChild', 'v'), c('limitToFirst', 3)], ['3', 'nv', 'f']],
  ['scores', [c('orderByChild', 'v'), c('limitToLast', 3)], ['sa', 'o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('startAt', 0), c('limitToFirst', 2)], ['z0', 'd']],
  ['scores', [c('orderByChild', 'v'), c('endAt', 10), c('limitToLast', 2)], ['10', 'i10']],
  ['scores', [c('orderByChild', 'v'), c('startAt', 10), c('limitToLast', 2)], ['o', 'o2']],
  ['scores', [c('orderByChild', 'v'), c('equalTo', 10), c('limitToFirst', 1)], ['2']],
  ['scores', [c('orderByChild', 'v'), c('limitToFirst', 100)], BY_V],
  // No orderBy: the priority index, which is key order when nothing has a priority.
  ['scores', [c('limitToFirst', 2)], ['2', '3']],
  ['scores', [c('limitToLast', 2)], ['t', 'z0']],
  ['scores', [c('orderByPriority')], SCORES_BY_KEY],
  // orderByChild with a nested path
  ['nested', [c('orderByChild', 'a/b')], BY_AB],
  ['nested', [c('orderByChild', 'a/b'), c('startAt', 2)], ['u', 'w', 'x']],
  ['nested', [c('orderByChild', 'a/b'), c('equalTo', 2)], ['u', 'w']],
  ['nested', [c('orderByChild', 'a/b'), c('endBefore', 2)], ['z', 'y']],
  ['nested', [c('orderByChild', 'a/b'), c('limitToLast', 2)], ['w', 'x']],
  // orderByKey
  ['keys', [c('orderByKey')], BY_KEY],
  ['keys', [c('orderByKey'), c('startAt', '1')], BY_KEY.slice(3)],
  ['keys', [c('orderByKey'), c('startAfter', '1')], BY_KEY.slice(4)],
  ['keys', [c('orderByKey'), c('endAt', 'a')], BY_KEY.slice(0, -1)],
  ['keys', [c('orderByKey'), c('endBefore', 'a')], BY_KEY.slice(0, -2)],
  ['keys', [c('orderByKey'), c('equalTo', '00')], ['00']],
  ['keys', [c('orderByKey'), c('startAt', '9'), c('endAt', 'A')], ['9', '10', '-', '2147483648', 'A']],
  ['keys', [c('orderByKey'), c('limitToFirst', 3)], ['-5', '0', '00']],
  ['keys', [c('orderByKey'), c('limitToLast', 2)], ['a', '~']],
  ['keys', [c('orderByKey'), c('startAfter', '10'), c('limitToFirst', 2)], ['-', '2147483648']],
  ['keys', [c('orderByKey'), c('endBefore', '0'), c('limitToLast', 5)], ['-5']],
  ['keys', [c('orderByKey'), c('startAt', 'b')], ['~']],
  // orderByValue
  ['values', [c('orderByValue')], BY_VALUE],
  ['values', [c('orderByValue'), c('startAt', 1)], ['e', 'a', 'f', 'h', 'b', 'g']],
  ['values', [c('orderByValue'), c('endAt', true)], ['d', 'c']],
  ['values', [c('orderByValue'), c('equalTo', 3)], ['a', 'f']],
  ['values', [c('orderByValue'), c('equalTo', 3, 'f')], ['f']],
  ['values', [c('orderByValue'), c('startAfter', 3)], ['h', 'b', 'g']],
  ['values', [c('orderByValue'), c('startAfter', 3, 'a')], ['f', 'h', 'b', 'g']],
  ['values', [c('orderByValue'), c('endBefore', 'X')], ['d', 'c', 'i', 'e', 'a', 'f']],
  ['values', [c('orderByValue'), c('endBefore', 3, 'f')], ['d', 'c', 'i', 'e', 'a']],
  ['values', [c('orderByValue'), c('startAt', 'X'), c('endAt', 'x')], ['h', 'b']],
  ['values', [c('orderByValue'), c('limitToFirst', 2)], ['d', 'c']],
  ['values', [c('orderByValue'), c('limitToLast', 2)], ['b', 'g']],
  // orderByPriority
  ['priorities', [c('orderByPriority')], BY_PRIORITY],
  ['priorities', [c('orderByPriority'), c('startAt', 2)], ['d', 'f', 'a', 'e', 'b']],
  ['priorities', [c('orderByPriority'), c('startAfter', 2)], ['a', 'e', 'b']],
  ['priorities', [c('orderByPriority'), c('startAt', 2, 'f')], ['f', 'a', 'e', 'b']],
  ['priorities', [c('orderByPriority'), c('endAt', 10)], ['c', 'g', 'd', 'f', 'a']],
  ['priorities', [c('orderByPriority'), c('endBefore', 'a')], ['c', 'g', 'd', 'f', 'a']],
  ['priorities', [c('orderByPriority'), c('endAt', null)], ['c', 'g']],
  ['priorities', [c('orderByPriority'), c('equalTo', 2)], ['d', 'f']],
  ['priorities', [c('orderByPriority'), c('equalTo', 2, 'f')], ['f']],
  ['priorities', [c('orderByPriority'), c('startAt', 'a')], ['e', 'b']],
  ['priorities', [c('orderByPriority'), c('limitToFirst', 2)], ['c', 'g']],
  ['priorities', [c('orderByPriority'), c('limitToLast', 1)], ['b']],
  ['priorities', [c('limitToLast', 3)], ['a', 'e', 'b']],
];

const DATA = { scores: SCORES, nested: NESTED, keys: KEYS, values: VALUES, priorities: PRIORITIES };

describe('one-shot get(query) and a live listener give the hand-computed result', () => {
  for (const [set_, constraints, expected] of CASES) {
    const text = `${set_}: ${constraints.map((x) => x.text).join('.')} → [${expected.join(', ')}]`;
    test(text, async () => {
      const expectedEntries = expected.map((k) => [k, plain(DATA[set_][k])]);
      const qOne = query(oneShot.ref(`${base}/${set_}`), ...constraints.map((x) => x.make()));
      const got = await read(qOne, `get(${text})`);
      assert.deepEqual(keys(got), expected, 'get(): keys in query order');
      assert.deepEqual(entries(got), expectedEntries, 'get(): values');

      const qLive = query(live.ref(`${base}/${set_}`), ...constraints.map((x) => x.make()));
      const first = await onceValue(qLive, `first value of a listener on ${text}`);
      assert.deepEqual(keys(first), expected, 'listener: keys in query order');
      assert.deepEqual(entries(first), expectedEntries, 'listener: values');
    });
  }
});

test('priorities read back: exportVal() and .priority, and setWithPriority / setPriority change the order', async () => {
  const p = `${base}/prio-order`;
  await within(setWithPriority(writer.ref(`${p}/a`), 'A', 3), 'setWithPriority a');
  await within(setWithPriority(writer.ref(`${p}/b`), { n: 'B' }, 1), 'setWithPriority b (object)');
  await within(set(writer.ref(`${p}/c`), 'C'), 'c without priority');
  await within(setWithPriority(writer.ref(`${p}/d`), 'D', 'z'), 'setWithPriority d (string priority)');

  let snap = await read(query(oneShot.ref(p), orderByPriority()));
  assert.deepEqual(keys(snap), ['c', 'b', 'a', 'd']);
  assert.equal(snap.child('a').priority, 3);
  assert.equal(snap.child('b').priority, 1);
  assert.equal(snap.child('c').priority, null);
  assert.equal(snap.child('d').priority, 'z');
  assert.deepEqual(snap.exportVal(), {
    a: { '.value': 'A', '.priority': 3 },
    b: { n: 'B', '.priority': 1 },
    c: 'C',
    d: { '.value': 'D', '.priority': 'z' },
  });

  await within(setPriority(writer.ref(`${p}/c`), 2), 'setPriority c');
  await within(setPriority(writer.ref(`${p}/a`), null), 'clear the priority of a');
  snap = await read(query(oneShot.ref(p), orderByPriority()));
  assert.deepEqual(keys(snap), ['a', 'b', 'c', 'd']);
  assert.equal(snap.child('c').val(), 'C');
  assert.equal(snap.child('c').priority, 2);
  assert.equal(snap.child('a').priority, null);

  // set() without a priority on a node keeps no priority; the value is unchanged elsewhere.
  await within(set(writer.ref(`${p}/b`), { n: 'B2' }), 'overwrite b without priority');
  snap = await read(oneShot.ref(`${p}/b`));
  assert.equal(snap.priority, null);
  assert.deepEqual(snap.val(), { n: 'B2' });
});

// ---- live queries whose window changes ------------------------------------------------------

function recordChildEvents(q, label) {
  const rec = new Recorder(label);
  const cancel = (err) => rec.push({ type: 'cancel', error: String(err) });
  rec.track(onChildAdded(q, (s, prev) => rec.push({ type: 'added', key: s.key, prev }), cancel));
  rec.track(onChildChanged(q, (s, prev) => rec.push({ type: 'changed', key: s.key, prev }), cancel));
  rec.track(onChildMoved(q, (s, prev) => rec.push({ type: 'moved', key: s.key, prev }), cancel));
  rec.track(onChildRemoved(q, (s) => rec.push({ type: 'removed', key: s.key }), cancel));
  return rec;
}

test('live orderByChild().limitToLast(2): a child entering the window fires child_removed for the one leaving and child_added for the new one', async () => {
  const p = `${base}/window-last`;
  await within(set(writer.ref(p), { a: { s: 1 }, b: { s: 2 }, c: { s: 3 } }), 'initial');
  const q = query(live.ref(p), orderByChild('s'), limitToLast(2));
  const ev = recordChildEvents(q, 'limitToLast(2) events');
  const vals = new Recorder('limitToLast(2) values');
  vals.track(onValue(q, (s) => vals.push(keys(s))));

  assert.deepEqual(await ev.take(2), [
    { type: 'added', key: 'b', prev: null },
    { type: 'added', key: 'c', prev: 'b' },
  ]);

  // d (4) enters at the top: b leaves.
  await within(set(writer.ref(`${p}/d`), { s: 4 }), 'add d');
  assert.deepEqual(await ev.take(2), [
    { type: 'removed', key: 'b' },
    { type: 'added', key: 'd', prev: 'c' },
  ]);

  // e (3.5) enters between c and d: c leaves.
  await within(set(writer.ref(`${p}/e`), { s: 3.5 }), 'add e');
  assert.deepEqual(await ev.take(2), [
    { type: 'removed', key: 'c' },
    { type: 'added', key: 'e', prev: null },
  ]);

  // d leaves the data: the window must be refilled with c from the server.
  await within(remove(writer.ref(`${p}/d`)), 'remove d');
  assert.deepEqual(await ev.take(2), [
    { type: 'removed', key: 'd' },
    { type: 'added', key: 'c', prev: null },
  ]);

  // a (1 → 10) jumps into the window from below: c leaves.
  await within(set(writer.ref(`${p}/a/s`), 10), 'a to 10');
  assert.deepEqual(await ev.take(2), [
    { type: 'removed', key: 'c' },
    { type: 'added', key: 'a', prev: 'e' },
  ]);

  // A change inside the window that keeps the order: child_changed only.
  await within(update(writer.ref(`${p}/e`), { label: 'x' }), 'label e');
  assert.deepEqual(await ev.next(), { type: 'changed', key: 'e', prev: null });

  // A change outside the window: nothing.  (b: 2 → 2.5 stays below the window.) Then a
  // change inside it, to prove the first produced no event.
  await within(set(writer.ref(`${p}/b/s`), 2.5), 'b outside the window');
  await within(update(writer.ref(`${p}/a`), { label: 'y' }), 'label a');
  assert.deepEqual(await ev.next(), { type: 'changed', key: 'a', prev: 'e' });

  await vals.until((v) => JSON.stringify(v.at(-1)) === JSON.stringify(['e', 'a']), 'value [e, a]');
  assert.deepEqual(ev.drain(), []);
  ev.off();
  vals.off();
});

test('live orderByKey().limitToFirst(2): removing a child in the window pulls the next one in', async () => {
  const p = `${base}/window-first`;
  await within(set(writer.ref(p), { b: 1, c: 1, d: 1, e: 1 }), 'initial');
  const ev = recordChildEvents(query(live.ref(p), orderByKey(), limitToFirst(2)), 'limitToFirst(2) events');
  assert.deepEqual(await ev.take(2), [
    { type: 'added', key: 'b', prev: null },
    { type: 'added', key: 'c', prev: 'b' },
  ]);
  await within(remove(writer.ref(`${p}/b`)), 'remove b');
  assert.deepEqual(await ev.take(2), [
    { type: 'removed', key: 'b' },
    { type: 'added', key: 'd', prev: 'c' },
  ]);
  // '5' is an integer key: it sorts before every string key.
  await within(set(writer.ref(`${p}/5`), 1), 'add 5');
  assert.deepEqual(await ev.take(2), [
    { type: 'removed', key: 'd' },
    { type: 'added', key: '5', prev: null },
  ]);
  ev.off();
});

test('live ranged query startAt(2).endAt(3): children moving in and out of the range fire added / removed', async () => {
  const p = `${base}/range`;
  await within(set(writer.ref(p), { a: 1, b: 2, c: 3, d: 4 }), 'initial');
  const q = query(live.ref(p), orderByValue(), startAt(2), endAt(3));
  const ev = recordChildEvents(q, 'range events');
  assert.deepEqual(await ev.take(2), [
    { type: 'added', key: 'b', prev: null },
    { type: 'added', key: 'c', prev: 'b' },
  ]);
  await within(set(writer.ref(`${p}/a`), 2.5), 'a into the range');
  assert.deepEqual(await ev.next(), { type: 'added', key: 'a', prev: 'b' });
  await within(set(writer.ref(`${p}/b`), 5), 'b out of the range');
  assert.deepEqual(await ev.next(), { type: 'removed', key: 'b' });
  await within(set(writer.ref(`${p}/new`), 3), 'new child in the range');
  assert.deepEqual(await ev.next(), { type: 'added', key: 'new', prev: 'c' });
  await within(set(writer.ref(`${p}/c`), 2), 'c moves to the front of the range');
  assert.deepEqual(await ev.take(2), [
    { type: 'moved', key: 'c', prev: null },
    { type: 'changed', key: 'c', prev: null },
  ]);
  const snap = await onceValue(q);
  assert.deepEqual(entries(snap), [
    ['c', 2],
    ['a', 2.5],
    ['new', 3],
  ]);
  ev.off();
});

test('live equalTo query on a second client follows a child whose value changes to and from the match', async () => {
  const p = `${base}/equal`;
  await within(set(writer.ref(p), { u1: { team: 'red' }, u2: { team: 'blue' }, u3: { team: 'red' } }), 'initial');
  const q = query(live.ref(p), orderByChild('team'), equalTo('red'));
  const vals = new Recorder('equalTo values');
  vals.track(onValue(q, (s) => vals.push(keys(s))));
  await vals.until((v) => v.length && JSON.stringify(v.at(-1)) === '["u1","u3"]', 'u1, u3');
  await within(update(writer.ref(p), { 'u2/team': 'red', 'u1/team': 'blue' }), 'swap teams');
  await vals.until((v) => JSON.stringify(v.at(-1)) === '["u2","u3"]', 'u2, u3');
  await within(remove(writer.ref(`${p}/u3`)), 'remove u3');
  await vals.until((v) => JSON.stringify(v.at(-1)) === '["u2"]', 'u2 alone');
  vals.off();
});
