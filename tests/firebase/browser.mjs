// The web SDK in Chromium, for the browser tests (17, 19): Debian's Chromium driven by
// puppeteer-core, and a site of its own origin serving the SDK bundled for the browser
// (esbuild) and a page that loads it as `window.fb`.
//
// Without Chromium (apt-get install chromium, or CHROMIUM=path) the tests say they were
// skipped, and fail under CI=true.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import puppeteer from 'puppeteer-core';

import { NAMESPACE, PROJECT_ID, waitFor } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium && process.env.CI) throw new Error(`CI runs the SDK in Chromium: ${CHROMIUM} is missing`);

/** A test's skip reason when there is no Chromium (false when there is). */
export const noChromium = !hasChromium && `skipped: no Chromium at ${CHROMIUM}`;

/** The SDK as one browser module, and a page that loads it as `window.fb`. */
async function serveSite() {
  const bundle = await build({
    stdin: {
      contents: "export { initializeApp } from '@firebase/app'; export * from '@firebase/database';",
      resolveDir: here,
      loader: 'js',
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    write: false,
    logLevel: 'warning',
  });
  const files = {
    '/': ['text/html', '<!doctype html><body><script type="module">import * as fb from "/firebase.js"; window.fb = fb;</script></body>'],
    '/firebase.js': ['text/javascript', bundle.outputFiles[0].text],
  };
  const httpServer = http.createServer((req, res) => {
    const file = files[req.url];
    if (!file) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
  });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${httpServer.address().port}/`, close: () => httpServer.close() };
}

/**
 * Registers the file's hooks: the site and the browser start before its tests (unless
 * `skip`) and stop after them. Returns `newPage(server, {before})`: a page whose SDK is
 * connected to `server` as `window.db`, after `before(page)` prepared it (e.g. with
 * `evaluateOnNewDocument`), with the SDK's log in `window.logs` and `window.listen(p,
 * query?)` recording what a listener sees in `window.seen[p]`.
 */
export function chromium(skip) {
  let site;
  let browser;
  before(async () => {
    if (skip) return;
    site = await serveSite();
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  });
  after(async () => {
    await browser?.close();
    site?.close();
  });
  return async function newPage(server, { prepare, init } = {}) {
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await prepare?.(page);
    await page.goto(site.url);
    await waitFor(() => page.evaluate(() => Boolean(window.fb)), undefined, 'the SDK to load');
    await page.evaluate(({ projectId, ns, host, port, init }) => {
      window.logs = [];
      fb.enableLogging((message) => window.logs.push(message));
      if (init) new Function('fb', init)(fb);
      const app = fb.initializeApp({ projectId, databaseURL: `http://${host}:${port}?ns=${ns}` });
      window.db = fb.getDatabase(app);
      fb.connectDatabaseEmulator(window.db, host, port);
      window.seen = {};
      window.listen = (p, query) => {
        window.seen[p] = [];
        const ref = fb.ref(window.db, p);
        const target = query ? fb.query(ref, fb.orderByChild(query.child), fb.limitToLast(query.limit)) : ref;
        fb.onValue(target, (s) => {
          const keys = [];
          s.forEach((c) => { keys.push(c.key); });
          window.seen[p].push(query ? keys : s.val());
        });
      };
    }, { projectId: PROJECT_ID, ns: NAMESPACE, host: server.host, port: server.port, init });
    return page;
  };
}

/** What the page's listener of `p` has seen. */
export const seenIn = (page, p) => page.evaluate((p) => window.seen[p], p);
