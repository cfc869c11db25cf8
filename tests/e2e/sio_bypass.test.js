// Regression tests for the Socket.IO parsing bypass: packets socket.io-parser accepts but that
// are not in the grammar wsbridge forwards (a space or a tab where the ack id goes, an ack id
// past 2^53) must never reach the server. Each used to be forwarded unjudged, so a forged
// token connected, an event the ACL denies ran, and a rate limit counted nothing. Now the
// client's connection is closed (1002 "parse error" on a websocket; the Engine.IO close packet
// ends the session over polling), the server sees nothing of it, and /metrics counts it.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./lib/harness');
const sio = require('./lib/sio');

const SECRET = 'bypass-e2e-secret';

function jwt(payload, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64(payload)}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

const FORGED = jwt({sub: 'mallory'}, 'not-the-secret');
const VALID = jwt({sub: 'ann'});

// JWT from the CONNECT auth payload, `whoami` denied, one message per connection (no refill).
async function guarded() {
  const server = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  const admin = await h.freePort();
  await h.startWsbridge(sio.sioConfig({
    port,
    endpoints: [server.port],
    routeExtra: 'filters = ["jwt", "acl", "limit"]\n',
    extra: `
[admin]
address = "127.0.0.1:${admin}"

[filter.jwt]
type = "auth.jwt"
secret = "${SECRET}"
algorithms = ["HS256"]
token_from = ["socketio_auth:token"]

[filter.acl]
type = "event_acl"
deny_in = ["whoami"]

[filter.limit]
type = "rate_limit"
# One message, then one more every 100 s: no refill during a case however loaded the machine.
# Inbound only: the server's echoes must not spend tokens (their notices go to the server).
messages_per_second = 0.01
burst = 1
direction = "in"
action = "notify"
`,
  }));
  return {server, port, admin};
}

async function parseErrors(admin) {
  const res = await sio.request(admin, {path: '/metrics'});
  assert.equal(res.status, 200);
  const line = res.body.split('\n').find((l) =>
    l.startsWith('wsbridge_socketio_parse_errors_total{') && l.includes('from="client"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

// A raw Engine.IO v4 websocket through wsbridge, OPEN read.
async function rawWs(port) {
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  const eio = sio.eioClient(ws);
  const open = await eio.nextText();
  assert.equal(open[0], '0');
  return {ws, eio, engineSid: JSON.parse(open.slice(1)).sid.split('.')[0]};
}

async function connectedWs(port) {
  const c = await rawWs(port);
  c.ws.send(`40${JSON.stringify({token: VALID})}`);
  assert.match(await c.eio.nextText(), /^40\{"sid":/);
  return c;
}

async function assertParseErrorClose(eio) {
  const closed = await h.withTimeout(eio.closed, 10000, 'the close');
  assert.equal(closed.code, 1002);
  assert.equal(closed.reason, 'parse error');
}

// The forms of a CONNECT socket.io-parser reads with auth {token} (`0 {..}`: " " is ack id 0;
// ` {..}`: a type of " " is Number(" ") = 0, CONNECT).
const FORGED_CONNECTS = [
  `40 ${JSON.stringify({token: FORGED})}`,
  `40\t${JSON.stringify({token: FORGED})}`,
  `4 ${JSON.stringify({token: FORGED})}`,
  `40\n${JSON.stringify({token: FORGED})}`,
];

for (const packet of FORGED_CONNECTS) {
  h.test(`websocket: ${JSON.stringify(packet.slice(0, 3))}... with a forged token is closed, ` +
         'the server never sees a connection', async () => {
    if (h.direct) throw new h.Skip('needs wsbridge');
    const {server, port, admin} = await guarded();
    const before = await parseErrors(admin);
    const {ws, eio, engineSid} = await rawWs(port);
    ws.send(packet);
    await assertParseErrorClose(eio);
    await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === engineSid, 10000,
                         'the upstream session to close');
    assert.equal(server.lines.filter((o) => o.event === 'connection').length, 0);
    assert.equal(await parseErrors(admin), before + 1);
  });
}

// Events socket.io-parser reads as `whoami` (with ack id 0, 5, or 2^53 rounded).
const DENIED_EVENTS = ['42 ["whoami"]', '425 ["whoami"]', '42\t["whoami"]',
                       '429007199254740993["whoami"]'];

for (const packet of DENIED_EVENTS) {
  h.test(`websocket: ${JSON.stringify(packet)} (an event the ACL denies, in a form the parser ` +
         'takes) is closed, never delivered', async () => {
    if (h.direct) throw new h.Skip('needs wsbridge');
    const {server, port} = await guarded();
    const {ws, eio, engineSid} = await connectedWs(port);
    ws.send(packet);
    await assertParseErrorClose(eio);
    await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === engineSid, 10000,
                         'the upstream session to close');
    assert.deepEqual(server.lines.filter((o) => o.event === 'received'), []);
  });
}

h.test('websocket: ten `42 ["echo"]` at a limit of one: the first closes the connection, none is ' +
       'delivered (the strict form is limited)', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const {server, port} = await guarded();
  const {ws, eio, engineSid} = await connectedWs(port);
  for (let i = 0; i < 10; i++) ws.send(`42 ["echo","${i}"]`);
  await assertParseErrorClose(eio);
  await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === engineSid, 10000,
                       'the upstream session to close');
  assert.deepEqual(server.lines.filter((o) => o.event === 'received'), []);

  // The strict form still goes through the limit: 1 delivered, the rest answered with notices.
  const ok = await connectedWs(port);
  for (let i = 0; i < 10; i++) ok.ws.send(`42["echo","${i}"]`);
  let notices = 0;
  let echoes = 0;
  while (notices + echoes < 10) {
    const text = await ok.eio.nextText();
    if (text.startsWith('42["rate-limit-exceeded"')) notices++;
    else if (text.startsWith('42["echo"')) echoes++;
  }
  assert.equal(echoes, 1);
  assert.equal(notices, 9);
});

// ---- polling: the same packets in a POST body

async function pollingSession(port) {
  const s = new sio.PollingSession();
  await s.handshake(port);
  return {s, engineSid: s.sid.split('.')[0]};
}

async function connectedPolling(port) {
  const c = await pollingSession(port);
  assert.equal((await c.s.post(port, `40${JSON.stringify({token: VALID})}`)).status, 200);
  await c.s.getUntil(port, (p) => p.startsWith('40{"sid"'));
  return c;
}

for (const packet of FORGED_CONNECTS) {
  h.test(`polling: ${JSON.stringify(packet.slice(0, 3))}... with a forged token ends the session, ` +
         'the server never sees a connection', async () => {
    if (h.direct) throw new h.Skip('needs wsbridge');
    const {server, port, admin} = await guarded();
    const before = await parseErrors(admin);
    const {s, engineSid} = await pollingSession(port);
    await s.post(port, packet);
    await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === engineSid, 10000,
                         'the upstream session to close');
    assert.equal(server.lines.filter((o) => o.event === 'connection').length, 0);
    assert.equal((await s.get(port)).status, 400, 'the session is gone');
    assert.equal(await parseErrors(admin), before + 1);
  });
}

for (const packet of DENIED_EVENTS.slice(0, 3)) {
  h.test(`polling: ${JSON.stringify(packet)} ends the session, never delivered`, async () => {
    if (h.direct) throw new h.Skip('needs wsbridge');
    const {server, port} = await guarded();
    const {s, engineSid} = await connectedPolling(port);
    // Valid packets before the bad one are judged as usual; nothing after it is forwarded.
    await s.post(port, ['42["echo","before"]', packet, '42["echo","after"]']);
    await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === engineSid, 10000,
                         'the upstream session to close');
    // 'before' may be delivered or not (the server drops it if its session closes first).
    const received = server.lines.filter((o) => o.event === 'received');
    assert.deepEqual(received.filter((o) => o.name === 'whoami' || o.args[0] === 'after'), []);
  });
}

h.test('polling: ten `42 ["echo"]` in one POST at a limit of one: none is delivered', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const {server, port} = await guarded();
  const {s, engineSid} = await connectedPolling(port);
  await s.post(port, Array.from({length: 10}, (_, i) => `42 ["echo","${i}"]`));
  await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === engineSid, 10000,
                       'the upstream session to close');
  assert.deepEqual(server.lines.filter((o) => o.event === 'received'), []);
});

// ---- namespaces: one request must not fan out into upstream connections

h.test('translate down: one polling POST of 50 `40/nsN,` opens at most max_namespaces (3) ' +
       'upstream sockets; the rest get CONNECT_ERROR "too many namespaces"', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const legacy = await h.startPeer('legacy-ws-server.js');
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
max_namespaces = 3

[cluster.legacy]
protocol = "websocket"
endpoints = ["127.0.0.1:${legacy.port}"]
connect_timeout = "1s"
`);
  const s = new sio.PollingSession();
  await s.handshake(port);
  const K = 50;
  const post = await s.post(port, Array.from({length: K}, (_, i) => `40/ns${i},`));
  assert.equal(post.status, 200);
  const replies = [];
  await s.getUntil(port, (p) => {
    if (p.startsWith('40/') || p.startsWith('44/')) replies.push(p);
    return replies.length === K;
  }, {seen: []});
  const joined = replies.filter((p) => p.startsWith('40/')).map((p) => p.split(',')[0]);
  assert.deepEqual(joined, ['40/ns0', '40/ns1', '40/ns2']);
  const refused = replies.filter((p) => p.startsWith('44/'));
  assert.equal(refused.length, K - 3);
  assert.equal(refused[0], '44/ns3,{"message":"too many namespaces"}');
  await legacy.waitFor((o) => o.event === 'connection' && o.path.startsWith('/ns2'), 10000,
                       'the third upstream socket');
  assert.equal(legacy.lines.filter((o) => o.event === 'connection').length, 3);
});

h.test('pass-through over websocket: CONNECTs past max_namespaces (3) are refused by wsbridge, ' +
       'never forwarded; leaving one makes room', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const server = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  await h.startWsbridge(sio.sioConfig({port, endpoints: [server.port],
                                       routeExtra: 'max_namespaces = 3\n'}));
  const {ws, eio} = await rawWs(port);
  for (const nsp of ['/', '/admin', '/realtime-voice', '/ghost']) {
    ws.send(nsp === '/' ? '40' : `40${nsp},`);
  }
  const replies = [];
  while (replies.length < 4) replies.push(await eio.nextText());
  assert.ok(replies.includes('44/ghost,{"message":"too many namespaces"}'), replies.join(' '));
  assert.equal(replies.filter((p) => /^40(\/[a-z-]+,)?\{"sid"/.test(p)).length, 3);
  ws.send('41/admin,');
  ws.send('40/ghost,');
  // The server has no /ghost namespace: its own refusal proves the CONNECT was forwarded.
  assert.equal(await eio.nextText(), '44/ghost,{"message":"Invalid namespace"}');
  const nsps = server.lines.filter((o) => o.event === 'connection').map((o) => o.nsp).sort();
  assert.deepEqual(nsps, ['/', '/admin', '/realtime-voice']);
});

h.test('pass-through over polling: max_namespaces (3) holds across POSTs; leaving one makes ' +
       'room', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const server = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  await h.startWsbridge(sio.sioConfig({port, endpoints: [server.port],
                                       routeExtra: 'max_namespaces = 3\n'}));
  const s = new sio.PollingSession();
  await s.handshake(port);
  const seen = [];
  const reply = (nsp) => s.getUntil(port, (p) => p.startsWith(`40${nsp}`) ||
                                                 p.startsWith(`44${nsp}`), {seen});
  for (const nsp of ['/', '/admin', '/realtime-voice']) {
    await s.post(port, nsp === '/' ? '40' : `40${nsp},`);
    assert.match(await reply(nsp === '/' ? '' : nsp), /^40/);
  }
  await s.post(port, '40/ghost,');  // a fourth, in a later request
  assert.equal(await reply('/ghost'), '44/ghost,{"message":"too many namespaces"}');
  await s.post(port, ['41/admin,', '40/ghost,']);
  // The server has no /ghost namespace: its own refusal proves the CONNECT was forwarded.
  assert.equal(await reply('/ghost'), '44/ghost,{"message":"Invalid namespace"}');
  const nsps = server.lines.filter((o) => o.event === 'connection').map((o) => o.nsp).sort();
  assert.deepEqual(nsps, ['/', '/admin', '/realtime-voice']);
});

h.run();
