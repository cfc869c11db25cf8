// Upstreams that accept and then say nothing: no answer to the upgrade, to a polling request, to
// the Engine.IO handshake or to the Socket.IO CONNECT. The client hears what the README
// documents (504 after the cluster's handshake_timeout, a CONNECT_ERROR on translate down, a
// failed reconnection attempt on translate up) within the timer and a generous factor, the log
// names the upstream, and nothing is left behind.
'use strict';
const h = require('../e2e/lib/harness');
const sio = require('../e2e/lib/sio');
const {startFaultBridge, logLine, HANDSHAKE_MS} = require('./lib/bridges');
const up = require('./lib/raw_upstream');

const {assert} = h;
const GENEROUS = 10;  // x the configured timer: the machine is loaded

const STATUS_504 = 'HTTP/1.1 504 Gateway Timeout';
const body504 = (cluster) => `{"error":"upstream handshake timeout","cluster":"${cluster}"}`;

// The client's request and what came back, timed from the moment it was written.
async function timedHandshake(port, path) {
  const c = await h.rawConnect(port);
  const started = Date.now();
  const res = await c.handshake(path, {}, HANDSHAKE_MS * GENEROUS);
  return {res, ms: Date.now() - started, client: c};
}

function assert504(res, cluster, what) {
  assert.equal(res.statusLine, STATUS_504, what);
  assert.equal(res.body.toString(), body504(cluster), what);
}

// The deadline ran its course: not earlier than the timer, not much later.
function assertWaited(ms, timerMs, what) {
  assert.ok(ms >= timerMs - 10, `${what}: answered after ${ms} ms, before the ${timerMs} ms timer`);
  assert.ok(ms <= timerMs * GENEROUS, `${what}: answered after ${ms} ms (timer ${timerMs} ms)`);
}

h.test('relay: an upstream that accepts TCP and never answers the upgrade: 504 after ' +
       'handshake_timeout, no retry, the endpoint named in the log', async (t) => {
  const stall = await up.stallingServer();
  const f = await startFaultBridge([
    {downstream: 'websocket', cluster: 'stall', protocol: 'websocket', endpoints: [stall.port]},
  ]);
  const {res, ms} = await timedHandshake(f.port, '/chat');
  assert504(res, 'stall', 'relay');
  assertWaited(ms, HANDSHAKE_MS, 'relay');
  assert.equal(stall.spoke, 1, 'the request was sent once: no other attempt');
  await logLine(f.bridge, new RegExp(`cluster 'stall': endpoint 127\\.0\\.0\\.1:${stall.port}: ` +
                                     'handshake timeout'));
  t.log(`504 after ${ms} ms; ${JSON.stringify(await f.noLeak('after the relay stall'))}`);
});

h.test('pass-through over websocket (Engine.IO v4, and v3 with allow_eio3): 504 after ' +
       'handshake_timeout', async (t) => {
  const stall = await up.stallingServer();
  const f = await startFaultBridge([
    {downstream: 'socketio', cluster: 'sio', protocol: 'socketio', endpoints: [stall.port],
     extra: 'allow_eio3 = true'},
  ]);
  for (const eio of [4, 3]) {
    const {res, ms} = await timedHandshake(f.port, `/socket.io/?EIO=${eio}&transport=websocket`);
    assert504(res, 'sio', `EIO=${eio}`);
    assertWaited(ms, HANDSHAKE_MS, `EIO=${eio}`);
    t.log(`EIO=${eio}: 504 after ${ms} ms`);
  }
  assert.equal(stall.spoke, 2, 'one request each');
  t.log(JSON.stringify(await f.noLeak('after the pass-through stalls')));
});

h.test('translate up: no answer to the upgrade, no Engine.IO OPEN, no answer to the Socket.IO ' +
       'CONNECT: each a 504 after handshake_timeout; the client is never upgraded', async (t) => {
  const tcp = await up.stallingServer();
  const noOpen = await up.rawWsServer((socket) => socket.resume());
  const connects = [];
  const noConnect = await up.rawWsServer((socket) => {
    const frames = up.frameReader(socket);
    socket.write(up.serverFrame({opcode: h.OP.TEXT, payload: up.openPacket()}));
    frames.next().then((f) => connects.push(f.payload.toString()), () => {});
  });
  const f = await startFaultBridge([
    {path: '/tcp', downstream: 'websocket', cluster: 'tcp', protocol: 'socketio',
     endpoints: [tcp.port]},
    {path: '/open', downstream: 'websocket', cluster: 'open', protocol: 'socketio',
     endpoints: [noOpen.port]},
    {path: '/connect', downstream: 'websocket', cluster: 'connect', protocol: 'socketio',
     endpoints: [noConnect.port], extra: 'namespace = "/voice"'},
  ]);
  for (const cluster of ['tcp', 'open', 'connect']) {
    const {res, ms} = await timedHandshake(f.port, `/${cluster}`);
    assert504(res, cluster, cluster);
    assertWaited(ms, HANDSHAKE_MS, cluster);
    t.log(`${cluster}: 504 after ${ms} ms`);
  }
  assert.deepEqual(connects, ['40/voice,'], 'the CONNECT that went unanswered');
  await logLine(f.bridge, new RegExp(`cluster 'connect': endpoint 127\\.0\\.0\\.1:` +
                                     `${noConnect.port}: handshake timeout`));
  t.log(JSON.stringify(await f.noLeak('after the translate-up stalls')));
});

// A cluster of a real socket.io server and, second, a server that upgrades, sends its OPEN and
// never answers the CONNECT. The client starts on the real one (round robin starts at the
// first); once that is killed every reconnection attempt reaches the stalled one (first, or
// after the refused dead one) and must end after the cluster's handshake_timeout, not hang.
async function reconnectIntoStall({maxAttempts}) {
  const server = await h.startPeer('sio-server.js');
  const stalls = [];
  const stall = await up.rawWsServer((socket) => {
    stalls.push(Date.now());
    socket.write(up.serverFrame({opcode: h.OP.TEXT, payload: up.openPacket()}));
    socket.resume();
  });
  const f = await startFaultBridge([
    {downstream: 'websocket', cluster: 'sio', protocol: 'socketio',
     endpoints: [server.port, stall.port],
     extra: `reconnect = { initial_backoff = "20ms", max_backoff = "40ms", ` +
            `max_attempts = ${maxAttempts} }`},
  ]);
  const c = await h.rawConnect(f.port);
  assert.equal((await c.handshake('/')).status, 101);
  c.sendText('{"event":"echo","data":1,"ack":1}');
  assert.equal((await c.readMessage()).payload.toString(), '{"ack":1,"data":1}');
  assert.equal(stalls.length, 0, 'the client started on the real server');
  await server.kill('SIGKILL');
  assert.equal((await c.readMessage()).payload.toString(), '{"event":"reconnecting"}');
  return {f, c, stall, stalls};
}

h.test('translate up with reconnect: a replacement server that never answers the CONNECT ' +
       'fails each attempt after handshake_timeout; after max_attempts the client gets 1011',
       async (t) => {
  const {f, c, stalls} = await reconnectIntoStall({maxAttempts: 2});
  const started = Date.now();
  const close = await c.readClose(HANDSHAKE_MS * 2 * GENEROUS);
  t.log(`closed after ${Date.now() - started} ms, ${stalls.length} stalled attempt(s)`);
  h.assertBytesEqual(close.payload, h.closePayload(1011, 'upstream unavailable'), 'close');
  assert.equal(close.masked, false);
  assert.equal(stalls.length, 2, 'both attempts reached the stalled server');
  await logLine(f.bridge, /cluster 'sio': endpoint 127\.0\.0\.1:\d+: no Socket\.IO CONNECT answer/);
  await logLine(f.bridge, /translate up: giving up after 2 reconnection attempts/);
  c.sendClose(1011);
  t.log(JSON.stringify(await f.noLeak('after giving up')));
}, {timeout: 30000});

h.test('translate up with reconnect: the client leaving while an attempt waits for the CONNECT ' +
       'answer frees the session and its upstream connection', async (t) => {
  const {f, c, stall} = await reconnectIntoStall({maxAttempts: 0});
  const first = await stall.nextConnection(HANDSHAKE_MS * GENEROUS);
  const upstreamGone = new Promise((resolve) => first.once('close', resolve));
  c.sendClose(1000, 'bye');
  const close = await c.readClose();
  assert.equal(close.code, 1000);
  await h.withTimeout(upstreamGone, 5000, 'the stalled upstream connection closed');
  t.log(JSON.stringify(await f.noLeak('after the client left mid-reconnection')));
}, {timeout: 30000});

h.test('pass-through over polling: a stalled upstream gets the handshake GET and a POST a 504 ' +
       'after handshake_timeout, a held GET a 504 after ping_interval + ping_timeout + 5 s',
       async (t) => {
  const tcp = await up.stallingServer();
  const polling = await up.stallingPollingServer();
  const f = await startFaultBridge([
    {path: '/tcp/', downstream: 'socketio', cluster: 'tcp', protocol: 'socketio',
     endpoints: [tcp.port]},
    {path: '/socket.io/', downstream: 'socketio', cluster: 'held', protocol: 'socketio',
     endpoints: [polling.port], extra: 'ping_interval = "200ms"\nping_timeout = "200ms"'},
  ]);
  const raw = async (path, request, timerMs) => {
    const c = await h.rawConnect(f.port);
    const started = Date.now();
    const res = await c.request(request.replace('PATH', path), timerMs * GENEROUS);
    return {res, ms: Date.now() - started};
  };
  const get = (path) => `GET PATH HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.replace('PATH', path);

  let {res, ms} = await raw('/tcp/?EIO=4&transport=polling', get('PATH'), HANDSHAKE_MS);
  assert504(res, 'tcp', 'handshake GET');
  assertWaited(ms, HANDSHAKE_MS, 'handshake GET');
  t.log(`handshake GET: 504 after ${ms} ms`);

  const session = new sio.PollingSession('/socket.io/');
  await session.handshake(f.port);  // answered by the server, which then holds everything
  assert.match(session.sid, sio.SIGNED_SID);
  const post = '40';
  ({res, ms} = await raw(session.url(), `POST PATH HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
                         `Content-Type: text/plain;charset=UTF-8\r\n` +
                         `Content-Length: ${post.length}\r\n\r\n${post}`, HANDSHAKE_MS));
  assert504(res, 'held', 'POST');
  assertWaited(ms, HANDSHAKE_MS, 'POST');
  t.log(`POST: 504 after ${ms} ms`);

  const heldMs = 200 + 200 + 5000;
  ({res, ms} = await raw(session.url(), get('PATH'), heldMs));
  assert504(res, 'held', 'held GET');
  assertWaited(ms, heldMs, 'held GET');
  t.log(`held GET: 504 after ${ms} ms`);
  assert.deepEqual(polling.requests, ['GET handshake', 'POST sid', 'GET sid']);
  await logLine(f.bridge, new RegExp(`cluster 'held': endpoint 127\\.0\\.0\\.1:${polling.port}: ` +
                                     'handshake timeout'));
  t.log(JSON.stringify(await f.noLeak('after the polling stalls')));
}, {timeout: 60000});

h.test('translate down: a namespace whose upstream never answers the upgrade gets CONNECT_ERROR ' +
       '"upstream unavailable" after handshake_timeout; the session lives on', async (t) => {
  const stall = await up.stallingServer();
  const f = await startFaultBridge([
    {path: '/socket.io/', downstream: 'socketio', cluster: 'legacy', protocol: 'websocket',
     endpoints: [stall.port]},
  ]);
  const session = new sio.PollingSession('/socket.io/');
  await session.handshake(f.port);
  const posted = await session.post(f.port, '40');
  assert.equal(posted.body, 'ok');
  const started = Date.now();
  const res = await session.get(f.port, HANDSHAKE_MS * GENEROUS);
  const ms = Date.now() - started;
  assert.equal(res.status, 200);
  assert.equal(res.body, '44{"message":"upstream unavailable"}');
  assertWaited(ms, HANDSHAKE_MS, 'CONNECT_ERROR');
  await logLine(f.bridge, new RegExp(`translate down: namespace /: upstream 127\\.0\\.0\\.1:` +
                                     `${stall.port}: handshake timeout`));
  // The Engine.IO session outlives the refused namespace: a ping is still answered.
  assert.equal((await session.post(f.port, '3')).body, 'ok');
  assert.equal((await session.post(f.port, '1')).body, 'ok');  // the client closes it
  t.log(`CONNECT_ERROR after ${ms} ms; ${JSON.stringify(await f.noLeak('after the namespace ' +
                                                                         'stall'))}`);
});

h.test('Engine.IO v3 polling (allow_eio3): no answer to the upgrade, or an upgrade and no OPEN: ' +
       '504 after handshake_timeout, the endpoint only in the log', async (t) => {
  const tcp = await up.stallingServer();
  const noOpen = await up.rawWsServer((socket) => socket.resume());
  const f = await startFaultBridge([
    {path: '/tcp/', downstream: 'socketio', cluster: 'tcp', protocol: 'socketio',
     endpoints: [tcp.port], extra: 'allow_eio3 = true'},
    {path: '/open/', downstream: 'socketio', cluster: 'open', protocol: 'socketio',
     endpoints: [noOpen.port], extra: 'allow_eio3 = true'},
  ]);
  for (const [cluster, port, why] of [['tcp', tcp.port, 'handshake timeout'],
                                      ['open', noOpen.port, 'no OPEN packet in time']]) {
    const c = await h.rawConnect(f.port);
    const started = Date.now();
    const res = await c.request(`GET /${cluster}/?EIO=3&transport=polling HTTP/1.1\r\n` +
                                'Host: 127.0.0.1\r\n\r\n', HANDSHAKE_MS * GENEROUS);
    const ms = Date.now() - started;
    assert504(res, cluster, cluster);
    assertWaited(ms, HANDSHAKE_MS, cluster);
    await logLine(f.bridge, new RegExp(`Engine\\.IO v3 pass-through: cluster '${cluster}': ` +
                                       `(endpoint )?127\\.0\\.0\\.1:${port}: ${why}`));
    t.log(`${cluster}: 504 after ${ms} ms`);
  }
  t.log(JSON.stringify(await f.noLeak('after the v3 stalls')));
});

h.run();
