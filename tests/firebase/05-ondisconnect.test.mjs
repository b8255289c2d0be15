// 5. onDisconnect().set / remove / update / cancel: registered by client A, run by the server
//    when A's connection closes (deleteApp or goOffline), seen by client B.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { goOffline, goOnline, onDisconnect, onValue, serverTimestamp, set } from '@firebase/database';

import { Recorder, firebaseApp, koraOnly, lastIs, read, serverWithApps, uniquePath, within } from './harness.mjs';

const skip = koraOnly('it has no onDisconnect (o / om / oc)');

const { server, apps: [observer] } = serverWithApps(['observer']);

/** Watch `path` on the observer; returns a Recorder of values. */
function watch(path) {
  const rec = new Recorder(`observer values at ${path}`);
  rec.track(onValue(observer.ref(path), (s) => rec.push(s.val())));
  return rec;
}

test('onDisconnect().set() runs when the app is deleted: the other client sees the value', { skip }, async () => {
  const p = uniquePath('od-set');
  const a = firebaseApp(server, 'a');
  await within(set(a.ref(`${p}/status`), 'online'), 'set online');
  await within(onDisconnect(a.ref(`${p}/status`)).set({ state: 'offline', n: 1 }), 'register onDisconnect');
  const seen = watch(`${p}/status`);
  await seen.until(lastIs('online'), 'online');
  await a.close();
  await seen.until(lastIs({ state: 'offline', n: 1 }), 'the onDisconnect value');
  seen.off();
});

test('onDisconnect().set() runs on goOffline(): the other client sees it, and it does not run twice after goOnline', { skip }, async () => {
  const p = uniquePath('od-offline');
  const a = firebaseApp(server, 'a');
  await within(onDisconnect(a.ref(`${p}/gone`)).set(true), 'register');
  const seen = watch(p);
  await seen.until(lastIs(null), 'nothing yet');
  goOffline(a.db);
  await seen.until(lastIs({ gone: true }), 'gone: true after goOffline');

  // Back online: the registration was consumed; a later disconnect writes nothing. Prove it
  // with a second, fresh registration elsewhere that must be the only change.
  goOnline(a.db);
  await within(set(a.ref(`${p}/gone`), false), 'set gone false after reconnecting');
  await within(onDisconnect(a.ref(`${p}/second`)).set('yes'), 'second registration');
  await seen.until(lastIs({ gone: false }), 'gone: false');
  goOffline(a.db);
  await seen.until(lastIs({ gone: false, second: 'yes' }), 'only the second registration ran');
  await a.close();
  seen.off();
});

test('onDisconnect().remove() deletes the value when the connection closes', { skip }, async () => {
  const p = uniquePath('od-remove');
  const a = firebaseApp(server, 'a');
  await within(set(a.ref(p), { presence: { a: true }, other: 1 }), 'initial');
  await within(onDisconnect(a.ref(`${p}/presence/a`)).remove(), 'register remove');
  const seen = watch(p);
  await seen.until(lastIs({ presence: { a: true }, other: 1 }), 'initial value');
  goOffline(a.db);
  await seen.until(lastIs({ other: 1 }), 'presence removed (and its emptied parent)');
  await a.close();
  seen.off();
});

test('onDisconnect().update() with plain and multi-path keys merges into the location', { skip }, async () => {
  const p = uniquePath('od-update');
  const a = firebaseApp(server, 'a');
  await within(set(a.ref(p), { name: 'ada', state: 'online', meta: { keep: 1, n: 1 } }), 'initial');
  await within(
    onDisconnect(a.ref(p)).update({ state: 'offline', 'meta/n': 2, name: null }),
    'register update',
  );
  const seen = watch(p);
  await seen.until((evs) => evs.at(-1)?.state === 'online', 'initial value');
  await a.close();
  await seen.until(lastIs({ state: 'offline', meta: { keep: 1, n: 2 } }), 'the merged value');
  seen.off();
});

test('onDisconnect().cancel() forgets the registrations at and beneath the location', { skip }, async () => {
  const p = uniquePath('od-cancel');
  const a = firebaseApp(server, 'a');
  await within(set(a.ref(p), { x: 'kept', y: { z: 'kept' } }), 'initial');
  await within(onDisconnect(a.ref(`${p}/x`)).set('overwritten'), 'register x');
  await within(onDisconnect(a.ref(`${p}/y/z`)).remove(), 'register y/z');
  await within(onDisconnect(a.ref(`${p}/marker`)).set('ran'), 'register marker');
  await within(onDisconnect(a.ref(`${p}/x`)).cancel(), 'cancel x');
  await within(onDisconnect(a.ref(`${p}/y`)).cancel(), 'cancel y (and y/z beneath it)');
  const seen = watch(p);
  await seen.until((evs) => evs.at(-1)?.x === 'kept', 'initial value');
  await a.close();
  // The marker's registration was not cancelled: once it has run, the cancelled ones would
  // have run too.
  await seen.until((evs) => evs.at(-1)?.marker === 'ran', 'the marker');
  // One more round trip through the server before reading.
  await within(set(observer.ref(`${p}-sync`), true), 'a write after the disconnect');
  assert.deepEqual((await read(observer.ref(p))).val(), { x: 'kept', y: { z: 'kept' }, marker: 'ran' });
  seen.off();
});

test('onDisconnect().set(serverTimestamp()) is resolved by the server when the connection closes', { skip }, async () => {
  const p = uniquePath('od-ts');
  const a = firebaseApp(server, 'a');
  await within(onDisconnect(a.ref(`${p}/lastSeen`)).set(serverTimestamp()), 'register');
  const seen = watch(`${p}/lastSeen`);
  await seen.until(lastIs(null), 'nothing yet');
  const before = Date.now();
  await a.close();
  const evs = await seen.until((e) => typeof e.at(-1) === 'number', 'a timestamp');
  const ts = evs.at(-1);
  assert.ok(Number.isInteger(ts), `integer milliseconds: ${ts}`);
  // Resolved at disconnect time, not at registration: not before `before` (allowing 2 s of
  // clock granularity), and not in the future.
  assert.ok(ts >= before - 2000 && ts <= Date.now() + 2000, `timestamp ${ts} near ${before}`);
  seen.off();
});

test('onDisconnect registered by several clients run independently: only the closed one runs', { skip }, async () => {
  const p = uniquePath('od-two');
  const a = firebaseApp(server, 'a');
  const b = firebaseApp(server, 'b');
  await within(onDisconnect(a.ref(`${p}/a`)).set('a left'), 'a registers');
  await within(onDisconnect(b.ref(`${p}/b`)).set('b left'), 'b registers');
  const seen = watch(p);
  await seen.until(lastIs(null), 'nothing yet');
  await a.close();
  await seen.until(lastIs({ a: 'a left' }), 'only a ran');
  await b.close();
  await seen.until(lastIs({ a: 'a left', b: 'b left' }), 'then b ran');
  seen.off();
});
