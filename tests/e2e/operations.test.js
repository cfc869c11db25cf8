// Operations end to end: reloads (SIGHUP and POST /reload, valid and invalid) under 200 live
// connections carrying traffic, a drain of raw WebSocket and Socket.IO clients, POST /drain and
// GET /connections, and /metrics checked against the counts the test produced.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const {io} = require('socket.io-client');
const {request, until, parseMetrics} = require('./lib/admin');
const h = require('./lib/harness');

const {assert} = h;
const JWT_SECRET = 'operations-secret';

function jwt(payload) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64(payload)}`;
  return `${body}.${crypto.createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

// `extraRoute`: a route /v<generation> added by each valid reload; `extraListener`: a second
// listener port present in some generations.
function config({port, adminPort, echo, sio, generation = 0, extraListener = null}) {
  return `[runtime]
workers = 2
log_level = "info"
drain_timeout = "5s"

[admin]
address = "127.0.0.1:${adminPort}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"
${extraListener ? `
[[listener]]
name = "extra"
address = "127.0.0.1:${extraListener}"

[[route]]
listener = "extra"
path = "/chat"
cluster = "echo"
` : ''}
[[route]]
listener = "public"
path = "/chat"
cluster = "echo"

[[route]]
listener = "public"
path = "/v${generation}"
cluster = "echo"

[[route]]
listener = "public"
path = "/me"
cluster = "echo"
filters = ["jwt"]
${sio ? `
[[route]]
listener = "public"
path = "/socket.io/"
downstream = "socketio"
cluster = "sio"
sid_key = "operations-sid-key"

[[route]]
listener = "public"
path = "/up"
cluster = "sio"

[[route]]
listener = "public"
path = "/td/"
downstream = "socketio"
cluster = "echo"
sid_key = "operations-sid-key"

[[route]]
listener = "public"
path = "/tdauth/"
downstream = "socketio"
cluster = "echo"
filters = ["jwt"]

[cluster.sio]
protocol = "socketio"
endpoints = ["127.0.0.1:${sio}"]
` : ''}
[cluster.echo]
protocol = "websocket"
endpoints = ["127.0.0.1:${echo}"]

[filter.jwt]
type = "auth.jwt"
secret = "${JWT_SECRET}"
algorithms = ["HS256"]
token_from = ["query:token"]
`;
}

// Starts wsbridge and waits for its listener and its admin listener.
function start(options) {
  return h.startWsbridge(config(options), {waitFor: [{host: '127.0.0.1', port: options.port},
                                                     {host: '127.0.0.1', port: options.adminPort}]});
}

async function echoOnce(url, text) {
  const ws = await h.wsConnect(url);
  const q = h.messageQueue(ws);
  ws.send(text);
  h.assertEqual((await q.next()).data.toString(), text);
  ws.close(1000);
  await h.once(ws, 'close');
}

function tcpRefused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

h.test('10 reloads under 200 busy connections drop nothing and apply each valid config',
       async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const extraPort = await h.freePort();
  const base = {port, adminPort, echo: echo.port};
  const bridge = await start(base);

  // 200 clients, each echoing one message after another until told to stop.
  let running = true;
  const clients = [];
  for (let i = 0; i < 200; i++) {
    const ws = await h.wsConnect(`ws://127.0.0.1:${port}/chat`);
    const c = {ws, q: h.messageQueue(ws), sent: 0, received: 0, up: 0, down: 0, closed: null};
    ws.on('close', (code) => (c.closed = c.closed ?? code));
    clients.push(c);
  }
  const loops = clients.map(async (c, i) => {
    try {
      while (running) {
        const text = `client ${i} message ${c.sent} ` + 'x'.repeat(c.sent % 50);
        c.ws.send(text);
        c.sent++;
        c.up += Buffer.byteLength(text);
        const echoed = await c.q.next();
        h.assertEqual(echoed.data.toString(), text);
        c.received++;
        c.down += echoed.data.length;
      }
    } catch (err) {
      c.error = err;  // reported below, with the others
      running = false;
    }
  });
  const traffic = () => clients.reduce((n, c) => n + c.received, 0);

  let refused404 = 0;
  let generation = 0;
  for (let i = 0; i < 10; i++) {
    const valid = i % 2 === 0;
    const viaSignal = i % 4 < 2;
    const before = traffic();
    if (valid) {
      generation++;
      const extraListener = generation % 2 === 1 ? extraPort : null;
      fs.writeFileSync(bridge.configPath, config({...base, generation, extraListener}));
    } else {
      fs.writeFileSync(bridge.configPath,
                       config({...base, generation}) + '\n[[route]]\npath = "/broken"\ncluster = \n');
    }
    const refusedBefore = (bridge.logs().match(/reload refused/g) || []).length;
    if (viaSignal) {
      bridge.proc.kill('SIGHUP');
    } else {
      const r = await request(adminPort, 'POST', '/reload');
      if (valid) {
        h.assertEqual(r.status, 200, r.body);
        assert.deepEqual(JSON.parse(r.body), {reloaded: true});
      } else {
        h.assertEqual(r.status, 400, r.body);
        const body = JSON.parse(r.body);
        h.assertEqual(body.reloaded, false);
        assert.ok(body.errors.length >= 1);
        for (const e of body.errors) assert.match(e, /wsbridge\.toml:\d+:\d+: /);
      }
    }
    if (valid) {
      // The new route answers (after a SIGHUP the workers take the snapshot a moment later).
      await until(async () => {
        try {
          await echoOnce(`ws://127.0.0.1:${port}/v${generation}`, `hello v${generation}`);
          return true;
        } catch (err) {
          if (err.status !== 404) throw err;
          refused404++;
          return false;
        }
      }, `route /v${generation}`);
      const old = await h.rawConnect(port);
      h.assertEqual((await old.handshake(`/v${generation - 1}`)).status, 404);
      refused404++;
      // The extra listener comes and goes with the generations.
      if (generation % 2 === 1) {
        await until(async () => !(await tcpRefused(extraPort)), 'extra listener open');
        await echoOnce(`ws://127.0.0.1:${extraPort}/chat`, 'via extra');
      } else {
        await until(() => tcpRefused(extraPort), 'extra listener closed');
      }
    } else {
      await until(() => (bridge.logs().match(/reload refused/g) || []).length > refusedBefore,
                  'the refusal logged');
      // The running config stays: the current route still answers.
      await echoOnce(`ws://127.0.0.1:${port}/v${generation}`, 'still here');
    }
    // Traffic kept flowing across the reload.
    await until(() => !running || traffic() > before + 200, 'traffic after the reload');
  }

  running = false;
  await Promise.all(loops);
  for (const c of clients) assert.ifError(c.error);
  for (const c of clients) h.assertEqual(c.closed, null, 'a connection was dropped');
  for (const c of clients) h.assertEqual(c.received, c.sent);
  await Promise.all(clients.map((c) => {
    c.ws.close(1000);
    return h.once(c.ws, 'close');
  }));

  const sent = clients.reduce((n, c) => n + c.sent, 0);
  const up = clients.reduce((n, c) => n + c.up, 0);
  const down = clients.reduce((n, c) => n + c.down, 0);
  const m = parseMetrics((await until(async () => {
    const r = await request(adminPort, 'GET', '/metrics');
    return r.body.includes('wsbridge_connections_active{route="/chat"} 0') && r;
  }, 'every connection closed')).body);
  // 200 clients plus one per "via extra" echo (generations 1, 3 and 5).
  h.assertEqual(m['wsbridge_connections_accepted_total{route="/chat"}'], 203);
  h.assertEqual(m['wsbridge_connections_closed_total{route="/chat",code="1000"}'], 203);
  h.assertEqual(m['wsbridge_messages_total{route="/chat",direction="to_upstream"}'], sent + 3);
  h.assertEqual(m['wsbridge_messages_total{route="/chat",direction="to_client"}'], sent + 3);
  h.assertEqual(m['wsbridge_bytes_total{route="/chat",direction="to_upstream"}'],
                up + 3 * 'via extra'.length);
  h.assertEqual(m['wsbridge_bytes_total{route="/chat",direction="to_client"}'],
                down + 3 * 'via extra'.length);
  h.assertEqual(m['wsbridge_handshakes_refused_total{status="404"}'], refused404);
  h.assertEqual(m['wsbridge_cluster_connections_active{cluster="echo"}'], 0);
  assert.ok(m['wsbridge_relay_latency_seconds_count'] > 0);
}, {timeout: 120000});

h.test('translate-down messages and bytes, Socket.IO events over polling and translate down, ' +
       'and filter actions on translate down reach /metrics', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const sio = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  await start({port, adminPort, echo: echo.port, sio: sio.port});
  const client = (path) => io(`http://127.0.0.1:${port}`, {path, transports: ['polling'],
                                                            reconnection: false, forceNew: true});

  // Translated down over polling: the Engine.IO messages are the Socket.IO packets (without the
  // Engine.IO "4"): CONNECT and its reply, 3 "message" events each way (ws-echo sends each
  // envelope back), the client's DISCONNECT.
  const td = client('/td/');
  h.defer(() => td.close());
  await h.withTimeout(h.once(td, 'connect'), 5000, 'translate-down connect');
  const events = [0, 1, 2].map((i) => `2["message","m${i}"]`);
  for (let i = 0; i < 3; i++) {
    td.send(`m${i}`);
    h.assertDeepEqual(await h.withTimeout(h.once(td, 'message'), 5000, 'echo'), [`m${i}`]);
  }
  td.disconnect();

  // Pass-through over polling: 3 acked echoes (acks are not events), one echo the server emits back.
  const pt = client('/socket.io/');
  h.defer(() => pt.close());
  await h.withTimeout(h.once(pt, 'connect'), 5000, 'pass-through connect');
  for (let i = 0; i < 3; i++) {
    h.assertEqual(await h.withTimeout(pt.emitWithAck('echo', i), 5000, 'echo ack'), i);
  }
  const echoed = h.once(pt, 'echo');
  pt.emit('echo', 'back');
  h.assertDeepEqual(await h.withTimeout(echoed, 5000, 'echo event'), ['back']);
  pt.disconnect();

  // The route's auth.jwt refuses a handshake without a token.
  h.assertEqual((await request(port, 'GET', '/tdauth/?EIO=4&transport=polling')).status, 401);

  const m = parseMetrics((await until(async () => {
    const r = await request(adminPort, 'GET', '/metrics');
    return r.body.includes('wsbridge_connections_closed_total{route="/td/",code="1000"} 1') && r;
  }, 'the translate-down session closed')).body);
  const sum = (packets) => packets.reduce((n, p) => n + Buffer.byteLength(p), 0);
  const connectReply = 1 + '{"sid":""}'.length + 20;  // a 20-character sid
  h.assertEqual(m['wsbridge_connections_accepted_total{route="/td/"}'], 1);
  h.assertEqual(m['wsbridge_messages_total{route="/td/",direction="to_upstream"}'], 5);
  h.assertEqual(m['wsbridge_messages_total{route="/td/",direction="to_client"}'], 4);
  h.assertEqual(m['wsbridge_bytes_total{route="/td/",direction="to_upstream"}'],
                sum(['0', ...events, '1']));
  h.assertEqual(m['wsbridge_bytes_total{route="/td/",direction="to_client"}'],
                connectReply + sum(events));
  h.assertEqual(m['wsbridge_socketio_events_total{route="/td/",event="message"}'], 6);
  h.assertEqual(m['wsbridge_socketio_events_total{route="/socket.io/",event="echo"}'], 5);
  h.assertEqual(m['wsbridge_filter_actions_total{filter="auth.jwt",action="reject_401"}'], 1);
  h.assertEqual(m['wsbridge_cluster_connections_active{cluster="echo"}'], 0);
}, {timeout: 60000});

h.test('drain: 50 raw and 55 Socket.IO clients hear 1001 or DISCONNECT before exit 0',
       async () => {
  const echo = await h.startPeer('ws-echo.js');
  const sio = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await start({port, adminPort, echo: echo.port, sio: sio.port});

  // Raw clients answer the close only after noting it: the exit cannot come before.
  const heard = [];
  for (let i = 0; i < 50; i++) {
    const raw = await h.rawConnect(port);
    h.assertEqual((await raw.handshake('/chat')).status, 101);
    raw.sendText(`hi ${i}`);
    h.assertEqual((await raw.readMessage()).payload.toString(), `hi ${i}`);
    raw.readClose(15000).then((close) => {
      heard.push({kind: 'ws', code: close.code});
      raw.sendClose(close.code);
    }, () => {});
  }
  // 40 through the pass-through route to a Socket.IO server, 10 translated down to ws-echo.
  for (let i = 0; i < 50; i++) {
    const translated = i >= 40;
    const socket = io(`http://127.0.0.1:${port}`, {transports: ['websocket'], reconnection: false,
                                                    forceNew: true,
                                                    path: translated ? '/td/' : '/socket.io/'});
    h.defer(() => socket.close());
    await h.withTimeout(h.once(socket, 'connect'), 5000, `socket ${i} connect`);
    if (translated) {
      socket.send(`hi ${i}`);  // ws-echo sends it back as a "message" event
      h.assertDeepEqual(await h.withTimeout(h.once(socket, 'message'), 5000, 'echo'), [`hi ${i}`]);
    } else {
      h.assertEqual(await h.withTimeout(socket.emitWithAck('echo', i), 5000, 'echo ack'), i);
    }
    socket.on('disconnect', (reason) => heard.push({kind: 'sio', reason}));
  }
  // 5 on pass-through long-polling: their held GET is answered with DISCONNECT and close.
  for (let i = 0; i < 5; i++) {
    const socket = io(`http://127.0.0.1:${port}`, {transports: ['polling'], reconnection: false,
                                                    forceNew: true});
    h.defer(() => socket.close());
    await h.withTimeout(h.once(socket, 'connect'), 5000, `polling socket ${i} connect`);
    h.assertEqual(await h.withTimeout(socket.emitWithAck('echo', i), 5000, 'echo ack'), i);
    socket.on('disconnect', (reason) => heard.push({kind: 'sio', reason}));
  }
  const stats = JSON.parse((await request(adminPort, 'GET', '/stats')).body);
  h.assertEqual(stats.connections.active, 100);
  h.assertEqual(stats.routes['/td/'].active, 10);
  h.assertEqual(stats.routes['/socket.io/'].active, 40);
  h.assertEqual(stats.clusters.echo.active, 60);
  const exitedAt = bridge.exited.then(() => heard.length);
  const r = await bridge.stop({signal: 'SIGTERM', timeout: 10000});
  h.assertDeepEqual({code: r.code, signal: r.signal}, {code: 0, signal: null});
  h.assertEqual(await exitedAt, 105, `every client heard the drain before the exit: ${JSON.stringify(heard)}`);
  h.assertDeepEqual(heard.filter((e) => e.kind === 'ws').map((e) => e.code),
                    Array(50).fill(1001));
  h.assertDeepEqual(heard.filter((e) => e.kind === 'sio').map((e) => e.reason),
                    Array(55).fill('io server disconnect'));
}, {timeout: 60000});

h.test('GET /connections lists live connections; POST /drain drains like SIGTERM', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const sio = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await start({port, adminPort, echo: echo.port, sio: sio.port});

  // Translated up to the Socket.IO server: one event each way.
  const up = await h.wsConnect(`ws://127.0.0.1:${port}/up`);
  const uq = h.messageQueue(up);
  const envelope = '{"event":"echo","data":"up"}';
  up.send(envelope);
  h.assertEqual((await uq.next()).data.toString(), envelope);

  const alice = await h.wsConnect(`ws://127.0.0.1:${port}/me?token=${jwt({sub: 'alice'})}`);
  const aq = h.messageQueue(alice);
  for (let i = 0; i < 3; i++) {
    alice.send(`m${i}`);
    await aq.next();
  }
  const anon = [];
  for (let i = 0; i < 4; i++) anon.push(await h.wsConnect(`ws://127.0.0.1:${port}/chat`));
  const noToken = await h.rawConnect(port);
  h.assertEqual((await noToken.handshake('/me')).status, 401);
  // Translated down (wsbridge is the Socket.IO server): CONNECT and one event each way.
  const td = io(`http://127.0.0.1:${port}`, {path: '/td/', transports: ['websocket'],
                                             reconnection: false, forceNew: true});
  h.defer(() => td.close());
  await h.withTimeout(h.once(td, 'connect'), 5000, 'translate-down connect');
  td.send('hi');
  h.assertDeepEqual(await h.withTimeout(h.once(td, 'message'), 5000, 'echo'), ['hi']);

  const all = JSON.parse((await request(adminPort, 'GET', '/connections')).body);
  h.assertEqual(all.total, 7);
  h.assertEqual(all.connections.length, 7);
  const translated = all.connections.find((c) => c.route === '/up');
  h.assertEqual(translated.cluster, 'sio');
  assert.deepEqual(translated.messages, {to_upstream: 1, to_client: 1});
  assert.deepEqual(translated.bytes, {to_upstream: envelope.length, to_client: envelope.length});
  const me = all.connections.find((c) => c.route === '/me');
  h.assertEqual(me.user, 'alice');
  h.assertEqual(me.cluster, 'echo');
  assert.match(me.client, /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(me.messages, {to_upstream: 3, to_client: 3});
  assert.deepEqual(me.bytes, {to_upstream: 6, to_client: 6});
  const down = all.connections.find((c) => c.route === '/td/');
  h.assertEqual(down.cluster, 'echo');
  assert.match(down.client, /^127\.0\.0\.1/);
  assert.deepEqual(down.messages, {to_upstream: 2, to_client: 2});
  assert.deepEqual(all.connections.map((c) => c.route), ['/up', '/me', '/chat', '/chat', '/chat',
                                                         '/chat', '/td/'], 'oldest first');
  for (const c of all.connections.filter((c) => c !== me)) h.assertEqual(c.user, null);
  const limited = JSON.parse((await request(adminPort, 'GET', '/connections?limit=2')).body);
  h.assertEqual(limited.total, 7);
  h.assertEqual(limited.connections.length, 2);

  const stats = JSON.parse((await request(adminPort, 'GET', '/stats')).body);
  assert.deepEqual(stats.routes['/me'].messages, {to_upstream: 3, to_client: 3});
  assert.deepEqual(stats.filter_actions, {'auth.jwt': {reject_401: 1}});

  h.assertEqual((await request(adminPort, 'GET', '/drain')).status, 405);
  h.assertEqual((await request(adminPort, 'POST', '/stats')).status, 405);
  // A client that answers the close only when told keeps the drain (and /ready) going.
  const slow = await h.rawConnect(port);
  h.assertEqual((await slow.handshake('/chat')).status, 101);
  const codes = Promise.all([up, alice, ...anon].map((ws) => h.once(ws, 'close').then(([c]) => c)));
  const tdGone = h.once(td, 'disconnect');
  const drained = await request(adminPort, 'POST', '/drain');
  h.assertEqual(drained.status, 200);
  assert.deepEqual(JSON.parse(drained.body), {draining: true});
  h.assertEqual((await request(adminPort, 'GET', '/ready')).status, 503);
  h.assertDeepEqual(await codes, Array(6).fill(1001));
  h.assertEqual((await h.withTimeout(tdGone, 5000, 'translate-down drain'))[0],
                'io server disconnect');
  h.assertEqual((await slow.readClose()).code, 1001);
  slow.sendClose(1001);
  const r = await h.withTimeout(bridge.exited, 10000, 'exit after POST /drain');
  h.assertDeepEqual({code: r.code, signal: r.signal}, {code: 0, signal: null});
  bridge.stop = () => bridge.exited;  // it exited by itself, as it should
}, {timeout: 60000});
