// 1. set / get / update / push / remove through the SDK, one client writing and another reading.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { child, onValue, push, remove, set, update } from '@firebase/database';

import { Recorder, lastIs, read, serverWithApps, uniquePath, within } from './harness.mjs';

const { apps: [writer, reader] } = serverWithApps(['writer', 'reader']);

test('set() of an object is read back exactly by get() on a second client', async () => {
  const p = uniquePath('set-get');
  const value = {
    text: 'hello',
    n: 42,
    f: 2.5,
    neg: -7,
    yes: true,
    no: false,
    nested: { a: { b: { c: 'deep' } }, list: 'x' },
  };
  await within(set(writer.ref(p), value), 'set');
  const snap = await read(reader.ref(p));
  assert.equal(snap.exists(), true);
  assert.deepEqual(snap.val(), value);
  assert.equal((await read(reader.ref(`${p}/nested/a/b/c`))).val(), 'deep');
});

test('get() of a location that holds nothing resolves to null (exists() is false)', async () => {
  const p = uniquePath('absent');
  const snap = await read(reader.ref(`${p}/nothing/here`));
  assert.equal(snap.exists(), false);
  assert.equal(snap.val(), null);
  assert.equal(snap.key, 'here');
});

test('primitive values round-trip exactly: integers, floats, big and negative numbers, unicode strings, booleans', async () => {
  const p = uniquePath('primitives');
  const cases = {
    zero: 0,
    int: 123456789,
    maxSafe: Number.MAX_SAFE_INTEGER,
    minSafe: Number.MIN_SAFE_INTEGER,
    float: 0.1,
    sum: 0.1 + 0.2,
    tiny: 5e-324,
    huge: 1.7976931348623157e308,
    negFloat: -3.75,
    empty: '',
    unicode: 'héllo wörld — 日本語 — 😀 — "quoted" \\ backslash\nnewline',
    numericString: '42',
    t: true,
    f: false,
  };
  await within(set(writer.ref(p), cases), 'set');
  const got = (await read(reader.ref(p))).val();
  assert.deepEqual(got, cases);
  for (const [k, v] of Object.entries(cases)) {
    assert.equal(typeof got[k], typeof v, `type of ${k}`);
    assert.ok(Object.is(got[k], v), `${k}: ${got[k]} !== ${v}`);
  }
  // A primitive at the location itself, not only as a child.
  await within(set(writer.ref(`${p}/leaf`), 'just a string'), 'set leaf');
  assert.equal((await read(reader.ref(`${p}/leaf`))).val(), 'just a string');
});

test('set() replaces the whole subtree: children absent from the new value are gone', async () => {
  const p = uniquePath('replace');
  await within(set(writer.ref(p), { a: 1, b: { c: 2, d: 3 } }), 'first set');
  await within(set(writer.ref(p), { b: { d: 4 }, e: 5 }), 'second set');
  assert.deepEqual((await read(reader.ref(p))).val(), { b: { d: 4 }, e: 5 });
});

test('set() of null or {} deletes the value, and an emptied parent disappears', async () => {
  const p = uniquePath('set-null');
  await within(set(writer.ref(p), { a: { only: 1 }, b: 2 }), 'set');
  await within(set(writer.ref(`${p}/a/only`), null), 'set null');
  assert.deepEqual((await read(reader.ref(p))).val(), { b: 2 }, 'a (left empty) is gone');
  await within(set(writer.ref(`${p}/b`), {}), 'set {}');
  assert.equal((await read(reader.ref(p))).val(), null);
});

test('an object with integer keys 0..n-1 reads back as an array', async () => {
  const p = uniquePath('array');
  await within(set(writer.ref(p), ['a', 'b', 'c']), 'set array');
  assert.deepEqual((await read(reader.ref(p))).val(), ['a', 'b', 'c']);
  assert.equal((await read(reader.ref(`${p}/1`))).val(), 'b');
});

test('update() writes the listed children only and keeps the siblings', async () => {
  const p = uniquePath('update');
  await within(set(writer.ref(p), { a: 1, b: { x: 1, y: 2 }, c: 3 }), 'set');
  await within(update(writer.ref(p), { a: 10, b: { z: 3 } }), 'update');
  // A direct child in update() is replaced whole (b loses x and y), siblings stay.
  assert.deepEqual((await read(reader.ref(p))).val(), { a: 10, b: { z: 3 }, c: 3 });
});

test('update() with multi-path keys ("a/b") writes deep children, and null values delete', async () => {
  const p = uniquePath('multipath');
  await within(set(writer.ref(p), { a: { b: 0, keep: true }, c: { d: 1, e: 2 }, gone: 'x' }), 'set');
  await within(
    update(writer.ref(p), { 'a/b': 1, 'c/e': null, gone: null, 'new/deep/leaf': 'n' }),
    'multi-path update',
  );
  assert.deepEqual((await read(reader.ref(p))).val(), {
    a: { b: 1, keep: true },
    c: { d: 1 },
    new: { deep: { leaf: 'n' } },
  });
  // Deleting the last child of a node through update removes the node too.
  await within(update(writer.ref(p), { 'c/d': null }), 'delete last child');
  assert.equal((await read(reader.ref(`${p}/c`))).val(), null);
  // update() at the root of the test prefix with keys spanning several subtrees.
  await within(update(writer.ref(p), { 'x/k1': 1, 'y/k2': 2 }), 'spanning update');
  const v = (await read(reader.ref(p))).val();
  assert.deepEqual(v.x, { k1: 1 });
  assert.deepEqual(v.y, { k2: 2 });
});

test('push() makes 20-character chronological keys and a second client sees the children in push order', async () => {
  const p = uniquePath('push');
  const seen = new Recorder('reader value events');
  seen.track(onValue(reader.ref(p), (snap) => seen.push(snap)));
  const made = [];
  for (let i = 0; i < 5; i++) {
    const r = push(writer.ref(p), { i });
    made.push(r.key);
    await within(r, `push ${i}`);
  }
  for (const k of made) assert.match(k, /^[-0-9A-Za-z_]{20}$/);
  assert.deepEqual([...made].sort(), made, 'push ids sort in creation order');
  const last = await seen.until(
    (evs) => evs.length && evs.at(-1).size === 5,
    'five pushed children',
  );
  const snap = last.at(-1);
  const order = [];
  snap.forEach((c) => {
    order.push([c.key, c.val().i]);
  });
  assert.deepEqual(order, made.map((k, i) => [k, i]));
  seen.off();

  // push() with no value only makes a key; set on it then writes.
  const bare = push(writer.ref(p));
  assert.equal(bare.key.length, 20);
  await within(set(child(writer.ref(p), bare.key), 'later'), 'set on pushed ref');
  assert.equal((await read(reader.ref(`${p}/${bare.key}`))).val(), 'later');
});

test('remove() deletes a subtree; a second client listening sees it go', async () => {
  const p = uniquePath('remove');
  await within(set(writer.ref(p), { keep: 1, drop: { deep: { x: 1 } } }), 'set');
  const seen = new Recorder('reader values');
  seen.track(onValue(reader.ref(p), (snap) => seen.push(snap.val())));
  await seen.until((evs) => evs.some((v) => v && v.drop), 'initial value');
  await within(remove(writer.ref(`${p}/drop`)), 'remove');
  await seen.until(lastIs({ keep: 1 }), 'drop removed');
  await within(remove(writer.ref(p)), 'remove all');
  await seen.until((evs) => evs.at(-1) === null, 'null after removing everything');
  seen.off();
  assert.equal((await read(reader.ref(p))).val(), null);
});

test('a second client listening sees every write of the first: set, update, remove', async () => {
  const p = uniquePath('observe');
  const seen = new Recorder('reader values');
  seen.track(onValue(reader.ref(p), (snap) => seen.push(snap.val())));
  const expectLast = (expected, what) =>
    seen.until(lastIs(expected), what);

  await expectLast(null, 'initial null');
  await within(set(writer.ref(p), { a: 1 }), 'set');
  await expectLast({ a: 1 }, 'after set');
  await within(update(writer.ref(p), { b: 2 }), 'update');
  await expectLast({ a: 1, b: 2 }, 'after update');
  await within(set(writer.ref(`${p}/a`), null), 'delete a');
  await expectLast({ b: 2 }, 'after delete');
  await within(remove(writer.ref(p)), 'remove');
  await expectLast(null, 'after remove');
  seen.off();
  // Writer's own view matches (its writes were acknowledged with the server's data).
  assert.equal((await read(writer.ref(p))).val(), null);
});
