// Filters on a relay route with real peers: JWT at the handshake, rate limits (notify and shape),
// text pings answered by wsbridge, and the ping timeout of the heartbeat filter.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./lib/harness');

const SECRET = 'e2e-secret';

function jwt(payload, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64(payload)}`;
  const sig = crypto.createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${sig}`;
}

async function relayWith(filterToml, filterNames, echoArgs = []) {
  const echo = await h.startPeer('ws-echo.js', echoArgs);
  const port = await h.freePort();
  await h.startWsbridge(h.relayConfig({
    port,
    endpoints: [echo.port],
    routeExtra: `filters = [${filterNames.map((n) => `"${n}"`).join(', ')}]\n`,
    extra: filterToml,
  }));
  return {echo, port};
}

const JWT_FILTER = `
[filter.jwt]
type = "auth.jwt"
secret = "${SECRET}"
algorithms = ["HS256"]
token_from = ["query:token"]
forward_claims = { "x-user-id" = "sub" }
`;

h.test('auth.jwt: no token 401, bad token 403, valid token reaches the backend with x-user-id',
       async () => {
  const {echo, port} = await relayWith(JWT_FILTER, ['jwt']);
  let c = await h.rawConnect(port);
  let res = await c.handshake('/');
  assert.equal(res.status, 401);
  assert.deepEqual(JSON.parse(res.body), {error: 'missing token'});

  c = await h.rawConnect(port);
  res = await c.handshake(`/?token=${jwt({sub: 'alice'}, 'wrong-secret')}`);
  assert.equal(res.status, 403);
  assert.deepEqual(JSON.parse(res.body), {error: 'invalid token'});

  c = await h.rawConnect(port);
  res = await c.handshake(`/?token=${jwt({sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60})}`);
  assert.equal(res.status, 403, 'expired');

  // A client-sent x-user-id never reaches the upstream: the claim decides.
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/?token=${jwt({sub: 'alice'})}`, [],
                               {headers: {'x-user-id': 'mallory'}});
  const conn = await echo.waitFor((o) => o.event === 'connection', 5000, 'backend connection');
  assert.equal(conn.headers['x-user-id'], 'alice');
  const q = h.messageQueue(ws);
  ws.send('hello');
  assert.equal((await q.next()).data.toString(), 'hello');
  ws.close(1000);
});

h.test('auth.jwt protocol: the token entries stay off the upstream, the 101 echoes the marker',
       async () => {
  const {echo, port} = await relayWith(JWT_FILTER.replace('["query:token"]', '["protocol"]'),
                                       ['jwt'], ['--protocols', 'chat']);
  const token = jwt({sub: 'alice'});
  // Only credentials offered: the upstream sees no subprotocol, the client gets its marker.
  let ws = await h.wsConnect(`ws://127.0.0.1:${port}/`, ['access_token', token]);
  assert.equal(ws.protocol, 'access_token');
  let conn = await echo.waitFor((o) => o.event === 'connection' && o.id === 1, 5000, 'backend 1');
  assert.equal(conn.offered, null);
  assert.equal(conn.headers['x-user-id'], 'alice');
  ws.close(1000);

  // A real subprotocol next to the credentials: it goes up alone and the upstream's pick wins.
  ws = await h.wsConnect(`ws://127.0.0.1:${port}/`, ['chat', 'access_token', token]);
  assert.equal(ws.protocol, 'chat');
  conn = await echo.waitFor((o) => o.event === 'connection' && o.id === 2, 5000, 'backend 2');
  assert.equal(conn.offered, 'chat');
  assert.equal(conn.protocol, 'chat');
  const q = h.messageQueue(ws);
  ws.send('hello');
  assert.equal((await q.next()).data.toString(), 'hello');
  ws.close(1000);

  // A bad token in the protocol header is still refused at the handshake.
  const c = await h.rawConnect(port);
  const res = await c.handshake('/', {'Sec-WebSocket-Protocol': `access_token, ${jwt({sub: 'x'}, 'bad')}`});
  assert.equal(res.status, 403);
  assert.deepEqual(JSON.parse(res.body), {error: 'invalid token'});
});

h.test('limits.handshake_timeout: a client that sends half a request gets 408 and is closed',
       async () => {
  const {port} = await relayWith(`
[filter.size]
type = "limits"
handshake_timeout = "700ms"
`, ['size']);
  const c = await h.rawConnect(port);
  const start = Date.now();
  c.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  const res = await c.readResponse(5000);
  const elapsed = Date.now() - start;
  assert.equal(res.status, 408);
  assert.deepEqual(JSON.parse(res.body), {error: 'handshake timeout'});
  await h.withTimeout(c.closed, 5000, 'close after the 408');
  // Generous bounds: not at once, and well before the 10 s default.
  assert.ok(elapsed >= 600 && elapsed < 5000, `408 after ${elapsed} ms`);
});

h.test('rate_limit notify: 20 messages at once against 5/s burst 5 give 5 echoes and 15 notices',
       async () => {
  const notice = '{"event":"rate-limit-exceeded","data":{"message":"too many messages"}}';
  const {port} = await relayWith(`
[filter.limit]
type = "rate_limit"
messages_per_second = 5
burst = 5
action = "notify"
`, ['limit']);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);
  for (let i = 0; i < 20; i++) ws.send(`m${i}`);
  const echoes = [];
  let notices = 0;
  for (let i = 0; i < 20; i++) {
    const text = (await q.next()).data.toString();
    if (text === notice) notices++;
    else echoes.push(text);
  }
  assert.deepEqual(echoes, ['m0', 'm1', 'm2', 'm3', 'm4']);
  assert.equal(notices, 15);
  ws.close(1000);
});

h.test('rate_limit shape: nothing is dropped, delivery is spread at the configured rate',
       async () => {
  const {port} = await relayWith(`
[filter.limit]
type = "rate_limit"
messages_per_second = 10
burst = 5
action = "shape"
`, ['limit']);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);
  const start = Date.now();
  for (let i = 0; i < 20; i++) ws.send(`m${i}`);
  for (let i = 0; i < 20; i++) assert.equal((await q.next(10000)).data.toString(), `m${i}`);
  const elapsed = Date.now() - start;
  // 5 pass at once, the other 15 at 10/s: about 1.5 s.
  assert.ok(elapsed >= 1200, `20 messages took ${elapsed} ms; shaping should take about 1.5 s`);
  ws.close(1000);
});

h.test('heartbeat: text "ping" is answered "pong" by wsbridge and never reaches the backend',
       async () => {
  const {port} = await relayWith(`
[filter.hb]
type = "heartbeat"
ping_interval = "0s"
text_ping = "ping"
text_pong = "pong"
`, ['hb']);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);
  ws.send('ping');
  ws.send('after');
  assert.equal((await q.next()).data.toString(), 'pong');
  // Had the backend seen "ping" it would have echoed it before "after".
  assert.equal((await q.next()).data.toString(), 'after');
  ws.close(1000);
});

h.test('heartbeat: a client that stops answering pings is closed and the backend sees it',
       async () => {
  const {echo, port} = await relayWith(`
[filter.hb]
type = "heartbeat"
ping_interval = "300ms"
ping_timeout = "300ms"
`, ['hb']);
  const c = await h.rawConnect(port);
  assert.equal((await c.handshake('/')).status, 101);
  const start = Date.now();
  const first = await c.readFrame(5000);
  assert.equal(first.opcode, h.OP.PING, 'wsbridge pings the client');
  // Never answer: the close comes within ping_interval + ping_timeout (plus slack).
  const close = await c.readClose(5000);
  const elapsed = Date.now() - start;
  assert.ok(elapsed < 2000, `closed after ${elapsed} ms`);
  assert.ok(close.code === 1001 || close.code === 1011, `close code ${close.code}`);
  const seen = await echo.waitFor((o) => o.event === 'close', 5000, 'backend close');
  assert.equal(seen.code, 1001);
});
