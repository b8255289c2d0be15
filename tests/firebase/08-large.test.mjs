// 8. Large and deep values round-trip exactly: a 1 MB string (sent in many WebSocket frames
//    both ways), 10,000 children in one set, nesting 30 levels deep.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { onValue, set, update } from '@firebase/database';

import { Recorder, read, serverWithApps, uniquePath, within } from './harness.mjs';

const LONG = 60_000;

const { apps: [writer, reader, watcher] } = serverWithApps(['writer', 'reader', 'watcher']);

/** A string of `n` UTF-16 code units mixing 1-, 2- and 3-byte UTF-8 characters (no surrogates,
 * which the SDK's 16384-character frame splitting could cut in half). */
function bigString(n) {
  const pattern = 'abcdefghij0123456789 é ü ß € 日本語 — "quoted" \\ / ';
  let s = '';
  while (s.length < n) s += pattern + (s.length % 997) + '\n';
  return s.slice(0, n);
}

test('a 1 MB string round-trips exactly (get on another client, and pushed to a listener)', async () => {
  const p = uniquePath('big-string');
  const value = bigString(1_000_000);
  const seen = new Recorder('watcher values');
  seen.track(onValue(watcher.ref(p), (s) => seen.push(s.val())));
  await seen.until((v) => v.length === 1, 'initial null', LONG);
  await within(set(writer.ref(p), value), 'set 1 MB', LONG);
  const got = (await read(reader.ref(p), 'get 1 MB')).val();
  assert.equal(got.length, value.length);
  assert.ok(got === value, 'the string read back is identical');
  const evs = await seen.until((v) => typeof v.at(-1) === 'string', 'the string on the listener', LONG);
  assert.ok(evs.at(-1) === value, 'the pushed string is identical');
  seen.off();
});

test('several strings of a few hundred kB in one object round-trip exactly', async () => {
  const p = uniquePath('big-object');
  const value = { a: bigString(300_000), b: { c: bigString(200_000).toUpperCase() }, n: 1 };
  await within(set(writer.ref(p), value), 'set', LONG);
  assert.deepEqual((await read(reader.ref(p), 'get')).val(), value);
});

test('10,000 children written in one set() round-trip exactly, and a listener on another client gets them all', async () => {
  const p = uniquePath('wide');
  const value = {};
  for (let i = 0; i < 10_000; i++) value[`k${String(i).padStart(5, '0')}`] = { i, s: `value ${i}`, even: i % 2 === 0 };
  const seen = new Recorder('watcher values');
  seen.track(onValue(watcher.ref(p), (s) => seen.push(s.size)));
  await within(set(writer.ref(p), value), 'set 10,000 children', LONG);
  const snap = await read(reader.ref(p), 'get 10,000 children');
  assert.equal(snap.size, 10_000);
  assert.deepEqual(snap.val(), value);
  await seen.until((v) => v.at(-1) === 10_000, '10,000 children on the listener', LONG);
  seen.off();
});

test('an update() of 1,000 multi-path keys is applied whole', async () => {
  const p = uniquePath('wide-update');
  const patch = {};
  for (let i = 0; i < 1000; i++) patch[`g${i % 10}/k${i}`] = i;
  await within(update(writer.ref(p), patch), 'update', LONG);
  const v = (await read(reader.ref(p), 'get')).val();
  assert.equal(Object.keys(v).length, 10);
  let count = 0;
  for (let g = 0; g < 10; g++) {
    for (const [k, n] of Object.entries(v[`g${g}`])) {
      assert.equal(`k${n}`, k);
      assert.equal(n % 10, g);
      count++;
    }
  }
  assert.equal(count, 1000);
});

test('a value nested 30 levels deep round-trips exactly (t/<id>/l1/…/l29/leaf: the 32 levels the SDK allows)', async () => {
  const p = uniquePath('deep');
  let value = { leaf: 'bottom', n: 29 };
  for (let i = 28; i >= 1; i--) value = { [`l${i + 1}`]: value, n: i };
  value = { l1: value };
  await within(set(writer.ref(p), value), 'set deep', LONG);
  assert.deepEqual((await read(reader.ref(p), 'get deep')).val(), value);
  const deepest = `${p}/${Array.from({ length: 29 }, (_, i) => `l${i + 1}`).join('/')}`;
  assert.equal((await read(reader.ref(`${deepest}/leaf`))).val(), 'bottom');
  // Written at the deepest level, observed from the top.
  await within(set(writer.ref(`${deepest}/leaf`), 'changed'), 'set at depth 32');
  const v = (await read(reader.ref(p), 'get deep again')).val();
  let node = v;
  for (let i = 1; i <= 29; i++) node = node[`l${i}`];
  assert.equal(node.leaf, 'changed');
});
