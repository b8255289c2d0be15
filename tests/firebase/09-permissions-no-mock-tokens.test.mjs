// 9b. Without `[firebase] mock_tokens = true`, unsigned emulator tokens (mock user tokens and
//     the `owner` admin token) do not authenticate: a REST request carrying one is refused
//     with 401, as for any invalid credential, under rules that need authentication.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { koraOnly, mockToken, rest, serverWithApps, uniquePath } from './harness.mjs';

const skip = koraOnly('it does not read Kora rules files or mock_tokens');

const RULES = {
  '**': { read: 'true', write: 'true' },
  't/$run/members/**': { read: 'auth != null', write: 'auth != null' },
  't/$run/secret/**': { read: 'false', write: 'false' },
};

const { server } = serverWithApps([], { rules: RULES, skip });

test('without mock_tokens a mock user token is refused over REST (?auth= and Bearer): 401 with an error body', { skip }, async () => {
  const p = uniquePath('no-mock');
  const token = mockToken({ sub: 'ada' });
  for (const [how, url, headers] of [
    ['?auth=', `/${p}/members.json?auth=${token}`, {}],
    ['Bearer', `/${p}/members.json`, { Authorization: `Bearer ${token}` }],
  ]) {
    const r = await rest(server, 'GET', url, { headers });
    assert.equal(r.status, 401, `${how}: ${r.status} ${r.text}`);
    assert.equal(typeof r.json?.error, 'string', `${how}: {"error": "…"} body, got ${r.text}`);
    const w = await rest(server, 'PUT', url, { headers, body: { x: 1 } });
    assert.equal(w.status, 401, `${how} PUT: ${w.status} ${w.text}`);
  }
  // Anonymous requests are still served where the rules allow.
  const open = await rest(server, 'PUT', `/${p}/open.json`, { body: 1 });
  assert.equal(open.status, 200, open.text);
});

test('without mock_tokens the `owner` token is not an admin: a read of a denied path is refused with 401', { skip }, async () => {
  const p = uniquePath('no-owner');
  const r = await rest(server, 'GET', `/${p}/secret.json`, { headers: { Authorization: 'Bearer owner' } });
  assert.equal(r.status, 401, r.text);
  assert.equal(typeof r.json?.error, 'string');
});
