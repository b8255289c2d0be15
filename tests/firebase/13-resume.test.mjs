// 13. Resuming by hash: a client that reconnects sends, with each listen, the hash of the copy
//     it holds; when that is the server's data, the server confirms it without sending it
//     again, and the client's listeners see the same value as before. When the data changed
//     while the client was away, the data comes as usual.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { enableLogging, goOffline, goOnline, onValue, set } from '@firebase/database';

import { Recorder, firebaseApp, koraOnly, lastIs, serverWithApps, uniquePath, within } from './harness.mjs';

const { server, apps: [observer] } = serverWithApps(['observer']);

const resumes = { skip: koraOnly('it ignores the hash and sends the data again') };

/** The SDK's wire log of what the server sent, while `run` runs. */
async function received(run) {
  const frames = [];
  // The SDK logs a reply as `from server: <message>` and a push as
  // `handleServerMessage <action> <body>` (its PersistentConnection).
  enableLogging((message) => {
    const reply = message.match(/from server: (.*)$/);
    if (reply) frames.push(JSON.parse(reply[1]));
    const push = message.match(/handleServerMessage (\w+) (.*\S)\s*$/);
    if (push) frames.push({ a: push[1], b: JSON.parse(push[2]) });
  });
  try {
    await run();
  } finally {
    enableLogging(false);
  }
  return frames;
}

/** Data pushed for `path` (no leading slash) among `frames`. */
const dataFor = (frames, path) => frames.filter((f) => f.a === 'd' && f.b?.p === path);

function list(n) {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${String(i).padStart(4, '0')}`, { n: i, text: `item ${i}` }]));
}

/** goOffline then goOnline, and wait until the server has answered the re-sent listens: a
 *  write made after goOnline is acknowledged after them (a connection's requests are
 *  answered in order, and the SDK re-sends its listens before its writes). */
async function reconnect(client, p) {
  goOffline(client.db);
  goOnline(client.db);
  await within(set(client.ref(`${p}-marker`), Date.now()), 'a write after reconnecting');
}

test('an unchanged location is not sent again to a client that reconnects', resumes, async () => {
  const p = uniquePath('resume');
  const a = firebaseApp(server, 'a');
  const value = list(500);
  await within(set(a.ref(p), value), 'the list written');
  const seen = new Recorder('values');
  seen.track(onValue(a.ref(p), (s) => seen.push(s.val())));
  await seen.until(lastIs(value), 'the list');

  const frames = await received(() => reconnect(a, p));
  assert.deepEqual(dataFor(frames, p), [], 'the server sent the unchanged list again');
  assert.ok(frames.some((f) => f.b?.s === 'ok'), 'the listen was answered');
  // The listener still holds the list, and hears later changes.
  assert.deepEqual(seen.events.at(-1), value);
  await within(set(observer.ref(`${p}/k0001/n`), -1), 'a change by another client');
  await seen.until((v) => v.at(-1)?.k0001?.n === -1, 'the change');
  seen.off();
  await a.close();
});

test('a location that changed while the client was away is sent again', resumes, async () => {
  const p = uniquePath('resume-changed');
  const a = firebaseApp(server, 'a');
  const value = list(50);
  await within(set(a.ref(p), value), 'the list written');
  const seen = new Recorder('values');
  seen.track(onValue(a.ref(p), (s) => seen.push(s.val())));
  await seen.until(lastIs(value), 'the list');

  goOffline(a.db);
  await within(set(observer.ref(`${p}/k0007`), { n: 7, text: 'changed' }), 'a change while away');
  const frames = await received(async () => {
    goOnline(a.db);
    await within(set(a.ref(`${p}-marker`), Date.now()), 'a write after reconnecting');
  });
  assert.equal(dataFor(frames, p).length, 1, 'the changed list comes again');
  const changed = { ...value, k0007: { n: 7, text: 'changed' } };
  await seen.until(lastIs(changed), 'the changed list');
  seen.off();
  await a.close();
});

