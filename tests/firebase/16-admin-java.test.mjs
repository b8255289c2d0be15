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
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { koraOnly, serverWithApps, startTlsKora, uniquePath, within } from './harness.mjs';

const here = path.join(path.dirname(fileURLToPath(import.meta.url)), 'admin-java');
const built = fs.existsSync(path.join(here, 'target', 'classes', 'kora', 'AdminCheck.class'));
if (!built && process.env.CI) {
  throw new Error(`CI runs the Java Admin SDK: build it with mvn -q -B package in ${here}`);
}
const skip = koraOnly('it does not read Kora rules files') || (!built && 'skipped: admin-java is not built (see this file\'s header)');

const RULES = { '**': { read: 'true', write: 'false' } };
const CONFIG = '[firebase]\nmock_tokens = true\n';

const { server } = serverWithApps([], { rules: RULES, config: CONFIG, skip });

/** AdminCheck writing under a path of its own, with `env` added and `jvm` options. */
function run(env, jvm = []) {
  return new Promise((resolve, reject) => {
    const classpath = `${path.join(here, 'target', 'classes')}:${path.join(here, 'target', 'dependency', '*')}`;
    const child = spawn('java', [...jvm, '-cp', classpath, 'kora.AdminCheck', uniquePath('java')], {
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
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
