// TLS toward the upstream: CA verification, SNI / host name checks, and the 502 a bad
// certificate gets.
'use strict';
const assert = require('node:assert/strict');
const h = require('./lib/harness');

async function startTlsEcho() {
  const cert = h.makeCert();
  const echo = await h.startPeer('ws-echo.js', ['--tls-cert', cert.cert, '--tls-key', cert.key]);
  return {cert, echo};
}

async function relay(echoPort, clusterTls) {
  const port = await h.freePort();
  await h.startWsbridge(h.relayConfig({port, endpoints: [echoPort], extra: clusterTls}));
  return port;
}

async function echoOnce(port) {
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);
  ws.send('over upstream tls');
  const got = await q.next();
  assert.equal(got.data.toString(), 'over upstream tls');
  ws.close(1000);
}

h.test('upstream wss verified against tls_ca with the server name localhost', async () => {
  const {cert, echo} = await startTlsEcho();
  const port = await relay(echo.port,
                           `tls = true\ntls_ca = "${cert.cert}"\ntls_server_name = "localhost"\n`);
  await echoOnce(port);
});

h.test('upstream certificate for another name: 502 naming the cluster', async () => {
  const {cert, echo} = await startTlsEcho();
  const port = await relay(echo.port,
                           `tls = true\ntls_ca = "${cert.cert}"\ntls_server_name = "other.example"\n`);
  const c = await h.rawConnect(port);
  const res = await c.handshake('/');
  assert.equal(res.status, 502);
  assert.deepEqual(JSON.parse(res.body), {error: 'no upstream available', cluster: 'echo'});
});

h.test('upstream certificate from an unknown CA: 502', async () => {
  const {echo} = await startTlsEcho();
  const other = h.makeCert();
  const port = await relay(echo.port, `tls = true\ntls_ca = "${other.cert}"\n`);
  const c = await h.rawConnect(port);
  assert.equal((await c.handshake('/')).status, 502);
});

h.test('tls_verify = false accepts the self-signed upstream', async () => {
  const {echo} = await startTlsEcho();
  const port = await relay(echo.port, `tls = true\ntls_verify = false\n`);
  await echoOnce(port);
});
