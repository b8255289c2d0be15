// firebase-server (an in-memory Node implementation of Firebase's WebSocket protocol) as the
// peer in `scripts/bench-server firebase`: starts it on a free loopback port and prints
// "firebase-server on 127.0.0.1:<port>".
import { createRequire } from 'node:module';
import net from 'node:net';

const require = createRequire(import.meta.url);
const FirebaseServer = require('firebase-server');

const port = await new Promise((resolve, reject) => {
  const probe = net.createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const server = new FirebaseServer({ port, address: '127.0.0.1', rest: true }, `127.0.0.1:${port}`);
if (!server.https.listening) await new Promise((resolve) => server.https.once('listening', resolve));
console.log(`firebase-server on 127.0.0.1:${port}`);
process.on('SIGTERM', () => process.exit(0));
