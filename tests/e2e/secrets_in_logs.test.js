// No secrets in logs or on the admin listener: wsbridge at log_level "trace" with an access log
// sees JWTs in every place auth.jwt reads them (query, Authorization, cookie, subprotocol, the
// Socket.IO CONNECT auth payload), on a relay, a Socket.IO pass-through over websocket and
// polling, translate up (with a static upstream_auth credential) and translate down, plus
// requests that fail after the token was read. Neither its output nor /stats, /metrics, /config,
// /connections nor the dashboard page may then contain a token, its signature, the upstream_auth
// credential or the JWT secret.
'use strict';
const crypto = require('node:crypto');
const h = require('./lib/harness');
const sio = require('./lib/sio');
const admin = require('./lib/admin');

const {assert} = h;
const SECRET = 'jwt-signing-key-4d1f9a';
const UPSTREAM_SECRET = 'static-upstream-credential-7c2e55';

// Each token has its own subject, so a leak names its source.
const tokens = {};
function token(source) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64({sub: `user-${source}`,
                                                         nonce: crypto.randomUUID()})}`;
  const t = `${body}.${crypto.createHmac('sha256', SECRET).update(body).digest('base64url')}`;
  tokens[source] = t;
  return t;
}

function config({port, adminPort, echoPort, sioPort}) {
  return `[runtime]
workers = 1
log_level = "trace"

[admin]
address = "127.0.0.1:${adminPort}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/relay"
downstream = "websocket"
cluster = "echo"
filters = ["jwt", "log"]

[[route]]
path = "/socket.io/"
downstream = "socketio"
cluster = "sio"
filters = ["jwt", "log"]

[[route]]
path = "/up"
downstream = "websocket"
cluster = "sio"
filters = ["jwt", "log"]
upstream_auth = { token = "${UPSTREAM_SECRET}" }

[[route]]
path = "/down/"
downstream = "socketio"
cluster = "echo"
filters = ["jwt", "log"]

[cluster.echo]
protocol = "websocket"
endpoints = ["127.0.0.1:${echoPort}"]
connect_timeout = "1s"

[cluster.sio]
protocol = "socketio"
endpoints = ["127.0.0.1:${sioPort}"]
connect_timeout = "1s"

[filter.jwt]
type = "auth.jwt"
secret = "${SECRET}"
algorithms = ["HS256"]
token_from = ["query:token", "header:authorization", "cookie:token", "protocol",
              "socketio_auth:token"]
forward_claims = { "x-user-id" = "sub" }

[filter.log]
type = "access_log"
format = "text"
path = "-"
`;
}

// Every secret and, for tokens, the signature alone: a log must not hold even part of one.
function secrets() {
  const out = {'upstream_auth token': UPSTREAM_SECRET, 'jwt secret': SECRET};
  for (const [source, t] of Object.entries(tokens)) {
    out[`${source} token`] = t;
    out[`${source} signature`] = t.split('.')[2];
  }
  return out;
}

function assertNoSecrets(text, where) {
  for (const [what, value] of Object.entries(secrets())) {
    const at = text.indexOf(value);
    assert.ok(at < 0, `${where} holds the ${what}: ...${text.slice(Math.max(0, at - 200),
                                                                   at + 40)}`);
  }
}

async function adminPages(adminPort) {
  const pages = {};
  for (const path of ['/', '/stats', '/metrics', '/config', '/connections']) {
    const res = await admin.get(adminPort, path);
    assert.equal(res.status, 200, path);
    pages[path] = res.body;
  }
  return pages;
}

h.test('trace logs, the access log and the admin pages hold no token and no upstream_auth ' +
       'credential', async () => {
  const echo = await h.startPeer('ws-echo.js', ['--protocols', 'chat']);
  const server = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await h.startWsbridge(config({port, adminPort, echoPort: echo.port,
                                               sioPort: server.port}));
  const base = `127.0.0.1:${port}`;
  const open = [];

  // Relay: each WebSocket handshake source.
  const relay = [
    [`/relay?token=${token('relay-query')}&room=1`, {}],
    ['/relay', {Authorization: `Bearer ${token('relay-header')}`}],
    ['/relay', {Cookie: `theme=dark; token=${token('relay-cookie')}`}],
    ['/relay', {'Sec-WebSocket-Protocol': `chat, access_token, ${token('relay-protocol')}`}],
  ];
  for (const [path, headers] of relay) {
    const c = await h.rawConnect(port);
    const res = await c.handshake(path, headers);
    assert.equal(res.status, 101, `${path} ${JSON.stringify(headers)}`);
    open.push(c);
  }
  // A refused token is logged no more than an accepted one.
  let c = await h.rawConnect(port);
  assert.equal((await c.handshake(`/relay?token=${token('relay-bad')}x`)).status, 403);

  // Socket.IO pass-through over websocket and polling (then the upgrade).
  const passthrough = [
    [{transports: ['websocket'], query: {token: token('sio-ws-query')}}],
    [{transports: ['websocket'], auth: {token: token('sio-ws-auth')}}],
    [{transports: ['polling'], auth: {token: token('sio-poll-auth')}}],
    [{transports: ['polling'], query: {token: token('sio-poll-query')}}],
    [{transports: ['polling', 'websocket'],
      extraHeaders: {Authorization: `Bearer ${token('sio-poll-header')}`}}],
    [{transports: ['polling'], extraHeaders: {Cookie: `token=${token('sio-poll-cookie')}`}}],
  ];
  const sockets = [];
  for (const [opts] of passthrough) {
    const socket = await sio.connect(`http://${base}`, opts);
    assert.equal((await sio.emitAck(socket, 'echo', 'hi'))[0], 'hi');
    sockets.push(socket);
  }
  // Requests that fail after routing, with a token in the query: logged as errors.
  for (const query of [`EIO=4&transport=bogus&token=${token('sio-bad-transport')}`,
                       `EIO=4&transport=polling&sid=nope&token=${token('sio-bad-sid')}`,
                       `EIO=9&transport=polling&token=${token('sio-bad-eio')}`]) {
    const res = await sio.request(port, {path: `/socket.io/?${query}`});
    assert.equal(res.status, 400, query);
  }

  // Translate up: the client's token, and the route's static upstream_auth credential.
  for (const [path, headers] of [[`/up?token=${token('up-query')}`, {}],
                                 ['/up', {Authorization: `Bearer ${token('up-header')}`}]]) {
    const ws = await h.wsConnect(`ws://${base}${path}`, [], {headers});
    const q = h.messageQueue(ws);
    ws.send(JSON.stringify({event: 'echo', data: 'up', ack: 1}));
    await q.next();
    open.push(ws);
  }

  // Translate down: the Socket.IO server role, toward the WebSocket upstream.
  for (const opts of [{transports: ['polling'], query: {token: token('down-poll-query')}},
                      {transports: ['websocket'], query: {token: token('down-ws-query')}},
                      {transports: ['polling', 'websocket'],
                       extraHeaders: {Authorization: `Bearer ${token('down-header')}`}}]) {
    sockets.push(await sio.connect(`http://${base}`, {path: '/down/', ...opts}));
  }
  for (const query of [`EIO=4&transport=bogus&token=${token('down-bad-transport')}`,
                       `EIO=4&transport=polling&sid=nope&token=${token('down-bad-sid')}`]) {
    const res = await sio.request(port, {path: `/down/?${query}`});
    assert.equal(res.status, 400, query);
  }

  // While the connections are open (/connections lists them) and after they closed.
  const live = await adminPages(adminPort);
  assert.ok(JSON.parse(live['/connections']).total > 0, live['/connections']);
  for (const [path, body] of Object.entries(live)) assertNoSecrets(body, `GET ${path} (live)`);
  for (const socket of sockets) socket.disconnect();
  for (const o of open) (o.close ? o.close(1000) : o.destroy());
  await admin.until(async () => (await admin.getJson(adminPort, '/connections')).total === 0,
                    'every connection closed');
  const after = await adminPages(adminPort);
  for (const [path, body] of Object.entries(after)) assertNoSecrets(body, `GET ${path}`);

  await bridge.stop();
  const logs = bridge.logs();
  // The test saw what it meant to: trace output and access lines for the routes.
  assert.ok(/\[debug\]/.test(logs), 'debug lines');
  assert.ok(logs.includes('user-relay-query'), 'an access line of the relay');
  assert.ok(logs.includes('Session ID unknown') || logs.includes('Transport unknown'),
            'the failed Engine.IO requests were logged');
  assertNoSecrets(logs, 'wsbridge output');
}, {timeout: 120000});
