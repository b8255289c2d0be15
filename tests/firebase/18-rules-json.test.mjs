// 18. Firebase's own security rules: a database.rules.json named in kora.toml
//     (`[firebase] rules`), seen through the SDK — writes and listens refused with
//     PERMISSION_DENIED by `.write`/`.read` rules on `auth.uid` and `$variables`, `.validate`
//     refusing bad data, and transactions under a data-dependent rule from two clients.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { get, onValue, runTransaction, set, update } from '@firebase/database';

import { koraOnly, serverWithApps, within } from './harness.mjs';

const skip = koraOnly('it is started without a rules file');

const RULES = `{
  // the shape of a typical app's rules
  "rules": {
    "profiles": {
      "$uid": {
        ".read": "auth != null",
        ".write": "auth != null && auth.uid == $uid",
        ".validate": "newData.hasChildren(['name'])",
        "name": { ".validate": "newData.isString() && newData.val().matches(/^[A-Za-z ]{1,20}$/)" },
        "$other": { ".validate": false }
      }
    },
    "private": { "$uid": { ".read": "auth.uid == $uid", ".write": "auth.uid == $uid" } },
    "counter": {
      ".read": true,
      ".write": "auth != null",
      ".validate": "newData.isNumber() && newData.val() == (data.exists() ? data.val() : 0) + 1"
    }
  }
}`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kora-rules-json-'));
const rulesFile = path.join(dir, 'database.rules.json');
fs.writeFileSync(rulesFile, RULES);
const CONFIG = `[firebase]\nmock_tokens = true\nrules = ${JSON.stringify(rulesFile)}\n`;

const { apps } = serverWithApps(
  [['ada', { mockUserToken: { sub: 'ada' } }], ['bob', { mockUserToken: { sub: 'bob' } }], 'anonymous'],
  { config: CONFIG, skip },
);
const [ada, bob, anon] = apps;

async function assertDenied(promise, what) {
  await assert.rejects(within(promise, what), (err) => {
    assert.equal(err.code, 'PERMISSION_DENIED', `${what}: ${err.message}`);
    return true;
  });
}

test('.write and .validate decide writes as Firebase does', { skip }, async () => {
  await within(set(ada.ref('profiles/ada'), { name: 'Ada Lovelace' }), 'own profile');
  await assertDenied(set(ada.ref('profiles/bob'), { name: 'Not Bob' }), "another user's profile");
  await assertDenied(set(ada.ref('profiles/ada'), { name: 'Ada 1815!' }), 'a name the regex refuses');
  await assertDenied(set(ada.ref('profiles/ada'), { name: 'Ada', age: 36 }), 'a child no rule allows');
  await assertDenied(set(ada.ref('profiles/ada'), { age: 36 }), 'a profile without a name');
  // An update is refused whole when one of its paths is.
  await assertDenied(update(ada.ref('profiles'), { 'ada/name': 'Ada', 'bob/name': 'Bob' }), 'a mixed update');
  await assertDenied(set(anon.ref('profiles/ada/name'), 'Anon'), 'an anonymous write');
  const profile = await within(get(bob.ref('profiles/ada')), "reading another's profile");
  assert.deepEqual(profile.val(), { name: 'Ada Lovelace' });
});

test('.read refuses a listen with PERMISSION_DENIED', { skip }, async () => {
  await within(set(bob.ref('private/bob'), { diary: 'x' }), "bob's private write");
  const cancelled = new Promise((resolve) => {
    onValue(ada.ref('private/bob'), () => resolve(null), (error) => resolve(error));
  });
  const error = await within(cancelled, 'the listen being cancelled');
  assert.equal(error?.code, 'PERMISSION_DENIED');
  // get() rejects with the server's message (the SDK sets no code on it).
  await assert.rejects(within(get(anon.ref('profiles/ada')), 'an anonymous read'), /Permission denied/);
});

test('transactions from two clients under a data-dependent rule lose no increment', { skip }, async () => {
  // Each client awaits its transaction before the next: the SDK sends the transactions it
  // has queued on one location as one write of their combined result, which this rule (one
  // more than before) would refuse on Firebase as well.
  const increments = async (app) => {
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push(await runTransaction(app.ref('counter'), (n) => (n ?? 0) + 1));
    }
    return results;
  };
  const results = (await within(Promise.all([increments(ada), increments(bob)]), 'ten transactions')).flat();
  assert.ok(results.every((r) => r.committed), 'every transaction committed');
  const counter = await within(get(anon.ref('counter')), 'the counter');
  assert.equal(counter.val(), 10);
  // A blind write that skips a number is refused by the rule.
  await assertDenied(set(ada.ref('counter'), 99), 'a write that is not the next number');
});
