// Forwarded claims cannot be spoofed: with auth.jwt `forward_claims = { "x-user-id" = "sub" }`,
// a client's own X-User-Id (any case) never reaches the upstream, whether or not its token has
// a sub, on every bridge that builds an upstream request: relay, Socket.IO pass-through (polling
// requests and the upgrade), translate up and translate down. With a sub, the upstream sees the
// claim's value, once.
'use strict';
const crypto = require('node:crypto');
const h = require('./lib/harness');
const sio = require('./lib/sio');

const {assert} = h;
const SECRET = 'claims-e2e-secret';

function jwt(payload, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64(payload)}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const JWT_FILTER = `
[filter.jwt]
type = "auth.jwt"
secret = "${SECRET}"
algorithms = ["HS256"]
token_from = ["query:token"]
forward_claims = { "x-user-id" = "sub" }
`;

// What a client tries: its own user id, in two spellings (Node joins repeats with ", ").
const SPOOF = {'X-User-Id': 'mallory', 'x-USER-id': 'eve'};
const NO_SUB = () => jwt({name: 'no subject here'});
const WITH_SUB = () => jwt({sub: 'alice'});

h.test('relay: no sub -> no x-user-id upstream; a sub -> exactly the claim', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  await h.startWsbridge(h.relayConfig({port, endpoints: [echo.port],
                                       routeExtra: 'filters = ["jwt"]\n', extra: JWT_FILTER}));
  let c = await h.rawConnect(port);
  let res = await c.handshake(`/?token=${NO_SUB()}`, SPOOF);
  assert.equal(res.status, 101);
  let conn = await echo.waitFor((o) => o.event === 'connection' && o.id === 1, 5000, 'backend 1');
  assert.equal(conn.headers['x-user-id'], undefined);

  c = await h.rawConnect(port);
  res = await c.handshake(`/?token=${WITH_SUB()}`, SPOOF);
  assert.equal(res.status, 101);
  conn = await echo.waitFor((o) => o.event === 'connection' && o.id === 2, 5000, 'backend 2');
  assert.equal(conn.headers['x-user-id'], 'alice');
});

// A socket.io server reporting every request; a pass-through (or translate-up) route to it.
async function sioUpstream(downstream) {
  const server = await h.startPeer('sio-server.js', ['--report-requests']);
  const port = await h.freePort();
  await h.startWsbridge(sio.sioConfig({port, endpoints: [server.port], downstream,
                                       routeExtra: 'filters = ["jwt"]\n', extra: JWT_FILTER}));
  return {server, port};
}

function userIdsSeen(server) {
  return server.lines.filter((o) => o.event === 'http-request')
      .map((o) => o.headers['x-user-id']);
}

for (const [label, token, want] of [['no sub', NO_SUB, undefined], ['a sub', WITH_SUB, 'alice']]) {
  h.test(`socket.io pass-through, polling then websocket, ${label}: no client x-user-id upstream`,
         async () => {
    const {server, port} = await sioUpstream('socketio');
    const socket = await sio.connect(`http://127.0.0.1:${port}`, {
      transports: ['polling', 'websocket'], query: {token: token()}, extraHeaders: SPOOF});
    await server.waitFor((o) => o.event === 'engine-upgrade', 10000, 'the upgrade');
    await sio.emitAck(socket, 'whoami');
    const seen = userIdsSeen(server);
    assert.ok(seen.length >= 3, `polling handshake, polls and the upgrade: ${seen.length}`);
    // The handshake (no sid) carries the claim; later requests of the session carry none.
    assert.equal(seen[0], want);
    for (const value of seen.slice(1)) assert.ok(value === undefined || value === want, value);
  });
}

h.test('translate up: the upstream handshake carries only the claim', async () => {
  const {server, port} = await sioUpstream('websocket');
  let connected = 0;
  for (const [token, want] of [[NO_SUB, undefined], [WITH_SUB, 'alice']]) {
    const before = userIdsSeen(server).length;
    const ws = await h.wsConnect(`ws://127.0.0.1:${port}/ws?token=${token()}`, [],
                                 {headers: SPOOF});
    const nth = ++connected;
    let count = 0;
    await server.waitFor((o) => o.event === 'connection' && ++count === nth, 10000,
                         `upstream namespace connection ${nth}`);
    const seen = userIdsSeen(server).slice(before);
    assert.ok(seen.length >= 1);
    for (const value of seen) assert.equal(value, want);
    ws.close(1000);
  }
});

h.test('translate down: the upstream WebSocket handshake carries only the claim', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  await h.startWsbridge(`[runtime]
workers = 1
log_level = "debug"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/"
downstream = "socketio"
cluster = "legacy"
filters = ["jwt"]

[cluster.legacy]
protocol = "websocket"
endpoints = ["127.0.0.1:${echo.port}"]
connect_timeout = "1s"
${JWT_FILTER}`);
  let id = 0;
  for (const [token, want] of [[NO_SUB, undefined], [WITH_SUB, 'alice']]) {
    for (const transports of [['polling'], ['websocket']]) {
      await sio.connect(`http://127.0.0.1:${port}`, {transports, query: {token: token()},
                                                     extraHeaders: SPOOF});
      id++;
      const conn = await echo.waitFor((o) => o.event === 'connection' && o.id === id, 5000,
                                      `backend connection ${id}`);
      assert.equal(conn.headers['x-user-id'], want, `${transports} ${want}`);
    }
  }
});
