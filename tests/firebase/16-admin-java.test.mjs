// 16. Google's Java Admin SDK (`com.google.firebase:firebase-admin`, whose database client is
//     the one Android's SDK is built on) against Kora: admin-java's AdminCheck runs set,
//     update, push, a query, a listener, concurrent transactions and onDisconnect — in the
//     SDK's emulator mode (`owner`, accepted with `[firebase] mock_tokens = true`), then as in
//     production: over TLS, with Kora's admin secret as the credential's access token. The
//     rules refuse every other client.
//
//     AdminCheck is built with Maven (`mvn -q -B package` in admin-java;
//     crates/kora-cli/tests/firebase_sdk.rs runs it); without the build this test says it was
//     skipped, and fails under CI=true.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { koraOnly, rest, serverWithApps, startTlsKora, uniquePath, waitFor, within } from './harness.mjs';

const here = path.join(path.dirname(fileURLToPath(import.meta.url)), 'admin-java');
const built = fs.existsSync(path.join(here, 'target', 'classes', 'kora', 'AdminCheck.class'));
if (!built && process.env.CI) {
  throw new Error(`CI runs the Java Admin SDK: build it with mvn -q -B package in ${here}`);
}
const skip = koraOnly('it does not read Kora rules files') || (!built && 'skipped: admin-java is not built (see this file\'s header)');

const RULES = { '**': { read: 'true', write: 'false' } };
const CONFIG = '[firebase]\nmock_tokens = true\n';

const { server } = serverWithApps([], { rules: RULES, config: CONFIG, skip });

/** Starts `main` (a class of admin-java) on `base`, with `env` added and `jvm` options. */
function start(main, base, env, jvm = []) {
  const classpath = `${path.join(here, 'target', 'classes')}:${path.join(here, 'target', 'dependency', '*')}`;
  const child = spawn('java', [...jvm, '-cp', classpath, main, base], { env: { ...process.env, ...env } });
  const run = { child, output: '' };
  child.stdout.on('data', (d) => { run.output += d; });
  child.stderr.on('data', (d) => { run.output += d; });
  run.done = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: run.output }));
  });
  return run;
}

/** AdminCheck writing under a path of its own, with `env` added and `jvm` options. */
function run(env, jvm = []) {
  return start('kora.AdminCheck', uniquePath('java'), env, jvm).done;
}

/** A TCP proxy to `port` that keeps what the server sends (`received`, emptied by `reset`). */
async function tapServer(port) {
  const tap = { received: Buffer.alloc(0), reset() { this.received = Buffer.alloc(0); } };
  const proxy = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    client.pipe(upstream);
    upstream.on('data', (chunk) => { tap.received = Buffer.concat([tap.received, chunk]); client.write(chunk); });
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  tap.port = proxy.address().port;
  tap.close = () => proxy.close();
  return tap;
}

test('the Java Admin SDK writes, queries, listens, transacts and sets onDisconnect (emulator mode)', { skip, timeout: 90_000 }, async () => {
  const { code, output } = await within(run({ FIREBASE_DATABASE_EMULATOR_HOST: `${server.host}:${server.port}` }), 'AdminCheck', 80_000);
  assert.equal(code, 0, output);
  assert.match(output, /ok: onDisconnect ran/);
});

test('the Java Admin SDK over TLS with Kora\'s admin secret as its credential', { skip, timeout: 90_000 }, async () => {
  const secret = 'java-admin-secret-0123456789abcdef';
  const { port, ca, stop } = await startTlsKora({ config: `[auth]\nadmin_secret = "${secret}"\n`, rules: RULES });
  try {
    // Java trusts the server's CA through a trust store made from it.
    const store = path.join(path.dirname(ca), 'trust.p12');
    execFileSync('keytool', ['-importcert', '-noprompt', '-alias', 'kora', '-file', ca, '-keystore', store,
      '-storepass', 'changeit', '-storetype', 'PKCS12'], { stdio: 'pipe' });
    const env = { KORA_URL: `https://localhost:${port}`, KORA_ADMIN_SECRET: secret, FIREBASE_DATABASE_EMULATOR_HOST: '' };
    const jvm = [`-Djavax.net.ssl.trustStore=${store}`, '-Djavax.net.ssl.trustStorePassword=changeit'];
    const { code, output } = await within(run(env, jvm), 'AdminCheck', 80_000);
    assert.equal(code, 0, output);
    assert.match(output, /ok: onDisconnect ran/);
  } finally {
    stop();
  }
});

test('the Java Admin SDK resumes a large listen by compound hash: only the changed range comes back', { skip, timeout: 120_000 }, async () => {
  const tap = await tapServer(server.port);
  const base = uniquePath('java-resume');
  const java = start('kora.ResumeCheck', base, { FIREBASE_DATABASE_EMULATOR_HOST: `127.0.0.1:${tap.port}` });
  try {
    await waitFor(() => java.output.includes('offline') || java.child.exitCode !== null, 60_000, 'ResumeCheck going offline', () => java.output);
    assert.match(java.output, /offline/, java.output);
    const whole = tap.received.length;
    const put = await rest(server, 'PUT', `/${base}/list/m01000/text.json`, { body: 'edited', headers: { Authorization: 'Bearer owner' } });
    assert.equal(put.status, 200, put.text);
    tap.reset();
    java.child.stdin.write('go\n');
    const { code, output } = await within(java.done, 'ResumeCheck', 60_000);
    assert.equal(code, 0, output);
    assert.match(output, /ok: resumed/);
    const resumed = tap.received.toString('latin1');
    assert.match(resumed, /"a":"rm"/, 'the server answered with range merges');
    assert.match(resumed, /edited/);
    assert.doesNotMatch(resumed, /message 0"/, 'the first range, unchanged, was not sent again');
    assert.doesNotMatch(resumed, /message 1999"/, 'the last range, unchanged, was not sent again');
    console.log(`resuming 2,000 children with one changed: ${tap.received.length} bytes received (the first listen and writes: ${whole})`);
  } finally {
    java.child.kill();
    tap.close();
  }
});
