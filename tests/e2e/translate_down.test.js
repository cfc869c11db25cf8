// Translate down end to end: real socket.io-client 4.8 (polling + upgrade, websocket only,
// polling only) through wsbridge to a legacy raw-`ws` chat server (peers/legacy-ws-server.js):
// events and acks both ways, binary, two namespaces on two upstream sockets, disconnects both
// ways, and Engine.IO conformance checked with raw HTTP.
'use strict';

const http = require('node:http');
const h = require('./lib/harness');
const sio = require('./lib/sio');
const {io} = require('socket.io-client');

const {assert} = h;

function downConfig({port, endpoints, route = '', cluster = '', workers = 1}) {
  return `[runtime]
workers = ${workers}
log_level = "debug"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/"
downstream = "socketio"
cluster = "legacy"
binary_event = "audio"
cors_origins = ["http://app.example"]
${route}
[cluster.legacy]
protocol = "websocket"
endpoints = [${endpoints.map((e) => `"127.0.0.1:${e}"`).join(', ')}]
connect_timeout = "1s"
${cluster}`;
}

async function startDown(opts = {}) {
  const legacy = await h.startPeer('legacy-ws-server.js');
  const port = await h.freePort();
  const bridge = await h.startWsbridge(downConfig({port, endpoints: [legacy.port], ...opts}));
  return {legacy, port, bridge, url: `http://127.0.0.1:${port}`};
}

const TRANSPORTS = {
  'default (polling then upgrade)': {},
  'websocket only': {transports: ['websocket']},
  'polling only': {transports: ['polling']},
};

// One raw HTTP request; resolves {status, headers, body}.
function request(port, method, path, {body, headers = {}, agent} = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({host: '127.0.0.1', port, method, path, headers, agent}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers,
                                   body: Buffer.concat(chunks).toString('utf8')}));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function handshake(port, agent) {
  const res = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling', {agent});
  assert.equal(res.status, 200);
  assert.equal(res.body[0], '0');
  return JSON.parse(res.body.slice(1));
}

// ---------------------------------------------------------------------------------------------

for (const [label, opts] of Object.entries(TRANSPORTS)) {
  h.test(`${label}: events and acks both ways, text ping/pong, binary`, async () => {
    const {legacy, url} = await startDown();
    const socket = await sio.connect(url, opts);
    const events = sio.eventQueue(socket);
    const conn = await legacy.waitFor((o) => o.event === 'connection');
    assert.equal(conn.path, '/');
    if (!opts.transports) {  // the default client upgrades polling -> websocket
      const engine = socket.io.engine;
      if (engine.transport.name !== 'websocket') await h.once(engine, 'upgrade', 5000);
      assert.equal(engine.transport.name, 'websocket');
    }

    // client event -> envelope upstream -> broadcast back as an event
    socket.emit('chat', {text: 'hi'});
    const sent = (text) => legacy.waitFor((o) => o.event === 'text' && o.text === text);
    await sent('{"event":"chat","data":{"text":"hi"}}');
    h.assertDeepEqual(await events.next('chat'), [{text: 'hi'}]);

    // client ack -> envelope "ack" -> upstream {"ack":N,...} -> Socket.IO ACK
    const answer = await socket.timeout(5000).emitWithAck('move', 1, 2);
    h.assertDeepEqual(answer, {ok: true, got: [1, 2]});
    h.assertDeepEqual(await events.next('move'), [1, 2]);

    // the route's text_event ("message") both ways
    socket.emit('message', 'ping');
    await sent('{"event":"message","data":"ping"}');
    h.assertDeepEqual(await events.next('message'), ['ping']);
    // a non-JSON text message from upstream arrives as the text_event
    socket.emit('__cmd', {op: 'send', text: 'pong'});
    h.assertDeepEqual(await events.next('message'), ['pong']);
    // JSON that is no envelope also arrives whole as the text_event
    socket.emit('__cmd', {op: 'send', text: '{"type":"legacy"}'});
    h.assertDeepEqual(await events.next('message'), ['{"type":"legacy"}']);

    // upstream asks for an ack: the client's answer goes back as {"ack":N,"data":...}
    socket.on('question', (q, cb) => cb({answer: q * 2}));
    socket.emit('__cmd', {op: 'send', text: '{"event":"question","data":21,"ack":7}'});
    await sent('{"ack":7,"data":{"answer":42}}');

    // binary: client BINARY_EVENT "audio" -> a binary frame; binary frame -> "audio" event
    socket.emit('audio', Buffer.from([1, 2, 3, 4]));
    await legacy.waitFor((o) => o.event === 'binary' && o.base64 === 'AQIDBA==');
    const [audio] = await events.next('audio');
    assert.ok(Buffer.isBuffer(audio), 'audio arrives as a Buffer');
    h.assertBytesEqual(audio, Buffer.from([1, 2, 3, 4]));

    // other binary args travel inline as {"_base64":...}
    socket.emit('file', {name: 'a', body: Buffer.from('xyz')});
    await sent('{"event":"file","data":{"name":"a","body":{"_base64":"eHl6"}}}');
    const [file] = await events.next('file');
    assert.equal(file.name, 'a');
    h.assertBytesEqual(file.body, Buffer.from('xyz'));
  }, {timeout: 30000});

  h.test(`${label}: client disconnect closes the upstream with 1000`, async () => {
    const {legacy, url} = await startDown();
    const socket = await sio.connect(url, opts);
    await legacy.waitFor((o) => o.event === 'connection');
    socket.disconnect();
    const close = await legacy.waitFor((o) => o.event === 'close');
    assert.equal(close.code, 1000);
  }, {timeout: 30000});

  h.test(`${label}: upstream close -> "io server disconnect" for that namespace`, async () => {
    const {url} = await startDown();
    const socket = await sio.connect(url, opts);
    const reason = new Promise((resolve) => socket.on('disconnect', resolve));
    socket.emit('__cmd', {op: 'close', code: 4000, reason: 'bye'});
    assert.equal(await h.withTimeout(reason, 10000, 'disconnect'), 'io server disconnect');
  }, {timeout: 30000});
}

h.test('two namespaces open two upstream sockets; leaving one keeps the other', async () => {
  const {legacy, url} = await startDown({route: 'namespace_paths = { "/admin" = "/admin-room" }'});
  const m = sio.manager(url, {transports: ['websocket']});
  const main = m.socket('/', {auth: {token: 'abc'}});
  const admin = m.socket('/admin');
  await sio.waitConnected(main);
  await sio.waitConnected(admin);
  const mainEvents = sio.eventQueue(main);
  const adminEvents = sio.eventQueue(admin);
  const conns = [await legacy.waitFor((o) => o.event === 'connection' && o.path === '/'),
                 await legacy.waitFor((o) => o.event === 'connection' && o.path === '/admin-room')];
  assert.equal(conns[0].query, 'token=abc');
  admin.emit('chat', 'to admin');
  h.assertDeepEqual(await adminEvents.next('chat'), ['to admin']);
  main.emit('chat', 'to main');
  h.assertDeepEqual(await mainEvents.next('chat'), ['to main']);
  admin.disconnect();
  const close = await legacy.waitFor((o) => o.event === 'close' && o.id === conns[1].id);
  assert.equal(close.code, 1000);
  main.emit('chat', 'still here');
  h.assertDeepEqual(await mainEvents.next('chat'), ['still here']);
}, {timeout: 30000});

h.test('refused upstream connect -> CONNECT_ERROR for that namespace', async () => {
  const port = await h.freePort();
  const dead = await h.freePort();
  await h.startWsbridge(downConfig({port, endpoints: [dead]}));
  const socket = io(`http://127.0.0.1:${port}`, {forceNew: true, reconnection: false,
                                                    transports: ['websocket']});
  h.defer(() => socket.close());
  const [err] = await h.once(socket, 'connect_error', 10000).catch((e) => [e]);
  assert.match(err.message, /upstream unavailable/);
}, {timeout: 30000});

// ---- conformance by raw HTTP ----------------------------------------------------------------

h.test('handshake: exact keys, upgrades, timings, content type', async () => {
  const {port} = await startDown({
    route: 'ping_interval = "300ms"\nping_timeout = "200ms"\nmax_payload = 5000',
  });
  const res = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling');
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/plain; charset=UTF-8');
  const open = JSON.parse(res.body.slice(1));
  h.assertDeepEqual(Object.keys(open),
                    ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
  assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
  h.assertDeepEqual(open.upgrades, ['websocket']);
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.equal(open.maxPayload, 5000);
}, {timeout: 20000});

h.test('errors: 400 with codes 0, 1, 2, 3, 5', async () => {
  const {port} = await startDown();
  const cases = [
    ['GET', '/socket.io/?EIO=4', 0, 'Transport unknown'],
    ['GET', '/socket.io/?EIO=4&transport=abc', 0, 'Transport unknown'],
    ['GET', '/socket.io/?EIO=4&transport=polling&sid=nope', 1, 'Session ID unknown'],
    ['POST', '/socket.io/?EIO=4&transport=polling', 2, 'Bad handshake method'],
    ['GET', '/socket.io/?EIO=4&transport=websocket', 3, 'Bad request'],
    ['GET', '/socket.io/?transport=polling', 5, 'Unsupported protocol version'],
    ['GET', '/socket.io/?EIO=abc&transport=polling', 5, 'Unsupported protocol version'],
    ['GET', '/socket.io/?EIO=3&transport=polling', 5, 'Unsupported protocol version'],
  ];
  for (const [method, path, code, message] of cases) {
    const res = await request(port, method, path, {body: method === 'POST' ? '' : undefined});
    assert.equal(res.status, 400, `${method} ${path}`);
    assert.equal(res.headers['content-type'], 'application/json');
    h.assertDeepEqual(JSON.parse(res.body), {code, message});
  }
}, {timeout: 20000});

h.test('polling: ping/pong, CONNECT, message, close; keep-alive connection reused', async () => {
  const {port, legacy} = await startDown({route: 'ping_interval = "300ms"\nping_timeout = "2s"'});
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  h.defer(() => agent.destroy());
  const {sid} = await handshake(port, agent);
  const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  // the server pings first
  let res = await request(port, 'GET', q, {agent});
  assert.equal(res.body, '2');
  res = await request(port, 'POST', q, {body: '3\x1e40', agent});
  assert.equal(res.status, 200);
  assert.equal(res.body, 'ok');
  res = await request(port, 'GET', q, {agent});
  assert.match(res.body, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
  await legacy.waitFor((o) => o.event === 'connection');
  res = await request(port, 'POST', q, {body: '42["chat","x"]', agent});
  assert.equal(res.body, 'ok');
  res = await request(port, 'GET', q, {agent});
  assert.equal(res.body, '42["chat","x"]');
  // a client-sent ping closes the session (v4: only the server pings)
  res = await request(port, 'POST', q, {body: '2', agent});
  assert.equal(res.body, 'ok');
  res = await request(port, 'GET', q, {agent});
  assert.equal(res.status, 400);
  h.assertDeepEqual(JSON.parse(res.body), {code: 1, message: 'Session ID unknown'});
  const close = await legacy.waitFor((o) => o.event === 'close');
  assert.equal(close.code, 1000);
}, {timeout: 20000});

h.test('polling: CORS headers for allowed origins and preflight', async () => {
  const {port} = await startDown();
  let res = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling',
                          {headers: {origin: 'http://app.example'}});
  assert.equal(res.headers['access-control-allow-origin'], 'http://app.example');
  assert.equal(res.headers['access-control-allow-credentials'], 'true');
  res = await request(port, 'GET', '/socket.io/?EIO=4&transport=polling',
                      {headers: {origin: 'http://evil.example'}});
  assert.equal(res.headers['access-control-allow-origin'], undefined);
  res = await request(port, 'OPTIONS', '/socket.io/?EIO=4&transport=polling',
                      {headers: {origin: 'http://app.example',
                                 'access-control-request-headers': 'content-type'}});
  assert.equal(res.status, 204);
  assert.equal(res.headers['access-control-allow-methods'], 'GET, POST');
}, {timeout: 20000});

h.test('upgrade by hand: probe, noop to the held GET, 5; polling refused after', async () => {
  const {port} = await startDown();
  const {sid} = await handshake(port);
  const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  await request(port, 'POST', q, {body: '40'});
  let res = await request(port, 'GET', q);
  assert.match(res.body, /^40\{"sid":/);
  const held = request(port, 'GET', q);  // held until something happens
  const ws = await h.wsConnect(
      `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  const mq = h.messageQueue(ws);
  ws.send('2probe');
  assert.equal((await mq.next()).data.toString(), '3probe');
  res = await held;
  assert.equal(res.body, '6');
  ws.send('5');
  ws.send('42["chat","over ws"]');
  assert.equal((await mq.next()).data.toString(), '42["chat","over ws"]');
  res = await request(port, 'GET', q);
  assert.equal(res.status, 400);
  h.assertDeepEqual(JSON.parse(res.body), {code: 3, message: 'Bad request'});
}, {timeout: 20000});

h.test('websocket with an unknown sid: raw 400 "Session ID unknown"', async () => {
  const {port} = await startDown();
  const raw = await h.rawConnect(port);
  const res = await raw.handshake('/socket.io/?EIO=4&transport=websocket&sid=nope');
  assert.equal(res.status, 400);
  assert.equal(res.body.toString(), 'Session ID unknown');
}, {timeout: 20000});

h.test('ping timeout closes the session and its upstream', async () => {
  const {port, legacy} =
      await startDown({route: 'ping_interval = "200ms"\nping_timeout = "200ms"'});
  const {sid} = await handshake(port);
  const q = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
  await request(port, 'POST', q, {body: '40'});
  await legacy.waitFor((o) => o.event === 'connection');
  const close = await legacy.waitFor((o) => o.event === 'close', 5000);
  assert.equal(close.code, 1000);
  const res = await request(port, 'GET', q);
  h.assertDeepEqual(JSON.parse(res.body), {code: 1, message: 'Session ID unknown'});
}, {timeout: 20000});

h.test('two workers: polling requests of one session served whichever worker accepts', async () => {
  const {port, legacy, bridge} = await startDown({workers: 2});
  // One TCP connection per request (agent: false): SO_REUSEPORT spreads them over both workers.
  const opts = {agent: false};
  const open = JSON.parse((await request(port, 'GET', '/socket.io/?EIO=4&transport=polling',
                                         opts)).body.slice(1));
  const q = `/socket.io/?EIO=4&transport=polling&sid=${open.sid}`;
  assert.equal((await request(port, 'POST', q, {...opts, body: '40'})).body, 'ok');
  assert.match((await request(port, 'GET', q, opts)).body, /^40\{"sid":/);
  await legacy.waitFor((o) => o.event === 'connection');
  for (let i = 0; i < 20; i++) {
    assert.equal((await request(port, 'POST', q, {...opts, body: `42["chat",${i}]`})).body, 'ok');
    assert.equal((await request(port, 'GET', q, opts)).body, `42["chat",${i}]`);
  }
  assert.match(bridge.logs(), /handed to the worker owning the session/);
}, {timeout: 30000});


// ---------------------------------------------------------------------------------------------
// socket.io-client 2.x (Engine.IO v3, Socket.IO v4) with allow_eio3

const ioV2 = require('socket.io-client-v2');

function connectV2(url, opts = {}) {
  const socket = ioV2(url, {forceNew: true, reconnection: false, ...opts});
  h.defer(() => socket.close());
  return h.withTimeout(new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
    socket.once('error', (e) => reject(new Error(`error event: ${JSON.stringify(e)}`)));
  }), 10000, `2.x connect ${url}`);
}

function nextV2(socket, name, ms = 10000) {
  return h.withTimeout(new Promise((resolve) => socket.once(name, (...args) => resolve(args))),
                       ms, `'${name}' on ${socket.nsp}`);
}

for (const [label, opts] of Object.entries(TRANSPORTS)) {
  h.test(`socket.io-client 2.x, ${label}: events, acks, binary, namespaces, heartbeat`,
         async () => {
    const {legacy, url} = await startDown({
      // Short interval (several ping cycles below), long timeout: a loaded machine may answer
      // a ping late, and this case is about the session staying up.
      route: 'allow_eio3 = true\nping_interval = "300ms"\nping_timeout = "5s"\n',
    });
    const socket = await connectV2(url, opts);
    const conn = await legacy.waitFor((o) => o.event === 'connection' && o.path === '/');
    assert.equal(conn.path, '/');
    const engine = socket.io.engine;
    if (!opts.transports) {
      if (engine.transport.name !== 'websocket') await h.once(engine, 'upgrade', 5000);
      assert.equal(engine.transport.name, 'websocket');
    } else {
      assert.equal(engine.transport.name, opts.transports[0]);
    }
    const sent = (text) => legacy.waitFor((o) => o.event === 'text' && o.text === text);

    socket.emit('chat', {text: 'hé'});
    await sent('{"event":"chat","data":{"text":"hé"}}');
    h.assertDeepEqual(await nextV2(socket, 'chat'), [{text: 'hé'}]);

    const answer = await h.withTimeout(
        new Promise((resolve) => socket.emit('move', 1, 2, resolve)), 5000, 'the ack');
    h.assertDeepEqual(answer, {ok: true, got: [1, 2]});

    socket.on('question', (q, cb) => cb({answer: q * 2}));
    socket.emit('__cmd', {op: 'send', text: '{"event":"question","data":21,"ack":7}'});
    await sent('{"ack":7,"data":{"answer":42}}');

    // Binary both ways: v3 frames and v3 polling payloads carry it differently from v4.
    socket.emit('audio', Buffer.from([1, 2, 3, 4]));
    await legacy.waitFor((o) => o.event === 'binary' && o.base64 === 'AQIDBA==');
    const [audio] = await nextV2(socket, 'audio');
    h.assertBytesEqual(Buffer.from(audio), Buffer.from([1, 2, 3, 4]), 'binary event');

    // A second namespace, with its auth in the v4 CONNECT query.
    const admin = await connectV2(`${url}/admin`, {...opts, query: {token: 'abc'}});
    const adminConn = await legacy.waitFor((o) => o.event === 'connection' && o.path === '/admin');
    assert.match(adminConn.query, /(^|&)token=abc(&|$)/);
    admin.emit('chat', 'to admin');
    h.assertDeepEqual(await nextV2(admin, 'chat'), ['to admin']);

    // The client pings (v3), wsbridge answers: several ping cycles pass with the session up.
    for (let i = 0; i < 3; i++) await nextV2(socket, 'pong', 10000);
    socket.emit('chat', 'still here');
    h.assertDeepEqual(await nextV2(socket, 'chat'), ['still here']);

    socket.close();
    const close = await legacy.waitFor((o) => o.event === 'close' && o.id === conn.id);
    assert.equal(close.code, 1000);
  }, {timeout: 30000});
}

h.test('Engine.IO v3 polling by hand: length-prefixed payloads, implicit 40, client pings; ' +
           'without allow_eio3 code 5', async () => {
  const {port} = await startDown({route: 'allow_eio3 = true\n'});
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  const open = await request(port, 'GET', '/socket.io/?EIO=3&transport=polling&b64=1', {agent});
  assert.equal(open.status, 200);
  const m = /^(\d+):0(\{.*\})$/.exec(open.body);
  assert.ok(m, `v3 handshake body: ${open.body}`);
  assert.equal(Number(m[1]), m[2].length + 1);
  const {sid} = JSON.parse(m[2]);
  const path = `/socket.io/?EIO=3&transport=polling&b64=1&sid=${sid}`;
  // The default namespace is connected without a CONNECT from the client.
  assert.equal((await request(port, 'GET', path, {agent})).body, '2:40');
  const post = await request(port, 'POST', path, {agent, body: '1:2',
                                                   headers: {'content-type': 'text/plain'}});
  assert.equal(post.body, 'ok');
  assert.equal((await request(port, 'GET', path, {agent})).body, '1:3');
  agent.destroy();

  const plain = await startDown();
  const refused = await request(plain.port, 'GET', '/socket.io/?EIO=3&transport=polling');
  assert.equal(refused.status, 400);
  h.assertDeepEqual(JSON.parse(refused.body), {code: 5, message: 'Unsupported protocol version'});
});

h.test('a heartbeat filter sets the Engine.IO heartbeat toward the client and never closes ' +
           'a client that answers it', async () => {
  const {legacy, port, url} = await startDown({
    route: 'filters = ["hb"]\n',
    // Short interval (six cycles below), long timeout: a loaded machine may answer late.
    cluster: '\n[filter.hb]\ntype = "heartbeat"\nping_interval = "150ms"\nping_timeout = "5s"\n',
  });
  const open = await handshake(port);
  assert.equal(open.pingInterval, 150);
  assert.equal(open.pingTimeout, 5000);
  const socket = await sio.connect(url, {transports: ['websocket']});
  const events = sio.eventQueue(socket);
  await legacy.waitFor((o) => o.event === 'connection');
  // Many filter ping cycles: the client has no WebSocket pong to give the filter, only
  // Engine.IO pongs, and must stay.
  for (let i = 0; i < 6; i++) await h.once(socket.io.engine, 'ping', 5000);
  socket.emit('chat', 'alive');
  h.assertDeepEqual(await events.next('chat'), ['alive']);
  assert.ok(socket.connected);
}, {timeout: 20000});

h.test('a websocket client that stops reading: the upstream is paused, wsbridge RSS stays ' +
           'bounded, and everything arrives once it reads again', async (t) => {
  const MiB = 1024 * 1024;
  const TOTAL = 100 * MiB;
  const RSS_LIMIT = 64 * MiB;
  const legacy = await h.startPeer('legacy-ws-server.js');
  const port = await h.freePort();
  const bridge = await h.startWsbridge(
      downConfig({port, endpoints: [legacy.port], route: 'ping_interval = "60s"\n'})
          .replace('log_level = "debug"', 'log_level = "info"'),
      {env: h.smallQuarantineEnv()});
  const c = await h.rawConnect(port);
  assert.equal((await c.handshake('/socket.io/?EIO=4&transport=websocket')).status, 101);
  assert.equal((await c.readFrame()).payload.toString()[0], '0');
  c.sendText('40');
  assert.match((await c.readFrame()).payload.toString(), /^40\{"sid":/);
  const conn = await legacy.waitFor((o) => o.event === 'connection');
  const rss = () => h.readRss(bridge.pid);
  let peak = rss();

  c.pause();
  c.sendText(`42["__cmd",{"op":"stream","bytes":${TOTAL},"chunk":65536}]`);
  let lastSent = -1;
  let flat = 0;
  const stalled = await legacy.waitFor((o) => {
    if (o.event !== 'progress' || o.id !== conn.id) return false;
    peak = Math.max(peak, rss());
    if (o.done) throw new Error('the upstream sent everything to a client that never read');
    flat = o.sent === lastSent && o.sent > 0 ? flat + 1 : 0;
    lastSent = o.sent;
    return flat >= 10;
  }, 60000, 'a stalled stream');
  t.log(`stalled after ${(stalled.sent / MiB).toFixed(1)} MiB; wsbridge RSS peak ` +
        `${(peak / MiB).toFixed(1)} MiB`);
  assert.ok(stalled.sent < TOTAL / 4, `upstream sent ${stalled.sent} bytes`);
  assert.ok(peak < RSS_LIMIT, `wsbridge RSS peak ${peak} >= ${RSS_LIMIT}`);

  c.resume();
  let received = 0;
  while (received < TOTAL) {
    const header = await c.readFrame(30000);
    assert.equal(header.payload.toString(), '451-["audio",{"_placeholder":true,"num":0}]');
    const chunk = await c.readFrame(30000);
    assert.equal(chunk.opcode, 2);
    received += chunk.payload.length;
  }
  assert.equal(received, TOTAL);
  await legacy.waitFor((o) => o.event === 'progress' && o.id === conn.id && o.done, 10000);
}, {timeout: 120000});

h.test('filters on translate down: a rate-limit notice arrives as a proper Socket.IO event',
       async () => {
  const {legacy, url} = await startDown({
    route: 'filters = ["limit"]\n',
    cluster: '\n[filter.limit]\ntype = "rate_limit"\nmessages_per_second = 1\nburst = 2\n',
  });
  const socket = await sio.connect(url, {transports: ['websocket']});
  const events = sio.eventQueue(socket);
  await legacy.waitFor((o) => o.event === 'connection');
  for (let i = 0; i < 3; i++) socket.emit('chat', i);
  h.assertDeepEqual(await events.next('rate-limit-exceeded'), [{message: 'too many messages'}]);
  h.assertDeepEqual(await events.next('chat'), [0]);
  h.assertDeepEqual(await events.next('chat'), [1]);
  // The backend's reports come on another pipe than the echoes: wait for the second.
  await legacy.waitFor((o) => o.event === 'text' && o.text === '{"event":"chat","data":1}');
  assert.deepEqual(legacy.lines.filter((o) => o.event === 'text').map((o) => o.text),
                   ['{"event":"chat","data":0}', '{"event":"chat","data":1}']);
  assert.ok(socket.connected);
}, {timeout: 20000});

h.run();
