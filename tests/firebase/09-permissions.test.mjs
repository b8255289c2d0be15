// 9. Permission denied under a Kora rules file (docs/rules.md), seen through the SDK:
//    - writes (set / update / push / onDisconnect) reject with code PERMISSION_DENIED,
//    - a listener is cancelled with an error whose code is PERMISSION_DENIED,
//    - get() rejects;
//    and with `[firebase] mock_tokens = true`, emulator mock tokens (mockUserToken) authenticate:
//    `auth.sub == $uid` lets a user read and write their own path and not another's.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { get, onDisconnect, onValue, push, runTransaction, set, update } from '@firebase/database';

import { Recorder, firebaseApp, koraOnly, rest, serverWithApps, uniquePath, within } from './harness.mjs';

const skip = koraOnly('it does not read Kora rules files or mock_tokens');

const RULES = {
  '**': { read: 'true', write: 'true' },
  't/$run/secret/**': { read: 'false', write: 'false' },
  't/$run/users/$uid/**': {
    read: 'auth != null && auth.sub == $uid',
    write: 'auth != null && auth.sub == $uid',
  },
  't/$run/members/**': { read: 'auth != null', write: 'auth != null' },
};
const CONFIG = '[firebase]\nmock_tokens = true\n';

const { server, apps } = serverWithApps(
  ['anonymous', ['ada', { mockUserToken: { sub: 'ada' } }], ['bob', { mockUserToken: { user_id: 'bob' } }]],
  { rules: RULES, config: CONFIG, skip },
);
const [anon, ada, bob] = apps;

/** Assert that `promise` rejects with an error whose code is PERMISSION_DENIED. */
async function assertDenied(promise, what) {
  await assert.rejects(within(promise, what), (err) => {
    assert.equal(err.code, 'PERMISSION_DENIED', `${what}: error code (message: ${err.message})`);
    assert.match(err.message, /^PERMISSION_DENIED/);
    return true;
  });
}

/** Assert that `promise` (a get()) rejects. */
async function assertGetRejected(promise, what) {
  await assert.rejects(within(promise, what), (err) => {
    assert.ok(err instanceof Error, `${what}: an Error`);
    assert.doesNotMatch(err.message, /timed out/);
    return true;
  });
}

/** Read with the owner token over REST (bypasses the rules): what is really stored. */
async function stored(path) {
  const r = await rest(server, 'GET', `/${path}.json`, { headers: { Authorization: 'Bearer owner' } });
  assert.equal(r.status, 200, `owner read of ${path}: ${r.text}`);
  return r.json;
}

test('set() under a path whose write rule is false rejects with code PERMISSION_DENIED and writes nothing', { skip }, async () => {
  const p = uniquePath('perm');
  await assertDenied(set(anon.ref(`${p}/secret`), 'x'), 'set secret');
  await assertDenied(set(anon.ref(`${p}/secret/deep/er`), { a: 1 }), 'set beneath secret');
  // Authentication does not help against `false`.
  await assertDenied(set(ada.ref(`${p}/secret/by-ada`), 1), 'set secret as ada');
  assert.equal(await stored(`${p}/secret`), null);
  // The same client may still write where the rules allow.
  await within(set(anon.ref(`${p}/open`), 'ok'), 'set an open path');
  assert.equal(await stored(`${p}/open`), 'ok');
});

test('update(), push() and onDisconnect().set() under a denied path reject with PERMISSION_DENIED', { skip }, async () => {
  const p = uniquePath('perm-ops');
  await assertDenied(update(anon.ref(`${p}/secret`), { a: 1, 'b/c': 2 }), 'update secret');
  // A multi-path update touching an allowed and a denied path is refused whole.
  await assertDenied(update(anon.ref(p), { open: 1, 'secret/x': 2 }), 'update spanning open and secret');
  assert.equal(await stored(`${p}/open`), null, 'the allowed half of the refused update was not written');
  const pushed = push(anon.ref(`${p}/secret/list`), 'x');
  await assertDenied(pushed, 'push into secret');
  await assertDenied(onDisconnect(anon.ref(`${p}/secret/od`)).set('x'), 'onDisconnect().set into secret');
  await assert.rejects(
    within(runTransaction(anon.ref(`${p}/secret/tx`), (v) => (v ?? 0) + 1), 'transaction in secret'),
    (err) => /permission_denied/i.test(err.message),
  );
  assert.equal(await stored(`${p}/secret`), null);
});

test('a listener on a path whose read rule is false is cancelled with code PERMISSION_DENIED', { skip }, async () => {
  const p = uniquePath('perm-listen');
  const events = new Recorder('secret listener');
  events.track(
    onValue(
      anon.ref(`${p}/secret`),
      (s) => events.push({ value: s.val() }),
      (err) => events.push({ cancelled: err.code, message: err.message }),
    ),
  );
  const [first] = await events.take(1);
  assert.equal(first.cancelled, 'PERMISSION_DENIED', JSON.stringify(first));
  assert.match(first.message, /^permission_denied at \//);
  // A listener on an allowed sibling on the same connection still works.
  const ok = new Recorder('open listener');
  ok.track(onValue(anon.ref(`${p}/open`), (s) => ok.push(s.val())));
  await within(set(ada.ref(`${p}/open`), 'visible'), 'write open');
  await ok.until((v) => v.at(-1) === 'visible', 'the open value');
  assert.deepEqual(events.drain(), [], 'nothing after the cancel');
  events.off();
  ok.off();
});

test('get() of a path whose read rule is false rejects', { skip }, async () => {
  const p = uniquePath('perm-get');
  await assertGetRejected(get(anon.ref(`${p}/secret`)), 'get secret');
  await assertGetRejected(get(anon.ref(`${p}/secret/deep`)), 'get beneath secret');
  await assertGetRejected(get(ada.ref(`${p}/secret`)), 'get secret as ada');
});

test('mock tokens: a user (sub) reads and writes their own path, not another user\'s', { skip }, async () => {
  const p = uniquePath('perm-users');
  await within(set(ada.ref(`${p}/users/ada`), { name: 'Ada', n: 1 }), 'ada writes her own path');
  await within(update(ada.ref(`${p}/users/ada`), { n: 2 }), 'ada updates her own path');
  assert.deepEqual((await within(get(ada.ref(`${p}/users/ada`)), 'ada reads her own path')).val(), { name: 'Ada', n: 2 });

  await assertDenied(set(bob.ref(`${p}/users/ada/name`), 'Mallory'), 'bob writes ada');
  await assertGetRejected(get(bob.ref(`${p}/users/ada`)), 'bob reads ada');
  await assertDenied(set(anon.ref(`${p}/users/ada/name`), 'Anon'), 'anonymous writes ada');
  await assertGetRejected(get(anon.ref(`${p}/users/ada`)), 'anonymous reads ada');

  // user_id works as well as sub (the SDK puts the same id in both).
  await within(set(bob.ref(`${p}/users/bob`), { name: 'Bob' }), 'bob writes his own path');
  assert.deepEqual((await within(get(bob.ref(`${p}/users/bob`)), 'bob reads his own path')).val(), { name: 'Bob' });
  await assertDenied(set(ada.ref(`${p}/users/bob/x`), 1), 'ada writes bob');

  assert.deepEqual(await stored(`${p}/users`), { ada: { name: 'Ada', n: 2 }, bob: { name: 'Bob' } });
});

test('mock tokens: a user\'s listener on their own path gets updates; another user\'s listener there is cancelled', { skip }, async () => {
  const p = uniquePath('perm-users-live');
  const mine = new Recorder('ada on ada');
  mine.track(onValue(ada.ref(`${p}/users/ada`), (s) => mine.push(s.val()), (e) => mine.push({ cancelled: e.code })));
  const theirs = new Recorder('bob on ada');
  theirs.track(onValue(bob.ref(`${p}/users/ada`), (s) => theirs.push(s.val()), (e) => theirs.push({ cancelled: e.code })));
  await mine.until((v) => v.length === 1 && v[0] === null, 'ada: initial null');
  assert.deepEqual(await theirs.next(), { cancelled: 'PERMISSION_DENIED' });

  // A second connection of ada's (another app with the same token) writes; the first sees it.
  const ada2 = firebaseApp(server, 'ada-2', { mockUserToken: { sub: 'ada' } });
  await within(set(ada2.ref(`${p}/users/ada/status`), 'here'), 'ada (second app) writes');
  await mine.until((v) => v.at(-1)?.status === 'here', 'ada sees her write');
  assert.deepEqual(theirs.drain(), []);
  await ada2.close();
  mine.off();
  theirs.off();
});

test('mock tokens: `auth != null` admits any signed-in user and refuses anonymous clients', { skip }, async () => {
  const p = uniquePath('perm-members');
  await within(set(ada.ref(`${p}/members/ada`), true), 'ada writes');
  await within(set(bob.ref(`${p}/members/bob`), true), 'bob writes');
  assert.deepEqual((await within(get(bob.ref(`${p}/members`)), 'bob reads')).val(), { ada: true, bob: true });
  await assertDenied(set(anon.ref(`${p}/members/anon`), true), 'anonymous writes');
  await assertGetRejected(get(anon.ref(`${p}/members`)), 'anonymous reads');
});
