// 0. The harness itself: starting and stopping the server, the config the Firebase layer reads,
//    and the hand-written SSE parser (checked against a local stub, since it must be right
//    before it can judge the server).

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import {
  ON_FIREBASE_SERVER,
  configToml,
  openEventStream,
  rulesYaml,
  startKora,
  startServer,
} from './harness.mjs';

test('startKora without KORA_BIN fails with a message saying how to set it', async () => {
  const saved = process.env.KORA_BIN;
  delete process.env.KORA_BIN;
  try {
    await assert.rejects(startKora(), /KORA_BIN is not set.*KORA_BIN=\S+kora npm test/s);
  } finally {
    if (saved !== undefined) process.env.KORA_BIN = saved;
  }
});

test('rules objects become a rules YAML file and config objects a TOML file', () => {
  assert.equal(
    rulesYaml({ '**': { read: 'true', write: false }, 't/$run/x/**': { read: '!data.private' } }),
    'rules:\n  "**":\n    read: "true"\n    write: "false"\n  "t/$run/x/**":\n    read: "!data.private"\n',
  );
  assert.equal(configToml({ firebase: { mock_tokens: true } }).trim(), '[firebase]\nmock_tokens = true');
  assert.equal(configToml('[firebase]\nmock_tokens = true\n'), '[firebase]\nmock_tokens = true\n');
});

test('the server starts on a free port, answers GET /healthz with 200, and stop() ends it', async () => {
  const server = await startServer();
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    if (!ON_FIREBASE_SERVER) {
      const res = await fetch(`${server.url}/healthz`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
  } finally {
    await server.stop();
  }
  await assert.rejects(fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(2000) }));
});

test('kora starts with a rules file and a [firebase] mock_tokens = true config', { skip: ON_FIREBASE_SERVER }, async () => {
  const server = await startKora({
    rules: { '**': { read: 'true', write: 'true' } },
    config: { firebase: { mock_tokens: true } },
  });
  await server.stop();
});

test('the SSE parser reads events split across chunks, CRLF line ends, comments and keep-alives', async () => {
  const stub = http.createServer((req, res) => {
    assert.equal(req.headers.accept, 'text/event-stream');
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const chunks = [
      ': a comment\n',
      'event: put\ndata: {"path":"/","da',
      'ta":{"a":1}}\n\n',
      'event: keep-alive\ndata: null\n\n',
      'event: patch\r\ndata: {"path":"/b","data":{"c":2}}\r\n\r\n',
      'event: put\ndata: {"path":"/x",\ndata: "data":"two lines"}\n\n',
    ];
    let i = 0;
    const send = () => {
      if (i < chunks.length) {
        res.write(chunks[i++]);
        setImmediate(send);
      }
    };
    send();
  });
  await new Promise((resolve) => stub.listen(0, '127.0.0.1', resolve));
  const fake = { url: `http://127.0.0.1:${stub.address().port}` };
  const stream = await openEventStream(fake, '/p.json');
  try {
    assert.equal(stream.status, 200);
    const evs = await stream.events.take(3);
    assert.deepEqual(
      evs.map((e) => [e.event, e.json]),
      [
        ['put', { path: '/', data: { a: 1 } }],
        ['patch', { path: '/b', data: { c: 2 } }],
        ['put', { path: '/x', data: 'two lines' }],
      ],
    );
    assert.equal(stream.keepAlives(), 1);
  } finally {
    stream.close();
    stub.closeAllConnections();
    await new Promise((resolve) => stub.close(resolve));
  }
});
