// 12. Google's SDK over TLS: `kora serve --tls-cert --tls-key` with a CA made here
//     (scripts/test-certificates),
//     the SDK given `https://localhost:PORT?ns=…` (so it speaks `wss://…/.ws`) in a Node
//     process that trusts the CA (NODE_EXTRA_CA_CERTS, which Node reads only at start).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { NAMESPACE, certificates, freePort, koraOnly, runNode, untilHealthy } from './harness.mjs';

test('the SDK sets, listens and reads over wss:// with a certificate from a private CA',
  { skip: koraOnly('serves its own TLS'), timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kora-tls-'));
  const files = certificates(dir);
  const port = await freePort();
  const kora = spawn(process.env.KORA_BIN, ['serve', '--store', 'memory:', '--bind', `127.0.0.1:${port}`,
    '--tls-cert', files.cert, '--tls-key', files.key, '--log', 'warn'], { cwd: dir, stdio: 'inherit' });
  try {
    const url = `https://localhost:${port}?ns=${NAMESPACE}`;
    // Waits for the server by retrying the SDK's first write (the server may still be starting).
    const script = `
      import { initializeApp } from '@firebase/app';
      import { getDatabase, ref, set, get, onValue } from '@firebase/database';
      const db = getDatabase(initializeApp({ databaseURL: ${JSON.stringify(url)}, projectId: 'demo-kora' }));
      const seen = new Promise((resolve) => onValue(ref(db, 'tls/ship'), (s) => s.val() && resolve(s.val())));
      await set(ref(db, 'tls/ship'), { captain: 'Jack' });
      const heard = await seen;
      const read = (await get(ref(db, 'tls/ship'))).val();
      console.log(JSON.stringify({ heard, read }));
      process.exit(0);
    `;
    await untilHealthy(port, files.ca);
    const out = JSON.parse(await runNode(script, files.ca));
    assert.deepEqual(out, { heard: { captain: 'Jack' }, read: { captain: 'Jack' } });
    // This process does not trust the CA: its TLS check refuses the server, so the run above
    // worked because of the CA, over a verified connection.
    const refused = await fetch(`https://localhost:${port}/tls/ship.json`).then(() => null, (e) => e);
    assert.ok(refused, 'the certificate is not trusted without the CA');
    assert.match(String(refused.cause?.code ?? refused.cause), /CERT|SIGNATURE|ISSUER/);
  } finally {
    kora.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
