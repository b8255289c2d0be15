// 15. Google's Python Admin SDK (`firebase-admin`, admin-python/requirements.txt) against
//     Kora: admin-python/admin.py runs set, update, push, get, queries, ETag-guarded sets,
//     concurrent transactions and a listener, in the SDK's emulator mode (it authenticates as
//     `owner`, accepted with `[firebase] mock_tokens = true`). The rules refuse every other
//     client, so its writes also show it passing them as an administrator does. Then the
//     same as in production: over TLS, with Kora's admin secret as the SDK's credential.
//
//     The SDK is installed in tests/firebase/.venv (crates/kora-cli/tests/firebase_sdk.rs
//     makes it: `python3 -m venv .venv && .venv/bin/pip install -r admin-python/requirements.txt`);
//     without it this test says it was skipped, and fails under CI=true.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { koraOnly, serverWithApps, startTlsKora, uniquePath, within } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const python = path.join(here, '.venv', 'bin', 'python');
const installed = fs.existsSync(python);
if (!installed && process.env.CI) {
  throw new Error(`CI runs the Python Admin SDK: ${python} is missing`);
}
const skip = koraOnly('it does not read Kora rules files') || (!installed && `skipped: no ${python} (see this file's header)`);

const RULES = { '**': { read: 'true', write: 'false' } };
const CONFIG = '[firebase]\nmock_tokens = true\n';

const { server } = serverWithApps([], { rules: RULES, config: CONFIG, skip });

/** admin.py writing under a path of its own, with `env` added to this process's. */
function run(env) {
  return new Promise((resolve, reject) => {
    const script = path.join(here, 'admin-python', 'admin.py');
    const child = spawn(python, [script, uniquePath('python')], { env: { ...process.env, ...env } });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

test('the Python Admin SDK writes, queries, transacts and listens (emulator mode)', { skip }, async () => {
  const env = { FIREBASE_DATABASE_EMULATOR_HOST: `${server.host}:${server.port}` };
  const { code, output } = await within(run(env), 'admin.py', 60_000);
  assert.equal(code, 0, output);
  assert.match(output, /ok: listener events/);
});

test('the Python Admin SDK over TLS with Kora\'s admin secret as its credential', { skip, timeout: 90_000 }, async () => {
  const secret = 'python-admin-secret-0123456789abcdef';
  const { port, ca, stop } = await startTlsKora({ config: `[auth]\nadmin_secret = "${secret}"\n`, rules: RULES });
  try {
    const env = { KORA_URL: `https://localhost:${port}`, REQUESTS_CA_BUNDLE: ca, FIREBASE_DATABASE_EMULATOR_HOST: '' };
    const { code, output } = await within(run({ ...env, KORA_ADMIN_SECRET: secret }), 'admin.py', 60_000);
    assert.equal(code, 0, output);
    assert.match(output, /ok: listener events/);
    // Another credential: the first write is refused.
    const refused = await within(run({ ...env, KORA_ADMIN_SECRET: 'not-the-admin-secret-000000000000' }), 'admin.py', 60_000);
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /UnauthenticatedError|PermissionDenied/);
  } finally {
    stop();
  }
});
