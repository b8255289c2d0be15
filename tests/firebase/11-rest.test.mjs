// 11. The Firebase REST API with plain fetch (no SDK): GET / PUT / PATCH / POST / DELETE on
//     /{path}.json and their answers, print=silent, shallow, queries, auth tokens, ETags,
//     errors, and streaming (Accept: text/event-stream) parsed by hand.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { onValue, set, update } from '@firebase/database';

import {
  Recorder,
  koraOnly,
  lastIs,
  mockToken,
  openEventStream,
  read,
  rest,
  same,
  serverWithApps,
  uniquePath,
  within,
} from './harness.mjs';

const RULES = {
  '**': { read: 'true', write: 'true' },
  't/$run/secret/**': { read: 'false', write: 'false' },
  't/$run/users/$uid/**': {
    read: 'auth != null && auth.sub == $uid',
    write: 'auth != null && auth.sub == $uid',
  },
};
const CONFIG = '[firebase]\nmock_tokens = true\n';

const { server, apps: [sdk] } = serverWithApps(['sdk'], { rules: RULES, config: CONFIG });

const json = (p, params = {}) => {
  const qs = new URLSearchParams(params).toString();
  return `/${p}.json${qs ? `?${qs}` : ''}`;
};
const PUSH_ID = /^[-0-9A-Za-z_]{20}$/;

// ---- plain CRUD -----------------------------------------------------------------------------

test('PUT /{path}.json answers 200 with the written data (JSON), and GET returns it', async () => {
  const p = uniquePath('rest-put');
  const value = { a: 1, b: { c: 'two', d: [true, false] }, e: 2.5 };
  const put = await rest(server, 'PUT', json(p), { body: value });
  assert.equal(put.status, 200, put.text);
  assert.match(put.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(put.json, value);
  const got = await rest(server, 'GET', json(p));
  assert.equal(got.status, 200);
  assert.match(got.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(got.json, value);
  assert.deepEqual((await rest(server, 'GET', json(`${p}/b/c`))).json, 'two');
  // A primitive PUT.
  const leaf = await rest(server, 'PUT', json(`${p}/leaf`), { body: 'text' });
  assert.deepEqual(leaf.json, 'text');
  assert.deepEqual((await rest(server, 'GET', json(`${p}/leaf`))).json, 'text');
});

test('GET of an absent path answers 200 with null', async () => {
  const r = await rest(server, 'GET', json(`${uniquePath('rest-absent')}/nothing`));
  assert.equal(r.status, 200);
  assert.equal(r.text.trim(), 'null');
});

test('DELETE /{path}.json answers 200 with null and removes the data', async () => {
  const p = uniquePath('rest-delete');
  await rest(server, 'PUT', json(p), { body: { keep: 1, drop: { x: 1 } } });
  const del = await rest(server, 'DELETE', json(`${p}/drop`));
  assert.equal(del.status, 200);
  assert.equal(del.text.trim(), 'null');
  assert.deepEqual((await rest(server, 'GET', json(p))).json, { keep: 1 });
});

test('POST /{path}.json answers {"name": <20-character push id>}; the ids sort in creation order', { skip: koraOnly('it has no POST') }, async () => {
  const p = uniquePath('rest-post');
  const names = [];
  for (let i = 0; i < 3; i++) {
    const r = await rest(server, 'POST', json(p), { body: { i } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['name']);
    assert.match(r.json.name, PUSH_ID);
    names.push(r.json.name);
  }
  assert.deepEqual([...names].sort(), names);
  assert.deepEqual(
    (await rest(server, 'GET', json(p))).json,
    Object.fromEntries(names.map((n, i) => [n, { i }])),
  );
});

test('PATCH /{path}.json answers with the request data and merges it (multi-path keys, null deletes)', { skip: koraOnly('its PATCH answers the whole value') }, async () => {
  const p = uniquePath('rest-patch');
  await rest(server, 'PUT', json(p), { body: { a: 1, b: { c: 1, d: 1 }, gone: true } });
  const patch = { a: 2, 'b/c': 3, gone: null, 'new/x': 'y' };
  const r = await rest(server, 'PATCH', json(p), { body: patch });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, patch);
  assert.deepEqual((await rest(server, 'GET', json(p))).json, { a: 2, b: { c: 3, d: 1 }, new: { x: 'y' } });
});

test('POST with X-HTTP-Method-Override: PUT / PATCH / DELETE acts as that method', { skip: koraOnly('it has no POST') }, async () => {
  const p = uniquePath('rest-override');
  const put = await rest(server, 'POST', json(p), { body: { a: 1 }, headers: { 'X-HTTP-Method-Override': 'PUT' } });
  assert.equal(put.status, 200, put.text);
  assert.deepEqual(put.json, { a: 1 });
  const patch = await rest(server, 'POST', json(p), { body: { b: 2 }, headers: { 'X-HTTP-Method-Override': 'PATCH' } });
  assert.deepEqual(patch.json, { b: 2 });
  assert.deepEqual((await rest(server, 'GET', json(p))).json, { a: 1, b: 2 });
  const del = await rest(server, 'POST', json(p), { headers: { 'X-HTTP-Method-Override': 'DELETE' } });
  assert.equal(del.status, 200);
  assert.equal((await rest(server, 'GET', json(p))).json, null);
});

test('print=silent answers 204 with no body for PUT, PATCH, POST and DELETE, and the writes happen', { skip: koraOnly('it ignores print=silent') }, async () => {
  const p = uniquePath('rest-silent');
  const put = await rest(server, 'PUT', json(p, { print: 'silent' }), { body: { a: 1 } });
  assert.equal(put.status, 204);
  assert.equal(put.text, '');
  const patch = await rest(server, 'PATCH', json(p, { print: 'silent' }), { body: { b: 2 } });
  assert.equal(patch.status, 204);
  assert.equal(patch.text, '');
  const post = await rest(server, 'POST', json(`${p}/list`, { print: 'silent' }), { body: 'x' });
  assert.equal(post.status, 204);
  assert.equal(post.text, '');
  const v = (await rest(server, 'GET', json(p))).json;
  assert.equal(v.a, 1);
  assert.equal(v.b, 2);
  assert.deepEqual(Object.values(v.list), ['x']);
  const del = await rest(server, 'DELETE', json(p, { print: 'silent' }));
  assert.equal(del.status, 204);
  assert.equal(del.text, '');
  assert.equal((await rest(server, 'GET', json(p))).json, null);
});

test('print=pretty answers the same JSON', async () => {
  const p = uniquePath('rest-pretty');
  await rest(server, 'PUT', json(p), { body: { a: { b: 1 } } });
  const r = await rest(server, 'GET', json(p, { print: 'pretty' }));
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { a: { b: 1 } });
});

test('shallow=true truncates object children to true and keeps primitives', { skip: koraOnly('it ignores shallow') }, async () => {
  const p = uniquePath('rest-shallow');
  await rest(server, 'PUT', json(p), { body: { obj: { deep: { x: 1 } }, n: 2, s: 'str', t: true } });
  const r = await rest(server, 'GET', json(p, { shallow: 'true' }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { obj: true, n: 2, s: 'str', t: true });
  assert.deepEqual((await rest(server, 'GET', json(`${p}/n`, { shallow: 'true' }))).json, 2);
  assert.equal((await rest(server, 'GET', json(`${p}/none`, { shallow: 'true' }))).json, null);
});

test('arrays: a PUT array reads back as an array; priorities via .value / .priority, shown with format=export', { skip: koraOnly('its GET ignores format=export') }, async () => {
  const p = uniquePath('rest-export');
  await rest(server, 'PUT', json(`${p}/list`), { body: ['a', 'b', 'c'] });
  assert.deepEqual((await rest(server, 'GET', json(`${p}/list`))).json, ['a', 'b', 'c']);
  assert.deepEqual((await rest(server, 'GET', json(`${p}/list/1`))).json, 'b');

  await rest(server, 'PUT', json(`${p}/prio`), { body: { x: { '.value': 1, '.priority': 5 }, y: 2, '.priority': 'p' } });
  assert.deepEqual((await rest(server, 'GET', json(`${p}/prio`))).json, { x: 1, y: 2 });
  assert.deepEqual((await rest(server, 'GET', json(`${p}/prio`, { format: 'export' }))).json, {
    x: { '.value': 1, '.priority': 5 },
    y: 2,
    '.priority': 'p',
  });
  // The SDK sees the same priorities.
  const snap = await read(sdk.ref(`${p}/prio`));
  assert.equal(snap.priority, 'p');
  assert.equal(snap.child('x').priority, 5);
});

test('server values in REST bodies: {".sv": "timestamp"} and {".sv": {"increment": n}}', async () => {
  const p = uniquePath('rest-sv');
  const t0 = Date.now();
  const r = await rest(server, 'PUT', json(p), { body: { at: { '.sv': 'timestamp' }, n: 5 } });
  assert.equal(r.status, 200, r.text);
  const t1 = Date.now();
  const at = (await rest(server, 'GET', json(`${p}/at`))).json;
  assert.ok(Number.isInteger(at) && at >= t0 - 2000 && at <= t1 + 2000, `timestamp ${at}`);
  await rest(server, 'PATCH', json(p), { body: { n: { '.sv': { increment: 3 } } } });
  assert.equal((await rest(server, 'GET', json(`${p}/n`))).json, 8);
});

test('REST writes reach SDK listeners, and SDK writes are visible over REST', async () => {
  const p = uniquePath('rest-sdk');
  const seen = new Recorder('sdk values');
  seen.track(onValue(sdk.ref(p), (s) => seen.push(s.val())));
  await seen.until(lastIs(null), 'initial null');
  await rest(server, 'PUT', json(p), { body: { from: 'rest' } });
  await seen.until(lastIs({ from: 'rest' }), 'the REST write on the SDK');
  await within(update(sdk.ref(p), { also: 'sdk' }), 'sdk update');
  assert.deepEqual((await rest(server, 'GET', json(p))).json, { from: 'rest', also: 'sdk' });
  seen.off();
});

// ---- queries --------------------------------------------------------------------------------

const QDATA = {
  a: { s: 3, n: { d: 1 } },
  b: { s: 1, n: { d: 3 } },
  c: { s: 2, n: { d: 2 } },
  d: { s: 2 },
  e: { other: 1 },
};
const QVALUES = { x: 3, y: 'a', z: true, w: 1 };
const QPRIO = { p1: { '.value': 1, '.priority': 2 }, p2: { '.value': 2, '.priority': 1 }, p3: 3 };

// [query parameters (values JSON-encoded as Firebase wants), data set, expected keys]. Results
// are compared as objects: the REST answer is unordered.
const REST_QUERIES = [
  [{ orderBy: '"s"' }, 'q', ['a', 'b', 'c', 'd', 'e']],
  [{ orderBy: '"s"', limitToFirst: '2' }, 'q', ['e', 'b']],
  [{ orderBy: '"s"', limitToLast: '2' }, 'q', ['d', 'a']],
  [{ orderBy: '"s"', startAt: '2' }, 'q', ['c', 'd', 'a']],
  [{ orderBy: '"s"', endAt: '2' }, 'q', ['e', 'b', 'c', 'd']],
  [{ orderBy: '"s"', equalTo: '2' }, 'q', ['c', 'd']],
  [{ orderBy: '"s"', startAt: '2', limitToFirst: '1' }, 'q', ['c']],
  [{ orderBy: '"s"', startAt: '1', endAt: '2', limitToLast: '2' }, 'q', ['c', 'd']],
  [{ orderBy: '"s"', startAfter: '2' }, 'q', ['a']],
  [{ orderBy: '"s"', endBefore: '2' }, 'q', ['e', 'b']],
  [{ orderBy: '"n/d"', startAt: '2' }, 'q', ['c', 'b']],
  [{ orderBy: '"$key"', startAt: '"b"', endAt: '"c"' }, 'q', ['b', 'c']],
  [{ orderBy: '"$key"', limitToLast: '1' }, 'q', ['e']],
  [{ orderBy: '"$key"', equalTo: '"d"' }, 'q', ['d']],
  [{ orderBy: '"$value"', limitToFirst: '1' }, 'v', ['z']],
  [{ orderBy: '"$value"', equalTo: '"a"' }, 'v', ['y']],
  [{ orderBy: '"$value"', startAt: '1', endAt: '3' }, 'v', ['w', 'x']],
  [{ orderBy: '"$priority"', limitToFirst: '2' }, 'p', ['p3', 'p2']],
  [{ orderBy: '"$priority"', startAt: '2' }, 'p', ['p1']],
];

let qbase;
async function queryData() {
  if (!qbase) {
    qbase = uniquePath('rest-query');
    await rest(server, 'PUT', json(qbase), { body: { q: QDATA, v: QVALUES, p: QPRIO } });
  }
  return qbase;
}
const plainValue = (v) => (v && typeof v === 'object' && '.value' in v ? v['.value'] : v);

for (const [params, set_, expected] of REST_QUERIES) {
  const text = new URLSearchParams(params).toString().replace(/%22/g, '"').replace(/%24/g, '$').replace(/%2F/g, '/');
  test(`REST query ?${text} → {${expected.join(', ')}}`, { skip: koraOnly('its REST API has no queries') }, async () => {
    const base = await queryData();
    const r = await rest(server, 'GET', json(`${base}/${set_}`, params));
    assert.equal(r.status, 200, r.text);
    const data = { q: QDATA, v: QVALUES, p: QPRIO }[set_];
    assert.deepEqual(r.json, Object.fromEntries(expected.map((k) => [k, plainValue(data[k])])));
  });
}

// ---- errors ---------------------------------------------------------------------------------

const assertError = (r, status, what) => {
  assert.equal(r.status, status, `${what}: status ${r.status}, body ${r.text}`);
  assert.equal(typeof r.json?.error, 'string', `${what}: body must be {"error": "…"}, got ${r.text}`);
};

test('errors: bad JSON and bad queries answer 400 with {"error": "…"}', { skip: koraOnly('it does not validate requests') }, async () => {
  const p = uniquePath('rest-errors');
  assertError(await rest(server, 'PUT', json(p), { body: '{"a": ', raw: true }), 400, 'PUT bad JSON');
  assertError(await rest(server, 'PATCH', json(p), { body: 'not json', raw: true }), 400, 'PATCH bad JSON');
  assertError(await rest(server, 'POST', json(p), { body: '{', raw: true }), 400, 'POST bad JSON');
  assertError(await rest(server, 'GET', json(p, { orderBy: '$key' })), 400, 'orderBy not JSON-quoted');
  assertError(await rest(server, 'GET', json(p, { limitToFirst: '2' })), 400, 'a filter without orderBy');
  assertError(
    await rest(server, 'GET', json(p, { orderBy: '"$key"', limitToFirst: '1', limitToLast: '1' })),
    400,
    'limitToFirst and limitToLast together',
  );
  assertError(await rest(server, 'GET', json(p, { orderBy: '"$key"', limitToFirst: 'abc' })), 400, 'a limit that is not a number');
  // Nothing was written by the refused writes.
  assert.equal((await rest(server, 'GET', json(p))).json, null);
});

test('permission denied answers 401 with {"error": "…"} for reads and writes', { skip: koraOnly('it has no rules over REST') }, async () => {
  const p = uniquePath('rest-denied');
  assertError(await rest(server, 'GET', json(`${p}/secret`)), 401, 'GET secret');
  assertError(await rest(server, 'PUT', json(`${p}/secret`), { body: 1 }), 401, 'PUT secret');
  assertError(await rest(server, 'PATCH', json(`${p}/secret`), { body: { a: 1 } }), 401, 'PATCH secret');
  assertError(await rest(server, 'POST', json(`${p}/secret`), { body: 1 }), 401, 'POST secret');
  assertError(await rest(server, 'DELETE', json(`${p}/secret`)), 401, 'DELETE secret');
  assertError(await rest(server, 'GET', json(`${p}/users/ada`)), 401, 'GET another user without a token');
});

// ---- auth -----------------------------------------------------------------------------------

test('auth=<token> and Authorization: Bearer <token> (mock user tokens) open the user\'s own path only', { skip: koraOnly('it has no auth over REST') }, async () => {
  const p = uniquePath('rest-auth');
  const ada = mockToken({ sub: 'ada' });
  const bob = mockToken({ sub: 'bob' });
  const put = await rest(server, 'PUT', json(`${p}/users/ada`, { auth: ada }), { body: { name: 'Ada' } });
  assert.equal(put.status, 200, put.text);
  const viaQuery = await rest(server, 'GET', json(`${p}/users/ada`, { auth: ada }));
  assert.equal(viaQuery.status, 200, viaQuery.text);
  assert.deepEqual(viaQuery.json, { name: 'Ada' });
  const viaHeader = await rest(server, 'GET', json(`${p}/users/ada`), { headers: { Authorization: `Bearer ${ada}` } });
  assert.equal(viaHeader.status, 200, viaHeader.text);
  assert.deepEqual(viaHeader.json, { name: 'Ada' });
  assertError(await rest(server, 'GET', json(`${p}/users/ada`, { auth: bob })), 401, 'bob reads ada');
  assertError(
    await rest(server, 'PUT', json(`${p}/users/ada/name`), { body: 'Mallory', headers: { Authorization: `Bearer ${bob}` } }),
    401,
    'bob writes ada',
  );
  assert.deepEqual((await rest(server, 'GET', json(`${p}/users/ada`, { auth: ada }))).json, { name: 'Ada' });
});

test('the owner token (Bearer owner / auth=owner) is an admin: it reads and writes past the rules', { skip: koraOnly('it has no auth over REST') }, async () => {
  const p = uniquePath('rest-owner');
  const w = await rest(server, 'PUT', json(`${p}/secret/x`), { body: 1, headers: { Authorization: 'Bearer owner' } });
  assert.equal(w.status, 200, w.text);
  const r = await rest(server, 'GET', json(`${p}/secret`, { auth: 'owner' }));
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { x: 1 });
});

// ---- ETags ----------------------------------------------------------------------------------

test('ETags: X-Firebase-ETag: true gives an ETag; if-match with it writes, a stale one gets 412 with the current value and ETag', { skip: koraOnly('it has no ETags') }, async () => {
  const p = uniquePath('rest-etag');
  await rest(server, 'PUT', json(p), { body: { v: 1 } });
  const g1 = await rest(server, 'GET', json(p), { headers: { 'X-Firebase-ETag': 'true' } });
  assert.equal(g1.status, 200);
  assert.deepEqual(g1.json, { v: 1 });
  const etag1 = g1.headers.get('etag');
  assert.ok(etag1, 'an ETag header');

  // Right ETag: written, and the answer carries the new ETag.
  const w = await rest(server, 'PUT', json(p), { body: { v: 2 }, headers: { 'if-match': etag1 } });
  assert.equal(w.status, 200, w.text);
  assert.deepEqual(w.json, { v: 2 });
  const etag2 = w.headers.get('etag');
  assert.ok(etag2 && etag2 !== etag1, `a new ETag after the write (${etag1} → ${etag2})`);
  const g2 = await rest(server, 'GET', json(p), { headers: { 'X-Firebase-ETag': 'true' } });
  assert.equal(g2.headers.get('etag'), etag2, 'GET gives the ETag the write answered');

  // Stale ETag: 412, nothing written, the body is the current value with its ETag.
  const stale = await rest(server, 'PUT', json(p), { body: { v: 3 }, headers: { 'if-match': etag1 } });
  assert.equal(stale.status, 412, stale.text);
  assert.deepEqual(stale.json, { v: 2 });
  assert.equal(stale.headers.get('etag'), etag2);
  assert.deepEqual((await rest(server, 'GET', json(p))).json, { v: 2 });

  // DELETE with if-match.
  const delStale = await rest(server, 'DELETE', json(p), { headers: { 'if-match': etag1 } });
  assert.equal(delStale.status, 412);
  const del = await rest(server, 'DELETE', json(p), { headers: { 'if-match': etag2 } });
  assert.equal(del.status, 200, del.text);
  assert.equal((await rest(server, 'GET', json(p))).json, null);
});

test('ETags: an absent location has the ETag null_etag; if-match: null_etag creates only if absent', { skip: koraOnly('it has no ETags') }, async () => {
  const p = uniquePath('rest-null-etag');
  const g = await rest(server, 'GET', json(p), { headers: { 'X-Firebase-ETag': 'true' } });
  assert.equal(g.status, 200);
  assert.equal(g.json, null);
  assert.equal(g.headers.get('etag'), 'null_etag');
  const create = await rest(server, 'PUT', json(p), { body: 'first', headers: { 'if-match': 'null_etag' } });
  assert.equal(create.status, 200, create.text);
  const again = await rest(server, 'PUT', json(p), { body: 'second', headers: { 'if-match': 'null_etag' } });
  assert.equal(again.status, 412, again.text);
  assert.equal(again.json, 'first');
  assert.ok(again.headers.get('etag') && again.headers.get('etag') !== 'null_etag');
  assert.equal((await rest(server, 'GET', json(p))).json, 'first');
});

test('ETags: an ETag is unchanged by writes elsewhere and changes with the data', { skip: koraOnly('it has no ETags') }, async () => {
  const p = uniquePath('rest-etag-scope');
  await rest(server, 'PUT', json(`${p}/mine`), { body: { a: 1 } });
  const etag = async () => (await rest(server, 'GET', json(`${p}/mine`), { headers: { 'X-Firebase-ETag': 'true' } })).headers.get('etag');
  const e1 = await etag();
  await rest(server, 'PUT', json(`${p}/other`), { body: 2 });
  assert.equal(await etag(), e1, 'a write elsewhere leaves the ETag');
  await rest(server, 'PATCH', json(`${p}/mine`), { body: { b: 2 } });
  assert.notEqual(await etag(), e1, 'a write to the data changes it');
});

// ---- streaming ------------------------------------------------------------------------------

const sse = koraOnly('it has no event streams');

/** The next non-keep-alive event, as {event, json}. */
async function nextEvent(stream) {
  const e = await stream.events.next();
  return { event: e.event, json: e.json };
}

test('streaming: the first event is put {"path": "/", "data": <value>}; REST PUT / PATCH / DELETE under it arrive as put / patch events at relative paths', { skip: sse }, async () => {
  const p = uniquePath('sse');
  await rest(server, 'PUT', json(p), { body: { a: 1, b: { c: 2 } } });
  const stream = await openEventStream(server, json(p));
  try {
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/', data: { a: 1, b: { c: 2 } } } });

    await rest(server, 'PUT', json(`${p}/x`), { body: 5 });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/x', data: 5 } });

    await rest(server, 'PUT', json(`${p}/b/c/deep`), { body: { d: true } });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/b/c/deep', data: { d: true } } });

    await rest(server, 'PATCH', json(p), { body: { a: 10, y: 'new' } });
    assert.deepEqual(await nextEvent(stream), { event: 'patch', json: { path: '/', data: { a: 10, y: 'new' } } });

    // A one-child PATCH arrives as the replacement of that child (docs/firebase.md,
    // "Differences from Firebase"): clients apply it as they would the one-key patch.
    await rest(server, 'PATCH', json(`${p}/b`), { body: { e: 4 } });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/b/e', data: 4 } });
    await rest(server, 'PATCH', json(`${p}/b`), { body: { e: 5, f: 6 } });
    assert.deepEqual(await nextEvent(stream), { event: 'patch', json: { path: '/b', data: { e: 5, f: 6 } } });

    await rest(server, 'DELETE', json(`${p}/x`));
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/x', data: null } });

    // A write outside the streamed path sends nothing: the next event is the write after it.
    await rest(server, 'PUT', json(`${p}-elsewhere`), { body: 1 });
    await rest(server, 'PUT', json(`${p}/z`), { body: 'last' });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/z', data: 'last' } });
  } finally {
    stream.close();
  }
});

test('streaming: a stream of an absent location starts with put null and follows the first write', { skip: sse }, async () => {
  const p = uniquePath('sse-absent');
  const stream = await openEventStream(server, json(p));
  try {
    assert.equal(stream.status, 200);
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/', data: null } });
    await rest(server, 'PUT', json(`${p}/k`), { body: 1 });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/k', data: 1 } });
  } finally {
    stream.close();
  }
});

test('streaming: a write that replaces an ancestor arrives as put at "/" with the new value', { skip: sse }, async () => {
  const p = uniquePath('sse-ancestor');
  await rest(server, 'PUT', json(`${p}/sub`), { body: { old: 1 } });
  const stream = await openEventStream(server, json(`${p}/sub`));
  try {
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/', data: { old: 1 } } });
    await rest(server, 'PUT', json(p), { body: { sub: { fresh: 2 }, sibling: 3 } });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/', data: { fresh: 2 } } });
  } finally {
    stream.close();
  }
});

test('streaming: writes made with the SDK arrive on a REST stream', { skip: sse }, async () => {
  const p = uniquePath('sse-sdk');
  const stream = await openEventStream(server, json(p));
  try {
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/', data: null } });
    await within(set(sdk.ref(`${p}/from`), 'sdk'), 'sdk set');
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/from', data: 'sdk' } });
    // An SDK update() may arrive as a patch or as puts; applied, the stream holds the data.
    let state = { from: 'sdk' };
    await within(update(sdk.ref(p), { a: 1, b: 2 }), 'sdk update');
    const apply = ({ event, json: ev }) => {
      const parts = ev.path.split('/').filter(Boolean);
      const setAt = (root, ps, v) => {
        if (ps.length === 0) return v;
        const o = root && typeof root === 'object' ? { ...root } : {};
        const child = setAt(o[ps[0]] ?? null, ps.slice(1), v);
        if (child === null) delete o[ps[0]];
        else o[ps[0]] = child;
        return Object.keys(o).length ? o : null;
      };
      if (event === 'put') state = setAt(state, parts, ev.data);
      else if (event === 'patch') for (const [k, v] of Object.entries(ev.data)) state = setAt(state, [...parts, ...k.split('/')], v);
      else assert.fail(`unexpected event ${event}`);
    };
    while (!same(state, { from: 'sdk', a: 1, b: 2 })) apply(await nextEvent(stream));
  } finally {
    stream.close();
  }
});

test('streaming: a stream the rules refuse answers 401; with the user\'s token (auth=) it streams', { skip: sse }, async () => {
  const p = uniquePath('sse-auth');
  const refused = await openEventStream(server, json(`${p}/secret`));
  refused.close();
  assert.equal(refused.status, 401, refused.text);
  const anon = await openEventStream(server, json(`${p}/users/ada`));
  anon.close();
  assert.equal(anon.status, 401, anon.text);

  const ada = mockToken({ sub: 'ada' });
  await rest(server, 'PUT', json(`${p}/users/ada`, { auth: ada }), { body: { n: 1 } });
  const stream = await openEventStream(server, json(`${p}/users/ada`, { auth: ada }));
  try {
    assert.equal(stream.status, 200);
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/', data: { n: 1 } } });
    await rest(server, 'PUT', json(`${p}/users/ada/n`, { auth: ada }), { body: 2 });
    assert.deepEqual(await nextEvent(stream), { event: 'put', json: { path: '/n', data: 2 } });
  } finally {
    stream.close();
  }
});
