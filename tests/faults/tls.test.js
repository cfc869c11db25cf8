// TLS handshakes that fail (a plain-HTTP client, garbage bytes on a TLS listener) are counted and
// logged with the peer and OpenSSL's reason, one line a second at most, and the listener keeps
// serving.
'use strict';
const net = require('node:net');
const h = require('../e2e/lib/harness');
const sio = require('../e2e/lib/sio');

const {assert} = h;

function sendAndWaitClose(port, bytes) {
  return h.withTimeout(new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.on('error', () => {});
    socket.on('data', () => {});
    socket.on('close', resolve);
  }), 10000, 'the close of a failed TLS handshake');
}

h.test('failed TLS handshakes: counted by listener, logged with the peer and the reason at most ' +
       'once a second, the listener still serves wss', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const admin = await h.freePort();
  const {cert, key} = h.makeCert();
  const bridge = await h.startWsbridge(h.relayConfig({port, endpoints: [echo.port], tlsCert: cert,
                                                      tlsKey: key, logLevel: 'info', extra: `
[admin]
address = "127.0.0.1:${admin}"
`}));
  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    await sendAndWaitClose(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  }
  const elapsed = (Date.now() - started) / 1000;
  const lines = bridge.logs().split('\n').filter((l) => l.includes('TLS handshake with'));
  assert.ok(lines.length >= 1, 'a failure is logged');
  assert.ok(lines.length <= Math.ceil(elapsed) + 1, `one line a second at most: ${lines.length}`);
  assert.match(lines[0], /TLS handshake with 127\.0\.0\.1:\d+ failed: .+/);
  const metrics = (await sio.request(admin, {path: '/metrics'})).body;
  assert.ok(metrics.includes('wsbridge_tls_handshake_failures_total{listener="public"} 20'),
            metrics.split('\n').filter((l) => l.includes('tls')).join('\n'));
  const ws = await h.wsConnect(`wss://127.0.0.1:${port}/`, [], {rejectUnauthorized: false});
  const queue = h.messageQueue(ws);
  ws.send('still serving');
  assert.equal((await queue.next()).data.toString(), 'still serving');
});

h.run();
