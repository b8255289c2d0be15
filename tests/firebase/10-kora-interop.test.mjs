// 10. Kora's own protocol and the Firebase SDK share one tree: a raw WebSocket speaking Kora's
//     protocol (docs/protocol.md: `query` with subscribe, `mutate`) on /v1/ws sees Firebase
//     writes as pushes, and Kora mutations appear in Firebase listeners.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { onChildAdded, onValue, push, remove, set, update } from '@firebase/database';
import WebSocket from 'ws';

import {
  Recorder,
  WAIT_MS,
  koraOnly,
  lastIs,
  read,
  same,
  serverWithApps,
  uniquePath,
  waitFor,
  within,
} from './harness.mjs';

const skip = koraOnly("it has no Kora protocol (/v1/ws)");

const { server, apps: [fb] } = serverWithApps(['firebase'], { skip });

// ---- a minimal Kora protocol client ---------------------------------------------------------

const segments = (path) => path.split('/').filter(Boolean);

function getAt(tree, path) {
  let node = tree;
  for (const k of segments(path)) {
    if (node === null || typeof node !== 'object' || !(k in node)) return null;
    node = node[k];
  }
  return node;
}

/** Apply `delete` (a tree whose leaves are 1) to `tree`, pruning emptied branches. */
function applyDelete(tree, del) {
  if (tree === null || typeof tree !== 'object') return tree;
  for (const [k, sub] of Object.entries(del)) {
    if (!(k in tree)) continue;
    if (sub === 1) delete tree[k];
    else {
      tree[k] = applyDelete(tree[k], sub);
      if (tree[k] === null) delete tree[k];
    }
  }
  return Object.keys(tree).length ? tree : null;
}

/** Merge `merge` (objects are branches, anything else a leaf) into `tree`. */
function applyMerge(tree, merge) {
  if (merge === null || typeof merge !== 'object') return merge;
  const out = tree !== null && typeof tree === 'object' ? tree : {};
  for (const [k, sub] of Object.entries(merge)) out[k] = applyMerge(out[k] ?? null, sub);
  return out;
}

/** A Kora WebSocket client that keeps a replica of everything its subscriptions cover. */
class KoraClient {
  static async connect(srv) {
    const ws = new WebSocket(`ws://${srv.host}:${srv.port}/v1/ws`);
    await within(
      new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      }),
      'the Kora WebSocket to open',
    );
    return new KoraClient(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.nextId = 1;
    this.pending = new Map();
    this.pushes = [];
    this.replica = null;
    ws.on('message', (data) => this.onMessage(JSON.parse(data.toString())));
  }

  onMessage(msg) {
    if (msg.push) {
      this.pushes.push(msg);
      if (msg.push === 'change') {
        // A change's mutation is rooted at the root of the tree: deletes first, then merges.
        this.replica = applyDelete(this.replica, msg.mutation.delete ?? {});
        this.replica = applyMerge(this.replica, msg.mutation.merge ?? {});
      }
      return;
    }
    const waiter = this.pending.get(msg.id);
    if (waiter) {
      this.pending.delete(msg.id);
      if (msg.error) waiter.reject(Object.assign(new Error(`${msg.error.code}: ${msg.error.message}`), msg.error));
      else waiter.resolve(msg.result);
    }
  }

  request(op, fields) {
    const id = this.nextId++;
    const done = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.ws.send(JSON.stringify({ op, id, ...fields }));
    return within(done, `Kora ${op} reply`);
  }

  /** Subscribe to `path`; the reply's value (rooted at the tree's root) seeds the replica. */
  async subscribe(path) {
    const result = await this.request('query', { paths: [{ path, subscribe: true }] });
    this.replica = applyMerge(this.replica, result.value ?? null);
    return getAt(result.value, path);
  }

  mutate(mutation) {
    return this.request('mutate', { mutation });
  }

  /** Build a nested object `{a: {b: value}}` from `a/b`. */
  static nest(path, value) {
    return segments(path).reduceRight((acc, k) => ({ [k]: acc }), value);
  }

  valueAt(path) {
    return getAt(this.replica, path);
  }

  close() {
    this.ws.close();
  }
}

// ---- tests ----------------------------------------------------------------------------------

test('the raw Kora protocol client used here follows Kora\'s own writes (query + subscribe, mutate, change pushes)', { skip }, async () => {
  const p = uniquePath('interop-self');
  const watcher = await KoraClient.connect(server);
  const writer = await KoraClient.connect(server);
  await writer.mutate({ merge: KoraClient.nest(p, { a: 1, b: { c: 2 } }) });
  assert.deepEqual(await watcher.subscribe(p), { a: 1, b: { c: 2 } });
  await writer.mutate({ delete: KoraClient.nest(`${p}/b`, 1), merge: KoraClient.nest(`${p}/d`, 'x') });
  await waitFor(() => same(watcher.valueAt(p), { a: 1, d: 'x' }), WAIT_MS, 'the change on the watcher', () =>
    JSON.stringify(watcher.pushes),
  );
  const http = await fetch(`${server.url}/v1/data/${p}`);
  assert.deepEqual(await http.json(), { a: 1, d: 'x' });
  watcher.close();
  writer.close();
});

test('a Firebase set() appears as a change push on a Kora subscription', { skip }, async () => {
  const p = uniquePath('interop-fb2kora');
  const kora = await KoraClient.connect(server);
  assert.equal(await kora.subscribe(p), null);
  await within(set(fb.ref(`${p}/todo`), { text: 'from firebase', done: false, n: 3 }), 'firebase set');
  await waitFor(
    () => same(kora.valueAt(`${p}/todo`), { text: 'from firebase', done: false, n: 3 }),
    WAIT_MS,
    'the Firebase write on the Kora subscription',
    () => JSON.stringify(kora.pushes),
  );
  assert.ok(kora.pushes.some((m) => m.push === 'change' && m.sub === p), 'a change push for the subscription');

  // update() and remove() too.
  await within(update(fb.ref(p), { 'todo/done': true, other: 'x' }), 'firebase update');
  await waitFor(
    () => same(kora.valueAt(p), { todo: { text: 'from firebase', done: true, n: 3 }, other: 'x' }),
    WAIT_MS,
    'the update on the Kora side',
    () => JSON.stringify(kora.replica),
  );
  await within(remove(fb.ref(`${p}/todo`)), 'firebase remove');
  await waitFor(() => same(kora.valueAt(p), { other: 'x' }), WAIT_MS, 'the removal on the Kora side', () =>
    JSON.stringify(kora.replica),
  );
  // set() replaces: children not in the new value are deleted on the Kora side.
  await within(set(fb.ref(p), { fresh: 1 }), 'firebase set replacing');
  await waitFor(() => same(kora.valueAt(p), { fresh: 1 }), WAIT_MS, 'the replacement on the Kora side', () =>
    JSON.stringify(kora.replica),
  );
  kora.close();
});

test('a Kora mutate appears in a Firebase onValue listener', { skip }, async () => {
  const p = uniquePath('interop-kora2fb');
  const kora = await KoraClient.connect(server);
  const seen = new Recorder('firebase values');
  seen.track(onValue(fb.ref(p), (s) => seen.push(s.val())));
  await seen.until(lastIs(null), 'initial null');

  await kora.mutate({ merge: KoraClient.nest(p, { a: { text: 'from kora', n: 1 }, b: true }) });
  await seen.until(lastIs({ a: { text: 'from kora', n: 1 }, b: true }), 'the Kora merge');

  await kora.mutate({ delete: KoraClient.nest(`${p}/a/n`, 1), merge: KoraClient.nest(`${p}/c`, 2.5) });
  await seen.until(lastIs({ a: { text: 'from kora' }, b: true, c: 2.5 }), 'the Kora delete + merge');

  await kora.mutate({ delete: KoraClient.nest(p, 1) });
  await seen.until(lastIs(null), 'the Kora delete of everything');
  seen.off();
  kora.close();
});

test('Firebase child events fire for children a Kora client adds, in key order', { skip }, async () => {
  const p = uniquePath('interop-children');
  const kora = await KoraClient.connect(server);
  const added = new Recorder('firebase child_added');
  added.track(onChildAdded(fb.ref(p), (s, prev) => added.push({ key: s.key, val: s.val(), prev })));
  await kora.mutate({ merge: KoraClient.nest(p, { b: 2 }) });
  assert.deepEqual(await added.next(), { key: 'b', val: 2, prev: null });
  await kora.mutate({ merge: KoraClient.nest(p, { a: 1, c: 3 }) });
  const two = await added.take(2);
  assert.deepEqual(
    two.sort((x, y) => x.key.localeCompare(y.key)),
    [
      { key: 'a', val: 1, prev: null },
      { key: 'c', val: 3, prev: 'b' },
    ],
  );
  added.off();
  kora.close();
});

test('Kora HTTP writes and Firebase get() agree; push ids written by Firebase are plain keys to Kora', { skip }, async () => {
  const p = uniquePath('interop-http');
  const put = await fetch(`${server.url}/v1/data/${p}/k`, { method: 'PUT', body: JSON.stringify({ x: 1 }) });
  assert.equal(put.status, 200, await put.text());
  assert.deepEqual((await read(fb.ref(`${p}/k`))).val(), { x: 1 });

  const ref = push(fb.ref(`${p}/list`), 'pushed');
  await within(ref, 'firebase push');
  const res = await fetch(`${server.url}/v1/data/${p}/list`);
  assert.deepEqual(await res.json(), { [ref.key]: 'pushed' });
});

test('numbers keep their type across protocols: Kora integers are Firebase integers, floats stay floats', { skip }, async () => {
  const p = uniquePath('interop-numbers');
  const kora = await KoraClient.connect(server);
  await kora.subscribe(p);
  await kora.mutate({ merge: KoraClient.nest(p, { i: 42, f: 0.5, big: 9007199254740991, neg: -3 }) });
  assert.deepEqual((await read(fb.ref(p))).val(), { i: 42, f: 0.5, big: 9007199254740991, neg: -3 });
  await within(set(fb.ref(`${p}/g`), 7), 'firebase writes an integer');
  await waitFor(() => kora.valueAt(`${p}/g`) === 7, WAIT_MS, 'the integer on the Kora side');
  kora.close();
});
