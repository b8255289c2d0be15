// 17. Google's web SDK in a real browser (Debian's Chromium, driven by puppeteer-core): the
//     SDK bundled for the browser (esbuild, from this suite's packages), in a page served from
//     an origin of its own, against the same server as a Node client. A page's listener hears
//     the Node client, the Node client hears the page, a query window moves, a transaction
//     from the page and one from Node interleave exactly, and writes made in the page while it
//     is offline reach the server in order once it is back (browser.mjs: the page and its
//     browser).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { get, onValue, runTransaction, set } from '@firebase/database';

import { chromium, noChromium as skip, seenIn } from './browser.mjs';
import { Recorder, koraOnly, lastIs, read, same, serverWithApps, uniquePath, waitFor, within } from './harness.mjs';

const { server, apps: [node] } = serverWithApps(['node'], { skip });
const newPage = chromium(skip);
const sdkPage = () => newPage(server);

test('in Chromium, a page and a Node client see each other\'s writes, and a query window moves', { skip }, async () => {
  const page = await sdkPage();
  const p = uniquePath('browser');
  await page.evaluate((p) => window.listen(p), p);
  await within(set(node.ref(p), { from: 'node' }), 'the Node write');
  await waitFor(async () => same((await seenIn(page, p)).at(-1), { from: 'node' }), undefined, 'the page to hear Node');

  await page.evaluate((p) => fb.set(fb.ref(window.db, `${p}/page`), true), p);
  assert.deepEqual((await read(node.ref(p))).val(), { from: 'node', page: true });

  const scores = `${p}/scores`;
  await within(set(node.ref(scores), { a: { s: 1 }, b: { s: 5 }, c: { s: 3 } }), 'scores');
  await page.evaluate((p) => window.listen(p, { child: 's', limit: 2 }), scores);
  await waitFor(async () => same((await seenIn(page, scores)).at(-1), ['c', 'b']), undefined, 'the top two');
  await within(set(node.ref(`${scores}/a/s`), 9), 'a rises');
  await waitFor(async () => same((await seenIn(page, scores)).at(-1), ['b', 'a']), undefined, 'the window to move');
  await page.close();
});

test('in Chromium, transactions from the page and from Node increment one counter exactly', { skip }, async () => {
  const page = await sdkPage();
  const p = uniquePath('browser-counter');
  const fromPage = page.evaluate(async (p) => {
    const ref = fb.ref(window.db, p);
    await Promise.all(Array.from({ length: 15 }, () => fb.runTransaction(ref, (n) => (n ?? 0) + 1)));
  }, p);
  const fromNode = Promise.all(Array.from({ length: 15 }, () => runTransaction(node.ref(p), (n) => (n ?? 0) + 1)));
  await within(Promise.all([fromPage, fromNode]), 'the transactions');
  assert.equal((await get(node.ref(p))).val(), 30);
  await page.close();
});

test('in Chromium, writes made while the page is offline reach the server in order when it is back', { skip: skip || koraOnly('it reorders a set followed by an update') }, async () => {
  const page = await sdkPage();
  const p = uniquePath('browser-offline');
  const seen = new Recorder('Node values');
  seen.track(onValue(node.ref(p), (s) => seen.push(s.val())));
  await page.evaluate((p) => fb.set(fb.ref(window.db, p), { n: 0 }), p);
  await seen.until(lastIs({ n: 0 }), 'the first write');

  const states = [null, { n: 0 }, { n: 1 }, { n: 2, m: 'x' }, { n: 3, m: 'x' }, { n: 3 }, { n: 4, list: true }];
  await page.evaluate(async (p) => {
    fb.goOffline(window.db);
    const ref = fb.ref(window.db, p);
    window.pending = [
      fb.set(ref, { n: 1 }),
      fb.update(ref, { n: 2, m: 'x' }),
      fb.set(fb.ref(window.db, `${p}/n`), 3),
      fb.remove(fb.ref(window.db, `${p}/m`)),
      fb.update(ref, { n: 4, list: true }),
    ];
  }, p);
  // Nothing reached the server while the page was offline.
  assert.deepEqual((await read(node.ref(p))).val(), { n: 0 });
  await page.evaluate(async () => {
    fb.goOnline(window.db);
    await Promise.all(window.pending);
  });
  await seen.until(lastIs(states.at(-1)), 'the last offline write');
  const order = seen.events.map((v) => states.findIndex((s) => same(s, v)));
  assert.ok(!order.includes(-1), `a state no prefix of the writes gives: ${JSON.stringify(seen.events)}`);
  for (let i = 1; i < order.length; i++) assert.ok(order[i] >= order[i - 1], `out of order: ${JSON.stringify(seen.events)}`);
  seen.off();
  await page.close();
});
