// 14. Google's Node.js Admin SDK (`firebase-admin`) against Kora, as server code runs it:
//     set, update, push, a query, a listener, a transaction and onDisconnect. The Admin SDK
//     reaches a database without Google's servers only in emulator mode
//     (FIREBASE_DATABASE_EMULATOR_HOST), where it authenticates as `owner`, the emulator's
//     administrator: Kora accepts that only with `[firebase] mock_tokens = true`
//     (docs/firebase.md, "Admin SDKs"). The rules refuse every other client, so each step
//     also shows the Admin SDK passing them as an administrator does.
//     In production the Admin SDK is given Kora's admin secret as its credential instead and
//     speaks to Kora over TLS, as to Firebase: the last test.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { deleteApp, initializeApp } from 'firebase-admin/app';
import { getDatabase } from 'firebase-admin/database';
import { get as clientGet, onValue as clientOnValue, set as clientSet } from '@firebase/database';

import { NAMESPACE, PROJECT_ID, Recorder, koraOnly, lastIs, runNode, serverWithApps, startTlsKora, uniquePath, within } from './harness.mjs';

const skip = koraOnly('it does not read Kora rules files');

// Only an administrator may write; anyone may read.
const RULES = { '**': { read: 'true', write: 'false' } };
const CONFIG = '[firebase]\nmock_tokens = true\n';

const { server, apps: [reader] } = serverWithApps(['reader'], { rules: RULES, config: CONFIG, skip });

let counter = 0;
/** An Admin SDK app on the test's server, in emulator mode. */
function adminApp() {
  process.env.FIREBASE_DATABASE_EMULATOR_HOST = `${server.host}:${server.port}`;
  const app = initializeApp(
    { projectId: PROJECT_ID, databaseURL: `http://${server.host}:${server.port}?ns=${NAMESPACE}` },
    `admin-${++counter}`,
  );
  return { app, db: getDatabase(app) };
}

test('the Admin SDK sets, updates, pushes, queries and reads back past rules that refuse clients', { skip }, async () => {
  const { app, db } = adminApp();
  const p = uniquePath('admin');
  const ref = db.ref(p);
  await within(ref.set({ name: 'kora', stars: 1 }), 'set');
  await within(ref.update({ stars: 2, 'meta/by': 'admin' }), 'update');
  const pushed = await within(ref.child('log').push({ at: 1, what: 'created' }), 'push');
  assert.match(pushed.key, /^-[0-9A-Za-z_-]{19}$/);
  const snap = await within(ref.once('value'), 'once');
  assert.deepEqual(snap.val(), { name: 'kora', stars: 2, meta: { by: 'admin' }, log: { [pushed.key]: { at: 1, what: 'created' } } });

  // A query: the two highest scores.
  const scores = db.ref(`${p}/scores`);
  await within(scores.set({ a: { s: 5 }, b: { s: 1 }, c: { s: 9 }, d: { s: 7 } }), 'scores');
  const top = await within(scores.orderByChild('s').limitToLast(2).once('value'), 'query');
  const keys = [];
  top.forEach((child) => { keys.push(child.key); });
  assert.deepEqual(keys, ['d', 'c']);

  // A client sees the Admin SDK's writes, and may not make its own.
  assert.equal((await within(clientGet(reader.ref(`${p}/stars`)), 'client read')).val(), 2);
  await assert.rejects(within(clientSet(reader.ref(`${p}/stars`), 3), 'client write'), /PERMISSION_DENIED/);
  await deleteApp(app);
});

test('an Admin SDK listener hears another client\'s change, and its transaction is exact under contention', { skip }, async () => {
  const { app, db } = adminApp();
  const other = adminApp();
  const p = uniquePath('admin-live');
  const seen = new Recorder('admin values');
  const listener = db.ref(`${p}/n`).on('value', (s) => seen.push(s.val()));
  await seen.until(lastIs(null), 'the first (empty) value');
  await within(other.db.ref(`${p}/n`).set(0), 'the other app\'s write');
  await seen.until(lastIs(0), 'the change');

  // Two apps increment one counter by transactions, 20 times each, concurrently.
  const increments = [];
  for (let i = 0; i < 20; i++) {
    for (const d of [db, other.db]) increments.push(d.ref(`${p}/n`).transaction((n) => (n ?? 0) + 1));
  }
  const results = await within(Promise.all(increments), 'the transactions');
  assert.ok(results.every((r) => r.committed));
  await seen.until(lastIs(40), 'every increment, once');
  db.ref(`${p}/n`).off('value', listener);
  await deleteApp(app);
  await deleteApp(other.app);
});

test('an Admin SDK app\'s onDisconnect writes run when it goes away', { skip }, async () => {
  const { app, db } = adminApp();
  const p = uniquePath('admin-presence');
  await within(db.ref(`${p}/online`).set(true), 'online');
  await within(db.ref(`${p}/online`).onDisconnect().set(false), 'onDisconnect registered');
  await within(db.ref(`${p}/gone`).onDisconnect().set({ '.sv': 'timestamp' }), 'a server timestamp on disconnect');
  const seen = new Recorder('client values');
  seen.track(clientOnValue(reader.ref(p), (s) => seen.push(s.val())));
  await seen.until((v) => v.at(-1)?.online === true, 'online');
  await deleteApp(app);
  await seen.until((v) => v.at(-1)?.online === false && typeof v.at(-1)?.gone === 'number', 'the onDisconnect writes');
});

test('over TLS, the Admin SDK with Kora\'s admin secret as its credential (no emulator mode, no mock tokens)',
  { skip, timeout: 60_000 }, async () => {
  const secret = 'admin-secret-for-the-admin-sdk-0123456789';
  const { port, ca, stop } = await startTlsKora({ config: `[auth]\nadmin_secret = "${secret}"\n`, rules: RULES });
  try {
    // A Credential is anything with getAccessToken(); the SDK sends the token as its admin
    // credential (`gauth` on the socket).
    const script = (token) => `
      import { initializeApp } from 'firebase-admin/app';
      import { getDatabase } from 'firebase-admin/database';
      const credential = { getAccessToken: async () => ({ access_token: ${JSON.stringify(token)}, expires_in: 3600 }) };
      const app = initializeApp({ credential, projectId: 'demo-kora',
        databaseURL: 'https://localhost:${port}?ns=${NAMESPACE}' });
      const db = getDatabase(app);
      const outcome = await Promise.race([
        db.ref('admin/tls').set({ by: 'admin' }).then(() => 'written', (e) => e.code ?? String(e)),
        new Promise((resolve) => setTimeout(() => resolve('no answer'), 10000)),
      ]);
      const read = outcome === 'written' ? (await db.ref('admin/tls').once('value')).val() : null;
      console.log(JSON.stringify({ outcome, read }));
      process.exit(0);
    `;
    assert.deepEqual(JSON.parse(await runNode(script(secret), ca)), { outcome: 'written', read: { by: 'admin' } });
    // Any other credential is refused: the rules refuse every client but the administrator.
    const other = JSON.parse(await runNode(script('not-the-admin-secret-0000000000000000'), ca));
    assert.notEqual(other.outcome, 'written');
  } finally {
    stop();
  }
});
