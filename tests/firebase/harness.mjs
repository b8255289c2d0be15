// Test harness for Kora's Firebase Realtime Database compatibility.
//
// - startServer(): the server under test. By default a Kora binary (env KORA_BIN) started with
//   `serve --store memory:`; with FIREBASE_TARGET=firebase-server an in-process firebase-server
//   (urish/firebase-server, an incomplete Node emulator) instead, used to sanity-check the
//   tests' expectations.
// - firebaseApp(): an app of Google's official SDK (@firebase/app + @firebase/database)
//   connected to that server the way the emulator suite is used (connectDatabaseEmulator).
// - serverWithApps(): the before/after hooks of a test file: the server and its apps.
// - waiting helpers: waitFor, within, Recorder, readOnce/read — tests wait on events with
//   timeouts, never on fixed sleeps.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { isDeepStrictEqual } from 'node:util';

import { deleteApp, initializeApp, setLogLevel } from '@firebase/app';
import {
  connectDatabaseEmulator,
  enableLogging,
  get,
  getDatabase,
  onValue,
  ref as dbRef,
} from '@firebase/database';

const require = createRequire(import.meta.url);

/** Which server the suite runs against: `kora` (default) or `firebase-server`. */
export const TARGET = process.env.FIREBASE_TARGET || 'kora';
if (TARGET !== 'kora' && TARGET !== 'firebase-server') {
  throw new Error(`FIREBASE_TARGET must be "kora" or "firebase-server", not ${JSON.stringify(TARGET)}`);
}
export const ON_FIREBASE_SERVER = TARGET === 'firebase-server';

/**
 * Use as a test option: `test('…', { skip: koraOnly('needs rules') }, …)` — skipped (with the
 * reason) when the target is firebase-server, which cannot serve that feature.
 */
export function koraOnly(reason) {
  // FIREBASE_SERVER_NO_SKIP=1 runs them anyway (to see how firebase-server fails them).
  if (process.env.FIREBASE_SERVER_NO_SKIP) return false;
  return ON_FIREBASE_SERVER ? `firebase-server cannot serve this: ${reason}` : false;
}

/** How long one wait (an event, an acknowledgement, a read) may take before the test fails. */
export const WAIT_MS = Number(process.env.FIREBASE_TEST_WAIT_MS || 15000);

export const PROJECT_ID = 'demo-kora';
export const NAMESPACE = 'demo-kora';

// The SDK logs warnings for every refused write; keep the output readable unless asked.
// FIREBASE_DEBUG=1 prints the SDK's full wire log (every frame sent and received).
if (process.env.FIREBASE_DEBUG) {
  enableLogging(true);
} else {
  setLogLevel(process.env.FIREBASE_LOG_LEVEL || 'error');
}

// ---------------------------------------------------------------------------------------------
// Servers

/** A free TCP port on 127.0.0.1 (listen on port 0, read the port, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The rules file text: a YAML string as is, or an object `{pattern: {read, write, …}}`. */
export function rulesYaml(rules) {
  if (typeof rules === 'string') return rules;
  // Block-style YAML whose keys and scalars are JSON strings (valid YAML double-quoted
  // scalars), so patterns like `**` and expressions like `!x` need no further quoting.
  const lines = ['rules:'];
  for (const [pattern, rule] of Object.entries(rules)) {
    lines.push(`  ${JSON.stringify(pattern)}:`);
    for (const [clause, expr] of Object.entries(rule)) {
      if (typeof expr === 'string' || typeof expr === 'boolean') {
        lines.push(`    ${clause}: ${JSON.stringify(String(expr))}`);
      } else {
        throw new Error(`rulesYaml: only string/boolean clauses are supported (got ${clause})`);
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** The config file text: a TOML string as is, or an object of tables `{firebase: {mock_tokens: true}}`. */
export function configToml(config) {
  if (typeof config === 'string') return config;
  const out = [];
  const top = [];
  for (const [key, value] of Object.entries(config)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out.push(`[${key}]`);
      for (const [k, v] of Object.entries(value)) out.push(`${k} = ${JSON.stringify(v)}`);
      out.push('');
    } else {
      top.push(`${key} = ${JSON.stringify(value)}`);
    }
  }
  return [...top, '', ...out].join('\n');
}

// Servers started here must not outlive the test process, however it ends: normally
// (`exit`), or killed by the test runner (a file that exceeds --test-timeout gets SIGTERM).
const liveChildren = new Set();
const liveDirs = new Set();
function killChildren() {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of liveDirs) fs.rmSync(dir, { recursive: true, force: true });
}
process.on('exit', killChildren);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.once(signal, () => {
    killChildren();
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  });
}

/**
 * Start `$KORA_BIN serve --store memory: --bind 127.0.0.1:<free port> [--rules f] [--config f]`
 * and wait until GET /healthz answers 200 (30 s at most).
 *
 * @param {{rules?: string|object, config?: string|object, args?: string[]}} [options]
 *   rules: a YAML rules file (docs/rules.md) or an object `{pattern: {read, write}}`;
 *   config: a TOML config file (e.g. `[firebase]\nmock_tokens = true`) or an object of tables.
 * @returns {Promise<{kind: 'kora', host: string, port: number, url: string, stderr: () => string, stop: () => Promise<void>}>}
 */
export async function startKora({ rules, config, args = [] } = {}) {
  const bin = process.env.KORA_BIN;
  if (!bin) {
    throw new Error(
      'KORA_BIN is not set: point it at a kora binary, e.g. ' +
        'KORA_BIN=/root/.cache/kora-target/debug/kora npm test',
    );
  }
  if (!fs.existsSync(bin)) throw new Error(`KORA_BIN=${bin} does not exist`);

  // A private working directory: `kora serve` reads ./kora.toml and ./kora.rules.yaml when
  // they exist, so it must not start in a directory that has them.
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'kora-firebase-'));
  liveDirs.add(dir);
  const removeDir = async () => {
    await fsp.rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };
  const port = await freePort();
  const host = '127.0.0.1';
  const argv = ['serve', '--store', 'memory:', '--bind', `${host}:${port}`];
  if (rules !== undefined) {
    const file = path.join(dir, 'kora.rules.yaml');
    await fsp.writeFile(file, rulesYaml(rules));
    argv.push('--rules', file);
  }
  if (config !== undefined) {
    const file = path.join(dir, 'kora.toml');
    await fsp.writeFile(file, configToml(config));
    argv.push('--config', file);
  }
  argv.push(...args);

  const child = spawn(bin, argv, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  liveChildren.add(child);
  let output = '';
  const keep = (chunk) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
    if (process.env.KORA_SHOW_LOG) process.stderr.write(chunk);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      liveChildren.delete(child);
      resolve(exited);
    });
    child.on('error', (err) => {
      exited = { error: err };
      liveChildren.delete(child);
      resolve(exited);
    });
  });

  const url = `http://${host}:${port}`;
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 10_000);
      await exit;
      clearTimeout(timer);
    }
    await removeDir();
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) {
      await removeDir();
      throw new Error(
        `kora exited before it was healthy (${JSON.stringify(exited)}); command: ${bin} ${argv.join(' ')}\n` +
          `--- kora output ---\n${output}`,
      );
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `kora did not answer GET /healthz with 200 within 30 s; command: ${bin} ${argv.join(' ')}\n` +
          `--- kora output ---\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { kind: 'kora', host, port, url, stderr: () => output, stop };
}

/**
 * Start an in-process firebase-server (with its REST API) on a free port. It has no `get`,
 * no onDisconnect, no queries, no server values but timestamps, no SSE, no ETags.
 */
export async function startFirebaseServer() {
  const FirebaseServer = require('firebase-server');
  const host = '127.0.0.1';
  const port = await freePort();
  const server = new FirebaseServer({ port, address: host, rest: true }, `${host}:${port}`);
  if (!server.https.listening) await new Promise((resolve) => server.https.once('listening', resolve));
  const url = `http://${host}:${port}`;
  return {
    kind: 'firebase-server',
    instance: server,
    host,
    port,
    url,
    stderr: () => '',
    stop: async () => {
      for (const client of server.wss.clients) client.terminate();
      await server.close();
    },
  };
}

/**
 * The server under test (FIREBASE_TARGET): Kora with these options, or firebase-server (which
 * ignores rules and config — tests that need them are skipped there).
 */
export async function startServer(options = {}) {
  return ON_FIREBASE_SERVER ? startFirebaseServer() : startKora(options);
}

// ---------------------------------------------------------------------------------------------
// SDK clients

const openClients = new Set();
let appCounter = 0;

/**
 * A Firebase app + database connected to `server` with connectDatabaseEmulator.
 * databaseURL is `http://127.0.0.1:<port>?ns=demo-kora` (so the namespace is `demo-kora`).
 *
 * @param {{port: number, host: string}} server
 * @param {string} name  a readable name; made unique
 * @param {{mockUserToken?: object|string}} [options]  an emulator mock token (sent with `auth`)
 */
export function firebaseApp(server, name = 'client', { mockUserToken } = {}) {
  const uniqueName = `${name}-${++appCounter}-${randomBytes(3).toString('hex')}`;
  const app = initializeApp(
    { projectId: PROJECT_ID, databaseURL: `http://${server.host}:${server.port}?ns=${NAMESPACE}` },
    uniqueName,
  );
  const db = getDatabase(app);
  connectDatabaseEmulator(db, server.host, server.port, mockUserToken ? { mockUserToken } : {});
  let closed = false;
  const client = {
    name,
    app,
    db,
    /** A reference in this client's database. */
    ref: (p) => dbRef(db, p),
    /** deleteApp: closes the connection (running the server-side onDisconnect actions). */
    close: async () => {
      if (closed) return;
      closed = true;
      openClients.delete(client);
      await deleteApp(app);
    },
  };
  openClients.add(client);
  return client;
}

/** Delete every app still open (call in `after`). */
export async function closeAllApps() {
  await Promise.all([...openClients].map((c) => c.close()));
}

/** For `after`: delete every app (at most 10 s), then stop the server whatever happened. */
export async function shutdown(server) {
  try {
    await within(closeAllApps(), 'deleting the apps', 10_000);
  } catch {
    // the server is stopped anyway
  } finally {
    await server?.stop();
  }
}

/**
 * The hooks most test files share: before the file's tests, start the server
 * (startServer(options)) and connect an app for each entry of `apps` — a name, or
 * `[name, firebaseApp options]` — then await `prepare()`, the file's own set-up, if any; after
 * them, `shutdown`. With `skip` (a koraOnly reason) it starts nothing. (The set-up goes in this
 * hook because Node 20 starts top-level `before` hooks as they are registered, so a second one
 * would not wait for the apps.)
 *
 * Returns `{server, apps}`, objects that `before` fills in: a file names them at top level
 * (`const { apps: [writer, reader] } = serverWithApps(['writer', 'reader'])`), before they
 * exist, and its tests use them.
 */
export function serverWithApps(apps = [], { skip = false, prepare, ...options } = {}) {
  const server = {};
  const clients = apps.map(() => ({}));
  let started;
  before(async () => {
    if (skip) return;
    started = await startServer(options);
    Object.assign(server, started);
    apps.forEach((app, i) => {
      const [name, appOptions] = Array.isArray(app) ? app : [app];
      Object.assign(clients[i], firebaseApp(started, name, appOptions));
    });
    await prepare?.();
  });
  after(() => shutdown(started));
  return { server, apps: clients };
}

/**
 * An unsigned emulator-style ID token, built like the SDK's createMockUserToken (alg "none",
 * empty signature, iat 0, exp 3600 — so the server must not check its expiry): what
 * connectDatabaseEmulator(…, {mockUserToken}) sends, for use with REST (`?auth=` / Bearer).
 */
export function mockToken(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const sub = claims.sub || claims.user_id;
  if (!sub) throw new Error("mockToken needs 'sub' or 'user_id'");
  const iat = claims.iat || 0;
  const payload = {
    iss: `https://securetoken.google.com/${PROJECT_ID}`,
    aud: PROJECT_ID,
    iat,
    exp: iat + 3600,
    auth_time: iat,
    sub,
    user_id: sub,
    firebase: { sign_in_provider: 'custom', identities: {} },
    ...claims,
  };
  return `${b64({ alg: 'none', type: 'JWT' })}.${b64(payload)}.`;
}

/** A fresh path prefix `t/<random>` so that tests never see each other's data. */
export function uniquePath(label = '') {
  const id = randomBytes(6).toString('hex');
  return label ? `t/${label}-${id}` : `t/${id}`;
}

// ---------------------------------------------------------------------------------------------
// TLS

/** A CA and a server certificate for localhost it signs, as PEM files in `dir`. */
export function certificates(dir) {
  execFileSync(path.join(import.meta.dirname, '../../scripts/test-certificates'), [dir], { stdio: 'pipe' });
  const file = (name) => path.join(dir, name);
  return { ca: file('ca.crt'), cert: file('server.crt'), key: file('server.key') };
}

/** Runs `script` (an ES module) in a Node that trusts `ca`; its stdout, or throws with stderr. */
/** The environment of a Node child trusting `ca`: this one's, without an emulator host that an
 *  Admin SDK test of this process set (the child speaks to the server it is given). */
function childEnv(ca) {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: ca };
  delete env.FIREBASE_DATABASE_EMULATOR_HOST;
  return env;
}

export function runNode(script, ca) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: import.meta.dirname,
      env: childEnv(ca),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

/**
 * A `kora serve` over TLS with a CA made for it (scripts/test-certificates), in a directory of
 * its own holding `config` (kora.toml text) and `rules` (as for startKora), if given; waits
 * until it answers. Returns `{port, ca, stop}`.
 */
export async function startTlsKora({ config, rules } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kora-tls-'));
  const files = certificates(dir);
  const args = ['serve', '--store', 'memory:', '--tls-cert', files.cert, '--tls-key', files.key, '--log', 'warn'];
  if (config !== undefined) {
    fs.writeFileSync(path.join(dir, 'kora.toml'), config);
    args.push('--config', 'kora.toml');
  }
  if (rules !== undefined) {
    fs.writeFileSync(path.join(dir, 'kora.rules.yaml'), rulesYaml(rules));
    args.push('--rules', 'kora.rules.yaml');
  }
  const port = await freePort();
  const kora = spawn(process.env.KORA_BIN, [...args, '--bind', `127.0.0.1:${port}`], { cwd: dir, stdio: 'inherit' });
  const stop = () => {
    kora.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await untilHealthy(port, files.ca);
  } catch (e) {
    stop();
    throw e;
  }
  return { port, ca: files.ca, stop };
}

/** Waits until a TLS server on `port` answers `/healthz` (curl trusting `ca`), at most 30 s. */
export async function untilHealthy(port, ca) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      execFileSync('curl', ['-sf', '--cacert', ca, `https://localhost:${port}/healthz`], { stdio: 'pipe' });
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting

/** Resolve `promise`, or fail after `ms` saying what was awaited. */
export async function within(promise, what = 'operation', ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Poll `predicate` until it returns a truthy value (which is returned), or fail after `ms`.
 * `describe` (optional) adds the current state to the failure message.
 */
export async function waitFor(predicate, ms = WAIT_MS, what = 'condition', describe) {
  const deadline = Date.now() + ms;
  let lastError;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      let msg = `timed out after ${ms} ms waiting for ${what}`;
      if (describe) {
        try {
          msg += `; state: ${describe()}`;
        } catch {
          // ignore
        }
      }
      if (lastError) msg += `; last error: ${lastError.stack || lastError}`;
      throw new Error(msg);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Collects events (any objects) and lets a test wait for them.
 * `next()` returns the next event not yet taken; `until(pred)` waits until pred(events) holds.
 */
export class Recorder {
  constructor(label = 'events') {
    this.label = label;
    this.events = [];
    this.taken = 0;
    this.offs = [];
  }
  push = (event) => {
    this.events.push(event);
  };
  async next(ms = WAIT_MS) {
    await waitFor(() => this.events.length > this.taken, ms, `the next of ${this.label}`, () =>
      JSON.stringify(this.events),
    );
    return this.events[this.taken++];
  }
  /** Take the next `n` events. */
  async take(n, ms = WAIT_MS) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.next(ms));
    return out;
  }
  /** Wait until pred(events) holds; returns the events. */
  async until(pred, what = 'a condition', ms = WAIT_MS) {
    await waitFor(() => pred(this.events), ms, `${this.label}: ${what}`, () => JSON.stringify(this.events));
    return this.events;
  }
  /** The events not yet taken (and mark them taken). */
  drain() {
    const rest = this.events.slice(this.taken);
    this.taken = this.events.length;
    return rest;
  }
  /** Remember an unsubscribe function; `off()` calls them all. */
  track(unsubscribe) {
    this.offs.push(unsubscribe);
    return unsubscribe;
  }
  off() {
    for (const off of this.offs.splice(0)) off();
  }
}

/** The first value event of a query/reference (a one-time listener). */
export function onceValue(q, what = 'a value event') {
  return within(
    new Promise((resolve, reject) => {
      onValue(q, resolve, reject, { onlyOnce: true });
    }),
    what,
  );
}

/**
 * A one-shot read: `get()` against Kora. firebase-server has no `get` (the SDK would wait
 * forever), so there a one-time value listener stands in — the data expectations are the same.
 */
export function read(q, what = 'get()') {
  return ON_FIREBASE_SERVER ? onceValue(q, what) : within(get(q), what);
}

/** Deep equality of two JSON-like values, whatever the key order. */
export const same = (x, y) => isDeepStrictEqual(x, y);

/** A Recorder predicate: the last event equals `expected` (deeply). */
export const lastIs = (expected) => (events) => events.length > 0 && isDeepStrictEqual(events.at(-1), expected);

/** [key, value] pairs of a snapshot's children, in the snapshot's (query's) order. */
export function entries(snap) {
  const out = [];
  snap.forEach((child) => {
    out.push([child.key, child.val()]);
  });
  return out;
}

/** Keys of a snapshot's children, in order. */
export function keys(snap) {
  return entries(snap).map(([k]) => k);
}

/** A plain fetch against the server, returning status, headers and the body (JSON when it parses). */
export async function rest(server, method, urlPath, { body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(WAIT_MS) };
  if (body !== undefined) {
    init.body = raw ? body : JSON.stringify(body);
  }
  const res = await fetch(`${server.url}${urlPath}`, init);
  const text = await res.text();
  let json;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * Open a REST event stream (`GET <urlPath>` with `Accept: text/event-stream`) and parse the
 * Server-Sent Events from fetch's body. Returns {status, headers, events: Recorder of
 * {event, data, json}, keepAlives(), close()}; keep-alive events are counted, not recorded.
 * When the answer is not 200, the body is read and returned as {text, json} instead.
 */
export async function openEventStream(server, urlPath, headers = {}) {
  const ac = new AbortController();
  const res = await within(
    fetch(`${server.url}${urlPath}`, {
      headers: { Accept: 'text/event-stream', ...headers },
      signal: ac.signal,
    }),
    `the event stream ${urlPath} to answer`,
  );
  if (res.status !== 200) {
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, close: () => ac.abort() };
  }
  const events = new Recorder(`events of ${urlPath}`);
  let keepAlives = 0;
  let ended = false;
  (async () => {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let type = '';
    let data = [];
    const dispatch = () => {
      if (type === '' && data.length === 0) return;
      const event = type || 'message';
      const text = data.join('\n');
      type = '';
      data = [];
      if (event === 'keep-alive') {
        keepAlives++;
        return;
      }
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      events.push({ event, data: text, json });
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          let line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') dispatch();
          else if (line.startsWith(':')) continue;
          else {
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? '' : line.slice(colon + 1);
            if (val.startsWith(' ')) val = val.slice(1);
            if (field === 'event') type = val;
            else if (field === 'data') data.push(val);
          }
        }
      }
    } catch {
      // aborted by close()
    } finally {
      ended = true;
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    events,
    keepAlives: () => keepAlives,
    ended: () => ended,
    close: () => ac.abort(),
  };
}
