// 19. Long polling (`/.lp`) in Chromium: the transport the web SDK falls back to when
//     WebSockets are blocked or forced off, and its upgrade to a WebSocket.
//     - forceLongPolling(): the page reads, writes, listens and runs transactions over long
//       polls only, beside a Node client on a WebSocket;
//     - no WebSocket at all in the page, or one whose every connection is refused (a closed
//       port, a proxy that blocks them): the SDK falls back to long polling, and works;
//     - a page whose previous WebSocket failed starts on long polling, upgrades to a
//       WebSocket (`s=` naming its session), and goes on working across the switch.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { onValue, runTransaction, set } from '@firebase/database';

import { chromium, noChromium, seenIn } from './browser.mjs';
import { Recorder, koraOnly, lastIs, read, same, serverWithApps, uniquePath, waitFor, within } from './harness.mjs';

const skip = noChromium || koraOnly('it does not serve long polling');
const { server, apps: [node] } = serverWithApps(['node'], { skip });
const newPage = chromium(skip);

/** The requests the page makes to the server's long-polling endpoint. */
function countPolls(page) {
  const polls = { count: 0 };
  page.on('request', (request) => {
    if (request.url().includes('/.lp?')) polls.count += 1;
  });
  return polls;
}

/** A page and a Node client see each other's writes; a transaction from each counts exactly. */
async function worksBothWays(page, label) {
  const p = uniquePath(label);
  await page.evaluate((p) => window.listen(p), p);
  await within(set(node.ref(p), { from: 'node' }), 'the Node write');
  await waitFor(async () => same((await seenIn(page, p)).at(-1), { from: 'node' }), undefined, 'the page to hear Node');
  const heard = new Recorder('Node values');
  heard.track(onValue(node.ref(`${p}/page`), (s) => heard.push(s.val())));
  await page.evaluate((p) => fb.set(fb.ref(window.db, `${p}/page`), { n: 1 }), p);
  await heard.until(lastIs({ n: 1 }), 'Node to hear the page');
  const counter = `${p}/counter`;
  const fromPage = page.evaluate(async (p) => {
    const ref = fb.ref(window.db, p);
    for (let i = 0; i < 5; i++) await fb.runTransaction(ref, (n) => (n ?? 0) + 1);
  }, counter);
  const fromNode = (async () => {
    for (let i = 0; i < 5; i++) await runTransaction(node.ref(counter), (n) => (n ?? 0) + 1);
  })();
  await within(Promise.all([fromPage, fromNode]), 'the transactions');
  assert.equal((await read(node.ref(counter))).val(), 10);
}

test('with forceLongPolling(), the page works over long polls alone', { skip }, async () => {
  let polls;
  const page = await newPage(server, {
    prepare: (page) => { polls = countPolls(page); },
    init: 'fb.forceLongPolling();',
  });
  await worksBothWays(page, 'lp-forced');
  assert.ok(polls.count > 3, `the page polled (${polls.count} requests)`);
  const logs = await page.evaluate(() => window.logs.join('\n'));
  assert.match(logs, /Connecting via long-poll/);
  assert.doesNotMatch(logs, /Websocket connecting/);
  await page.close();
});

test('a page without WebSockets falls back to long polling', { skip }, async () => {
  let polls;
  const page = await newPage(server, {
    prepare: async (page) => {
      polls = countPolls(page);
      await page.evaluateOnNewDocument(() => { delete window.WebSocket; window.WebSocket = undefined; });
    },
  });
  await worksBothWays(page, 'lp-no-websocket');
  assert.ok(polls.count > 3, `the page polled (${polls.count} requests)`);
  await page.close();
});

test('a page whose WebSockets are refused (a closed port, a proxy) falls back to long polling', { skip }, async () => {
  let polls;
  const page = await newPage(server, {
    prepare: async (page) => {
      polls = countPolls(page);
      // Every WebSocket the page opens fails as a refused connection does.
      await page.evaluateOnNewDocument(() => {
        window.WebSocket = class RefusedWebSocket extends EventTarget {
          constructor() {
            super();
            this.readyState = 0;
            setTimeout(() => {
              this.readyState = 3;
              this.onerror?.(new Event('error'));
              this.onclose?.({ code: 1006, reason: '', wasClean: false });
            }, 10);
          }
          send() { throw new Error('not open'); }
          close() {}
        };
      });
    },
  });
  await worksBothWays(page, 'lp-refused-websocket');
  assert.ok(polls.count > 3, `the page polled (${polls.count} requests)`);
  const logs = await page.evaluate(() => window.logs.join('\n'));
  assert.match(logs, /Connecting via long-poll/);
  await page.close();
});

test('a page that starts on long polling upgrades to a WebSocket and goes on working', { skip }, async () => {
  const page = await newPage(server, {
    // What the SDK remembers when a WebSocket failed before: it starts with long polling.
    prepare: (page) => page.evaluateOnNewDocument(() => {
      localStorage.setItem('firebase:previous_websocket_failure', 'true');
    }),
  });
  const p = uniquePath('lp-upgrade');
  await page.evaluate((p) => window.listen(p), p);
  await waitFor(
    () => page.evaluate(() => window.logs.some((m) => m.includes('cleaning up and promoting a connection'))),
    undefined,
    'the upgrade to a WebSocket',
  );
  const logs = await page.evaluate(() => window.logs.join('\n'));
  assert.match(logs, /Connecting via long-poll/);
  // After the switch: the listen made on the polls still hears, and everything else works.
  await within(set(node.ref(p), { after: 'upgrade' }), 'the Node write');
  await waitFor(async () => same((await seenIn(page, p)).at(-1), { after: 'upgrade' }), undefined, 'the page to hear Node');
  await worksBothWays(page, 'lp-upgraded');
  await page.close();
});
