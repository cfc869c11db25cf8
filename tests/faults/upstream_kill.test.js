// Upstreams that die or break the protocol mid-stream. A real peer SIGKILLed while a client is
// exchanging messages, on every bridge: the client hears what the README documents (close 1011;
// translate up with `reconnect` resumes; Socket.IO clients a DISCONNECT, the Engine.IO close or
// the unknown-session 400, as their protocol says). A hand-written upstream that sends garbage,
// a reserved opcode, a masked frame, RSV bits or an oversized frame: the upstream is closed 1002
// (1009), the client 1011 with the reason, and the log names the endpoint. Never a crash, and
// nothing left behind.
'use strict';
const h = require('../e2e/lib/harness');
const sio = require('../e2e/lib/sio');
const {startFaultBridge, logLine} = require('./lib/bridges');
const up = require('./lib/raw_upstream');

const {assert} = h;

// What wsbridge says of a connection that ended without a close frame: FIN, or a reset when the
// killed process left unread bytes behind.
const LOST = ['connection closed without a close frame', 'connection error'];

const endpointRe = (cluster, port) =>
  `cluster '${cluster}': endpoint 127\\.0\\.0\\.1:${port}`;

// Round trips over `c` (a RawClient past its 101) until the upstream goes: `peer` is SIGKILLed
// (by PID) after `before` of them while the client keeps sending. send(i) writes message i,
// check(message, i) asserts its answer; the exchange ends with a close frame, or a message
// `ends(message)` names. Resolves with that frame (a close with its code and reason parsed).
async function exchangeThroughKill(c, peer, {before = 20, send, check, ends = () => false}) {
  let killed = null;
  let answered = 0;
  for (let i = 0; ; i++) {
    if (i === before) killed = peer.kill('SIGKILL');
    send(i);
    const m = await c.readMessage();
    if (m.opcode === h.OP.CLOSE || (killed && ends(m))) {
      await killed;
      assert.ok(answered >= before, `only ${answered} round trips before the end`);
      return m.opcode === h.OP.CLOSE ? {...m, ...h.parseClose(m.payload)} : m;
    }
    check(m, i);
    answered++;
  }
}

function assertLostClose(close, what) {
  assert.equal(close.masked, false, `${what}: server frames are not masked`);
  assert.equal(close.code, 1011, what);
  assert.ok(LOST.includes(close.reason), `${what}: reason ${JSON.stringify(close.reason)}`);
  h.assertBytesEqual(close.payload, h.closePayload(1011, close.reason), `${what}: close payload`);
}

// ---- SIGKILL mid-stream, every bridge ----

h.test('relay: upstream SIGKILLed mid-stream: the client gets 1011 "connection closed without ' +
       'a close frame", the log names the endpoint', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const f = await startFaultBridge([
    {downstream: 'websocket', cluster: 'echo', protocol: 'websocket', endpoints: [echo.port]},
  ]);
  const c = await h.rawConnect(f.port);
  assert.equal((await c.handshake('/chat')).status, 101);
  const close = await exchangeThroughKill(c, echo, {
    send: (i) => c.sendText(`m${i}`),
    check: (m, i) => assert.equal(m.payload.toString(), `m${i}`),
  });
  assertLostClose(close, 'relay');
  c.sendClose(1011);
  await logLine(f.bridge, new RegExp(`${endpointRe('echo', echo.port)}: lost: ` +
                                     `(${LOST.join('|')})`));
  t.log(JSON.stringify(await f.noLeak('after the relay upstream was killed')));
});

h.test('translate up: server SIGKILLed mid-stream: the client gets 1011 "upstream connection ' +
       'lost"', async (t) => {
  const server = await h.startPeer('sio-server.js');
  const f = await startFaultBridge([
    {downstream: 'websocket', cluster: 'sio', protocol: 'socketio', endpoints: [server.port]},
  ]);
  const c = await h.rawConnect(f.port);
  assert.equal((await c.handshake('/')).status, 101);
  const close = await exchangeThroughKill(c, server, {
    send: (i) => c.sendText(`{"event":"echo","data":${i},"ack":${i}}`),
    check: (m, i) => assert.equal(m.payload.toString(), `{"ack":${i},"data":${i}}`),
  });
  assert.equal(close.masked, false);
  h.assertBytesEqual(close.payload, h.closePayload(1011, 'upstream connection lost'), 'close');
  c.sendClose(1011);
  await logLine(f.bridge, new RegExp(`${endpointRe('sio', server.port)}: lost: `));
  t.log(JSON.stringify(await f.noLeak('after the translate-up server was killed')));
});

h.test('translate up with reconnect: server SIGKILLed mid-stream and restarted: the client ' +
       'hears reconnecting, then reconnected, and what it sent meanwhile arrives', async (t) => {
  const server = await h.startPeer('sio-server.js');
  const f = await startFaultBridge([
    {downstream: 'websocket', cluster: 'sio', protocol: 'socketio', endpoints: [server.port],
     extra: 'reconnect = { initial_backoff = "20ms", max_backoff = "100ms" }'},
  ]);
  const c = await h.rawConnect(f.port);
  assert.equal((await c.handshake('/')).status, 101);
  // Acks the lost server owed are answered with an error before "reconnecting"; what the client
  // sends once wsbridge knows is held and answered by the new server.
  let killed = null;
  const owed = new Set();
  for (let i = 0; ; i++) {
    if (i === 20) killed = server.kill('SIGKILL');
    if (!killed || i < 25) {
      c.sendText(`{"event":"echo","data":${i},"ack":${i}}`);
      owed.add(i);
    }
    const text = (await c.readMessage()).payload.toString();
    if (text === '{"event":"reconnecting"}') break;
    const m = JSON.parse(text);
    assert.ok(owed.delete(m.ack), `an answer to ack ${m.ack}, asked once: ${text}`);
    if (JSON.stringify(m.data) !== String(m.ack)) {
      assert.deepEqual(m.data, {error: 'upstream connection lost'}, text);
    }
  }
  await killed;
  c.sendText('{"event":"echo","data":"held","ack":100}');
  const again = await h.startPeer('sio-server.js', ['--port', server.port]);
  assert.equal((await c.readMessage()).payload.toString(), '{"event":"reconnected"}');
  t.log(`${owed.size} message(s) held while reconnecting, besides the last`);
  for (const i of [...owed].sort((a, b) => a - b)) {
    assert.equal((await c.readMessage()).payload.toString(), `{"ack":${i},"data":${i}}`);
  }
  assert.equal((await c.readMessage()).payload.toString(), '{"ack":100,"data":"held"}');
  c.sendText('{"event":"echo","data":"after","ack":101}');
  assert.equal((await c.readMessage()).payload.toString(), '{"ack":101,"data":"after"}');
  assert.equal(again.lines.filter((o) => o.event === 'connection').length, 1);
  await logLine(f.bridge, new RegExp(`${endpointRe('sio', server.port)}: lost: `));
  await logLine(f.bridge, /translate up: reconnected, sending \d+ held messages/);
  c.sendClose(1000, 'done');
  assert.equal((await c.readClose()).code, 1000);
  t.log(JSON.stringify(await f.noLeak('after the resumed connection closed')));
}, {timeout: 30000});

// Engine.IO by hand over a RawClient: the OPEN, then (v4) our CONNECT of "/".
async function eioOverWebSocket(port, eio) {
  const c = await h.rawConnect(port);
  assert.equal((await c.handshake(`/socket.io/?EIO=${eio}&transport=websocket`)).status, 101);
  const open = (await c.readMessage()).payload.toString();
  assert.match(open, /^0\{"sid":/);
  if (eio === 4) c.sendText('40');  // v3: wsbridge connects "/" for the client
  assert.match((await c.readMessage()).payload.toString(), eio === 4 ? /^40\{"sid":/ : /^40$/);
  return c;
}

const echoEvent = (i) => `42["echo",${i}]`;

h.test('pass-through over websocket (Engine.IO v4, and v3 with allow_eio3): server SIGKILLed ' +
       'mid-stream: the client gets 1011', async (t) => {
  for (const eio of [4, 3]) {
    const server = await h.startPeer('sio-server.js');
    const f = await startFaultBridge([
      {downstream: 'socketio', cluster: 'sio', protocol: 'socketio', endpoints: [server.port],
       extra: 'allow_eio3 = true'},
    ]);
    const c = await eioOverWebSocket(f.port, eio);
    const close = await exchangeThroughKill(c, server, {
      send: (i) => c.sendText(echoEvent(i)),
      check: (m, i) => assert.equal(m.payload.toString(), echoEvent(i)),
    });
    assertLostClose(close, `EIO=${eio}`);
    c.sendClose(1011);
    await logLine(f.bridge, new RegExp(`${endpointRe('sio', server.port)}: lost: `));
    t.log(`EIO=${eio}: ${JSON.stringify(await f.noLeak(`after EIO=${eio}`))}`);
    await f.bridge.stop();
  }
}, {timeout: 30000});

h.test('pass-through over polling: server SIGKILLed while it holds the client\'s GET: that GET ' +
       'and the next get 400 Session ID unknown (the client starts a new session)', async (t) => {
  const server = await h.startPeer('sio-server.js', ['--report-requests']);
  const f = await startFaultBridge([
    {path: '/socket.io/', downstream: 'socketio', cluster: 'sio', protocol: 'socketio',
     endpoints: [server.port]},
  ]);
  const s = new sio.PollingSession('/socket.io/');
  await s.handshake(f.port);
  assert.equal((await s.post(f.port, '40')).body, 'ok');
  assert.match((await s.get(f.port)).body, /^40\{"sid":/);
  for (let i = 0; i < 10; i++) {
    assert.equal((await s.post(f.port, echoEvent(i))).body, 'ok');
    assert.equal((await s.get(f.port)).body, echoEvent(i));
  }
  const gets = () => server.lines.filter((o) => o.event === 'http-request' &&
                                              o.method === 'GET').length;
  const before = gets();
  const c = await h.rawConnect(f.port);
  const held = c.request(`GET ${s.url()} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await server.waitFor(() => gets() > before, 5000, 'the held GET at the server');
  await server.kill('SIGKILL');
  const unknown = '{"code":1,"message":"Session ID unknown"}';
  const res = await held;
  assert.equal(res.statusLine, 'HTTP/1.1 400 Bad Request');
  assert.equal(res.body.toString(), unknown);
  const next = await s.get(f.port);
  assert.equal(next.status, 400);
  assert.equal(next.body, unknown);
  await logLine(f.bridge, new RegExp(`${endpointRe('sio', server.port)}: lost during a request ` +
                                     'of a session: connection closed'));
  t.log(JSON.stringify(await f.noLeak('after the polling server was killed')));
});

h.test('Engine.IO v3 polling (allow_eio3): server SIGKILLed: the session ends with it, the ' +
       'client\'s next poll gets 400 Session ID unknown', async (t) => {
  const server = await h.startPeer('sio-server.js');
  const f = await startFaultBridge([
    {path: '/socket.io/', downstream: 'socketio', cluster: 'sio', protocol: 'socketio',
     endpoints: [server.port], extra: 'allow_eio3 = true'},
  ]);
  const open = await sio.request(f.port, {path: '/socket.io/?EIO=3&transport=polling&b64=1'});
  const sid = /"sid":"([^"]+)"/.exec(open.body)[1];
  const path = `/socket.io/?EIO=3&transport=polling&b64=1&sid=${sid}`;
  assert.equal((await sio.request(f.port, {path})).body, '2:40');
  const v3 = (packet) => `${packet.length}:${packet}`;
  for (let i = 0; i < 10; i++) {
    const posted = await sio.request(f.port, {method: 'POST', path, body: v3(echoEvent(i)),
                                              headers: {'Content-Type': 'text/plain'}});
    assert.equal(posted.body, 'ok');
    assert.equal((await sio.request(f.port, {path})).body, v3(echoEvent(i)));
  }
  await server.kill('SIGKILL');
  // The log line is the sign that wsbridge saw the loss (and closed the session).
  await logLine(f.bridge, new RegExp(`${endpointRe('sio', server.port)}: lost: `));
  const next = await sio.request(f.port, {path});
  assert.equal(next.status, 400);
  assert.equal(next.body, '{"code":1,"message":"Session ID unknown"}');
  t.log(JSON.stringify(await f.noLeak('after the v3 server was killed')));
});

h.test('translate down: upstream SIGKILLed mid-stream: a websocket client and a polling client ' +
       'each get the namespace\'s DISCONNECT (41), their sessions stay', async (t) => {
  const legacy = await h.startPeer('ws-echo.js');
  const f = await startFaultBridge([
    {path: '/socket.io/', downstream: 'socketio', cluster: 'legacy', protocol: 'websocket',
     endpoints: [legacy.port]},
  ]);
  const poller = new sio.PollingSession('/socket.io/');
  await poller.handshake(f.port);
  assert.equal((await poller.post(f.port, '40')).body, 'ok');
  assert.match((await poller.get(f.port)).body, /^40\{"sid":/);
  const c = await eioOverWebSocket(f.port, 4);
  const end = await exchangeThroughKill(c, legacy, {
    send: (i) => c.sendText(echoEvent(i)),
    check: (m, i) => assert.equal(m.payload.toString(), echoEvent(i)),
    ends: (m) => m.payload.toString() === '41',
  });
  assert.equal(end.opcode, h.OP.TEXT, 'a DISCONNECT, not a close: the session stays');
  await logLine(f.bridge, new RegExp(`${endpointRe('legacy', legacy.port)}: lost: `));
  const disconnected = await poller.get(f.port);
  assert.equal(disconnected.status, 200);
  assert.equal(disconnected.body, '41');
  // Both Engine.IO sessions still answer; the clients end them.
  c.sendText('1');
  assert.equal((await c.readClose()).code, 1000);
  c.sendClose(1000);
  assert.equal((await poller.post(f.port, '1')).body, 'ok');
  t.log(JSON.stringify(await f.noLeak('after the translate-down upstream was killed')));
});

// ---- hand-written upstreams that break the protocol ----

// Echoes the first `echoes` text frames it gets (unmasked, as a server must), then answers the
// next one with `bytes`. Its sockets' frame readers are in `readers`.
async function breakingWsServer(bytes, echoes = 3) {
  const readers = [];
  const server = await up.rawWsServer((socket) => {
    const frames = up.frameReader(socket);
    readers.push(frames);
    (async () => {
      for (let i = 0; i < echoes; i++) {
        const f = await frames.next();
        socket.write(up.serverFrame({opcode: f.opcode, payload: f.payload}));
      }
      await frames.next();
      socket.write(bytes);
    })().catch(() => {});
  });
  server.readers = readers;
  return server;
}

const violations = [
  {name: 'garbage bytes', bytes: Buffer.from('HTTP/1.1 200 OK\r\n\r\n'),
   reason: 'reserved bits set', upstreamCode: 1002},
  {name: 'a frame with the reserved opcode 0x3',
   bytes: up.serverFrame({opcode: 0x3, payload: 'x'}), reason: 'unknown opcode',
   upstreamCode: 1002},
  {name: 'a masked frame (RFC 6455 5.1: servers must not mask)',
   bytes: h.encodeFrame({opcode: h.OP.TEXT, payload: 'masked', mask: true}),
   reason: 'masked server frame', upstreamCode: 1002},
  {name: 'RSV1 set without an extension',
   bytes: up.serverFrame({opcode: h.OP.TEXT, payload: 'rsv', rsv: 4}),
   reason: 'reserved bits set', upstreamCode: 1002},
  {name: 'a frame over the route\'s max_message (1 KiB)',
   bytes: up.serverFrame({opcode: h.OP.BINARY, payload: Buffer.alloc(1025, 7)}),
   reason: 'message too big', upstreamCode: 1009},
];

for (const v of violations) {
  h.test(`relay: an upstream that sends ${v.name} mid-stream is closed ${v.upstreamCode}; the ` +
         `client gets 1011 "${v.reason}", the log names the endpoint`, async (t) => {
    const raw = await breakingWsServer(v.bytes);
    const f = await startFaultBridge([
      {downstream: 'websocket', cluster: 'raw', protocol: 'websocket', endpoints: [raw.port],
       extra: 'max_message = "1KiB"'},
    ]);
    const c = await h.rawConnect(f.port);
    assert.equal((await c.handshake('/')).status, 101);
    for (let i = 0; i < 3; i++) {
      c.sendText(`m${i}`);
      assert.equal((await c.readMessage()).payload.toString(), `m${i}`);
    }
    c.sendText('the one answered with the violation');
    const close = await c.readClose();
    assert.equal(close.masked, false);
    h.assertBytesEqual(close.payload, h.closePayload(1011, v.reason), 'the client\'s close');
    c.sendClose(1011);
    const atUpstream = await raw.readers[0].close();
    assert.deepEqual(atUpstream, {code: v.upstreamCode, reason: v.reason, masked: true},
                     'the upstream\'s close (wsbridge is its client: masked)');
    await logLine(f.bridge, new RegExp(`${endpointRe('raw', raw.port)}: closed with ` +
                                       `${v.upstreamCode}: ${v.reason}`));
    t.log(JSON.stringify(await f.noLeak(`after ${v.name}`)));
  });
}

h.test('a reserved opcode from the upstream on the other bridges: translate up closes the ' +
       'client 1011, pass-through 1011, translate down sends DISCONNECT; the log names it',
       async (t) => {
  const bad = up.serverFrame({opcode: 0x3, payload: 'x'});
  // Translate up: a Socket.IO server by hand that joins the client, then breaks on its event.
  const sioRaw = await up.rawWsServer((socket) => {
    const frames = up.frameReader(socket);
    socket.write(up.serverFrame({opcode: h.OP.TEXT, payload: up.openPacket()}));
    (async () => {
      assert.equal((await frames.next()).payload.toString(), '40');
      socket.write(up.serverFrame({opcode: h.OP.TEXT, payload: '40{"sid":"BBBBBBBBBBBBBBBBBBBB"}'}));
      await frames.next();
      socket.write(bad);
    })().catch(() => {});
  });
  // Pass-through: the OPEN, then the violation on the client's first packet.
  const passRaw = await up.rawWsServer((socket) => {
    const frames = up.frameReader(socket);
    socket.write(up.serverFrame({opcode: h.OP.TEXT, payload: up.openPacket()}));
    frames.next().then(() => socket.write(bad), () => {});
  });
  // Translate down: a raw WebSocket server that breaks on the first envelope.
  const downRaw = await breakingWsServer(bad, 0);
  const f = await startFaultBridge([
    {path: '/up', downstream: 'websocket', cluster: 'up', protocol: 'socketio',
     endpoints: [sioRaw.port]},
    {path: '/pass/', downstream: 'socketio', cluster: 'pass', protocol: 'socketio',
     endpoints: [passRaw.port]},
    {path: '/socket.io/', downstream: 'socketio', cluster: 'down', protocol: 'websocket',
     endpoints: [downRaw.port]},
  ]);

  let c = await h.rawConnect(f.port);
  assert.equal((await c.handshake('/up')).status, 101);
  c.sendText('{"event":"hello"}');
  let close = await c.readClose();
  h.assertBytesEqual(close.payload, h.closePayload(1011, 'upstream connection lost'),
                     'translate up');
  c.sendClose(1011);
  await logLine(f.bridge, new RegExp(`${endpointRe('up', sioRaw.port)}: closed with 1002: ` +
                                     'unknown opcode'));

  c = await h.rawConnect(f.port);
  assert.equal((await c.handshake('/pass/?EIO=4&transport=websocket')).status, 101);
  assert.match((await c.readMessage()).payload.toString(), /^0\{"sid":/);
  c.sendText('40');
  close = await c.readClose();
  h.assertBytesEqual(close.payload, h.closePayload(1011, 'unknown opcode'), 'pass-through');
  c.sendClose(1011);
  await logLine(f.bridge, new RegExp(`${endpointRe('pass', passRaw.port)}: closed with 1002: ` +
                                     'unknown opcode'));

  c = await eioOverWebSocket(f.port, 4);
  c.sendText(echoEvent(1));
  assert.equal((await c.readMessage()).payload.toString(), '41', 'translate down');
  await logLine(f.bridge, new RegExp(`${endpointRe('down', downRaw.port)}: closed with 1002: ` +
                                     'unknown opcode'));
  assert.equal((await downRaw.readers[0].close()).code, 1002);
  c.sendText('1');
  assert.equal((await c.readClose()).code, 1000);
  c.sendClose(1000);
  t.log(JSON.stringify(await f.noLeak('after the violations on the other bridges')));
});

h.run();
