// What the browser tests run against: a real `kora serve` (KORA_BIN, a debug build by
// default) on a random loopback port with a temporary data directory, a TCP proxy in front
// of it that can cut every connection (a tab "goes offline" while the server stays up), a
// static server for the test page on another origin (the app's origin, up while Kora is
// down, as an app served from its own host or a service worker would be), and Chromium
// driven by puppeteer-core.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const repo = join(root, "../..");
export const KORA_BIN = process.env.KORA_BIN ?? join(repo, "target/debug/kora");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Waits until `check()` returns a truthy value (awaited), polling; fails after `ms`. */
export async function until(what, check, ms = 15_000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/**
 * `kora serve` with its own data directory (and optionally a rules file and a kora.toml);
 * `stop()` kills it, `start()` brings it back. `http()` sends `token` as a bearer token.
 */
export async function startKora({ rules, config, token } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "kora-web-"));
  const port = await freePort();
  const args = ["serve", "--bind", `127.0.0.1:${port}`, "--data", join(dir, "data"), "--log", "warn"];
  if (rules) {
    writeFileSync(join(dir, "rules.yaml"), rules);
    args.push("--rules", join(dir, "rules.yaml"));
  }
  if (config) {
    writeFileSync(join(dir, "kora.toml"), config);
    args.push("--config", join(dir, "kora.toml"));
  }
  const url = `http://127.0.0.1:${port}`;
  let child = null;
  const kora = {
    url,
    port,
    async start() {
      child = spawn(KORA_BIN, args, { stdio: ["ignore", "inherit", "inherit"] });
      const exited = new Promise((r) => child.once("exit", r));
      await until("kora to listen", async () => (await fetch(`${url}/healthz`)).ok, 30_000);
      kora.exited = exited;
    },
    async stop() {
      if (!child) return;
      const c = child;
      child = null;
      c.kill("SIGKILL");
      await kora.exited;
    },
    async http(method, path, body) {
      const headers = token ? { authorization: `Bearer ${token}` } : {};
      const res = await fetch(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    },
    get: (path) => kora.http("GET", `/v1/data/${path}`),
    /**
     * Writes the server has received since this process started: committed, refused or in
     * conflict (`kora_writes_total`; a stamped write sent twice commits twice).
     */
    async mutations() {
      const text = await (await fetch(`${url}/metrics`)).text();
      const counts = [...text.matchAll(/^kora_writes_total\{outcome="(committed|refused|conflict)"\} (\d+)/gm)];
      if (counts.length !== 3) throw new Error(`kora_writes_total not found in /metrics:\n${text}`);
      return counts.reduce((sum, m) => sum + Number(m[2]), 0);
    },
    async close() {
      await kora.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await kora.start();
  return kora;
}

/** A TCP proxy to `target`; `cut()` drops every connection and refuses new ones until `restore()`. */
export async function startProxy(targetPort) {
  const port = await freePort();
  const sockets = new Set();
  let up = true;
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  };
}

/** The app's origin: a blank page and the client bundle as `kora serve` serves it. */
export async function startApp() {
  const port = await freePort();
  const page = `<!doctype html><meta charset="utf-8"><title>kora test</title>
<script type="module">import * as kora from "/kora.js"; window.kora = kora; window.loaded = true;</script>`;
  const server = createServer((req, res) => {
    if (req.url === "/kora.js") {
      res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" });
      return res.end(readFileSync(join(root, "dist/kora.js")));
    }
    if (req.url === "/" || req.url.startsWith("/?")) {
      res.writeHead(200, { "content-type": "text/html", "cache-control": "no-store" });
      return res.end(page);
    }
    res.writeHead(404).end();
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}

export async function launch(extraArgs = []) {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", ...extraArgs],
  });
}

/**
 * The hooks the test files share: before a file's tests, launch Chromium and, when asked, start
 * the app's origin (`app`) and one `kora serve` for all the tests (`kora`); after them, close
 * them. Returns an object whose `browser`, `app` and `kora` are set once `before` has run.
 */
export function withBrowser({ app = false, kora = false } = {}) {
  const suite = {};
  before(async () => {
    suite.browser = await launch();
    if (app) suite.app = await startApp();
    if (kora) suite.kora = await startKora();
  });
  after(async () => {
    await suite.browser?.close();
    await suite.app?.close();
    await suite.kora?.close();
  });
  return suite;
}

/** Runs `f(...args)` in the page and returns its (awaited) result. */
export const ev = (page, f, ...args) => page.evaluate(f, ...args);

/**
 * A tab of the app with helpers installed: `openDb(opts)` connects a client and keeps, per
 * subscribed path, the last value its callback got (`window.seen[path]`).
 */
export async function tab(browser, app) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await load(page, app);
  return page;
}

export async function load(page, app, reload = false) {
  if (reload) await page.reload();
  else await page.goto(app.url);
  await page.waitForFunction(() => window.loaded === true, { timeout: 10_000 });
  await page.evaluate(() => {
    window.seen = {};
    window.calls = {};
    window.status = "?";
    window.openDb = (opts) => {
      window.db = window.kora.connect({ backoffMin: 50, backoffMax: 400, ...opts });
      window.db.on("status", (s) => (window.status = s));
      return true;
    };
    window.watch = (path, opts = {}) => {
      window.calls[path] = 0;
      window.db.subscribe(path, opts, (v) => {
        window.seen[path] = v;
        window.calls[path]++;
      });
      return true;
    };
  });
}

/** Counts the WebSocket frames and bytes a page receives and sends, through the DevTools protocol. */
export async function countWsBytes(page) {
  const cdp = await page.target().createCDPSession();
  await cdp.send("Network.enable");
  const counter = { bytes: 0, frames: 0, sent: {} };
  cdp.on("Network.webSocketFrameReceived", (e) => {
    counter.bytes += Buffer.byteLength(e.response.payloadData);
    counter.frames++;
  });
  // Requests sent, by `op` (how many `mutate`s a tab sent).
  cdp.on("Network.webSocketFrameSent", (e) => {
    const op = /"op":"([a-z_]+)"/.exec(e.response.payloadData)?.[1] ?? "?";
    counter.sent[op] = (counter.sent[op] ?? 0) + 1;
  });
  return counter;
}

/** An HS256 JWT for `claims`, signed with `secret` (as `[auth] hs256_secret` verifies). */
export function jwt(secret, claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/**
 * Clicks the `index`th element matching `selector`, found and clicked in one step in the
 * page: pages that re-render on every change would detach an element found beforehand.
 */
export async function clickIn(page, selector, index = 0) {
  const clicked = await page.$$eval(selector, (els, i) => (els[i] ? (els[i].click(), true) : false), index);
  if (!clicked) throw new Error(`no element ${index} matches ${selector}`);
}
