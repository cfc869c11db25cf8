// Socket.IO pass-through end to end: socket.io-client 4.8 and hand-written Engine.IO clients
// through wsbridge to real socket.io 4.8 servers (peers/sio-server.js), over polling, websocket
// and the upgrade between them; sticky signed sids across endpoints and wsbridge instances;
// the Engine.IO error answers; the heartbeat.
'use strict';

const crypto = require('node:crypto');
const h = require('./lib/harness');
const sio = require('./lib/sio');

const {assert} = h;

function startServers(count, args = []) {
  return Promise.all(Array.from({length: count}, () => h.startPeer('sio-server.js', args)));
}

// wsbridge in front of `servers`; in direct mode (no proxy) the client talks to the first server
// itself, so cases that make sense without the proxy still check the test and the peer.
async function startPassthrough(servers, {proxyOnly, ...opts} = {}) {
  if (h.direct) {
    if (proxyOnly) throw new h.Skip(proxyOnly);
    return {port: servers[0].port, bridge: null};
  }
  const port = await h.freePort();
  const bridge = await h.startWsbridge(
      sio.sioConfig({port, endpoints: servers.map((s) => s.port), ...opts}));
  return {port, bridge};
}

// The sid the client got names the upstream session: signed through wsbridge, as is directly.
function assertClientSid(clientSid, upstreamSid) {
  if (h.direct) {
    assert.equal(clientSid, upstreamSid);
    return;
  }
  const m = sio.SIGNED_SID.exec(clientSid);
  assert.ok(m, `client sid ${clientSid} is not <upstream sid>.<signature>`);
  assert.equal(m[1], upstreamSid);
}

function engineErrors(server) {
  return server.lines.filter((o) => o.event === 'engine-error');
}

const BYTES_0_255 = Buffer.from(Array.from({length: 256}, (_, i) => i));

// Events, acks and binary both ways, two namespaces on one Engine.IO session, and a room
// broadcast across clients: everything one transport setting must carry.
async function exerciseClient(t, transports) {
  const [server] = await startServers(1);
  const {port} = await startPassthrough([server]);
  const url = `http://127.0.0.1:${port}`;
  const opts = transports ? {transports} : {};

  const m = sio.manager(url, opts);
  const root = m.socket('/');
  const admin = m.socket('/admin');
  const rootEvents = sio.eventQueue(root);
  const adminEvents = sio.eventQueue(admin);
  const disconnects = [];
  root.on('disconnect', (reason) => disconnects.push(`/: ${reason}`));
  admin.on('disconnect', (reason) => disconnects.push(`/admin: ${reason}`));
  await Promise.all([sio.waitConnected(root), sio.waitConnected(admin)]);

  if (!transports) {
    // Default: polling first, then the upgrade, which must complete through the proxy.
    if (m.engine.transport.name !== 'websocket') await h.once(m.engine, 'upgrade', 10000);
    assert.equal(m.engine.transport.name, 'websocket');
  } else {
    assert.equal(m.engine.transport.name, transports[0]);
  }
  const [who] = await sio.emitAck(root, 'whoami');
  assertClientSid(m.engine.id, who.engineSid);
  assert.equal(who.transport, transports ? transports[0] : 'websocket');
  if (!transports) {
    await server.waitFor((o) => o.event === 'engine-upgrade' && o.engineSid === who.engineSid,
                         5000, 'the upgrade report');
  }

  // Events both ways, with characters beyond ASCII.
  const text = {n: 1, s: 'é€中😀', nested: {list: [1, 'two', null, true]}};
  root.emit('echo', 'hello', text);
  assert.deepEqual(await rootEvents.next('echo'), ['hello', text]);
  const received = await server.waitFor(
      (o) => o.event === 'received' && o.name === 'echo' && !o.ack, 5000, 'the echo report');
  assert.deepEqual(received.args, ['hello', text]);

  // Acks client -> server -> client.
  assert.deepEqual(await sio.emitAck(root, 'echo', 1, 'two', [3]), [1, 'two', [3]]);

  // Acks server -> client -> server: the server asks, the client answers in the ack.
  root.on('question', (...args) => {
    const cb = args.pop();
    cb('answer', ...args);
  });
  root.emit('ask', 'q1', 42);
  const answer = await server.waitFor((o) => o.event === 'answer', 5000, 'the answer report');
  assert.deepEqual(answer.args, ['answer', 'q1', 42]);
  assert.deepEqual(await rootEvents.next('answered'), ['answer', 'q1', 42]);

  // Binary both ways: as an event, in an ack, nested, and a large one.
  const big = crypto.randomBytes(100 * 1024);
  const nested = {label: 'x', data: Buffer.from('abc'), list: [Buffer.from([0xff]), 'y']};
  const [b0, b1, b2] = await sio.emitAck(root, 'echo', BYTES_0_255, nested, big);
  h.assertBytesEqual(Buffer.from(b0), BYTES_0_255, 'binary ack arg 0');
  assert.equal(b1.label, 'x');
  h.assertBytesEqual(Buffer.from(b1.data), Buffer.from('abc'), 'nested binary');
  h.assertBytesEqual(Buffer.from(b1.list[0]), Buffer.from([0xff]), 'binary in a list');
  assert.equal(b1.list[1], 'y');
  h.assertBytesEqual(Buffer.from(b2), big, '100 KiB binary');
  const binReport = await server.waitFor(
      (o) => o.event === 'received' && o.name === 'echo' && o.args[0]?._bin, 5000,
      'the binary echo report');
  assert.equal(binReport.args[0]._bin, BYTES_0_255.toString('base64'));
  root.emit('echo', BYTES_0_255);
  const [echoed] = await rootEvents.next('echo');
  h.assertBytesEqual(Buffer.from(echoed), BYTES_0_255, 'binary event from the server');
  root.emit('emit', 'blob', {_bin: 'AAECAw=='}, 'tail');
  const [blob, tail] = await rootEvents.next('blob');
  h.assertBytesEqual(Buffer.from(blob), Buffer.from([0, 1, 2, 3]), 'server-initiated binary');
  assert.equal(tail, 'tail');

  // A second namespace on the same Engine.IO session.
  const [adminWho] = await sio.emitAck(admin, 'whoami');
  assert.equal(adminWho.nsp, '/admin');
  assert.equal(adminWho.engineSid, who.engineSid);
  assert.notEqual(adminWho.sid, who.sid);
  admin.emit('echo', 'admin says hi');
  assert.deepEqual(await adminEvents.next('echo'), ['admin says hi']);
  assert.deepEqual(await sio.emitAck(admin, 'echo', {only: 'admin'}), [{only: 'admin'}]);
  assert.equal(rootEvents.pending('echo'), 0, 'an /admin echo leaked into /');

  // Rooms: two more clients with the same transports; a and b join, c stays out.
  const a = root;
  const b = await sio.connect(url, opts);
  const c = await sio.connect(url, opts);
  const bEvents = sio.eventQueue(b);
  const cEvents = sio.eventQueue(c);
  assert.deepEqual(await sio.emitAck(a, 'join', 'room1'), ['joined', 'room1']);
  assert.deepEqual(await sio.emitAck(b, 'join', 'room1'), ['joined', 'room1']);
  assert.deepEqual(await sio.emitAck(a, 'broadcast', 'room1', 'hello room', {k: 1}), ['sent']);
  assert.deepEqual(await rootEvents.next('broadcast'), ['hello room', {k: 1}]);
  assert.deepEqual(await bEvents.next('broadcast'), ['hello room', {k: 1}]);
  // c's echo answer comes after anything the broadcast might wrongly have sent it.
  assert.deepEqual(await sio.emitAck(c, 'echo', 'c'), ['c']);
  assert.equal(cEvents.pending('broadcast'), 0, 'a client outside the room got the broadcast');

  assert.deepEqual(disconnects, []);
  assert.deepEqual(engineErrors(server), []);
  t.log(`final transport ${m.engine.transport.name}, client sid ${m.engine.id}`);
}

// ---------------------------------------------------------------------------------------------

h.test('socket.io-client, default transports: upgrades to websocket; events, acks, binary, ' +
           'namespaces, rooms', (t) => exerciseClient(t, null), {timeout: 30000});

h.test('socket.io-client, websocket only: events, acks, binary, namespaces, rooms',
       (t) => exerciseClient(t, ['websocket']), {timeout: 30000});

h.test('socket.io-client, polling only: events, acks, binary, namespaces, rooms',
       (t) => exerciseClient(t, ['polling']), {timeout: 30000});

h.test('round_robin over two endpoints: 20 polling clients stay on their server', async (t) => {
  const servers = await startServers(2);
  const {port} = await startPassthrough(servers, {workers: 2,
                                                  proxyOnly: 'needs wsbridge to balance'});
  const url = `http://127.0.0.1:${port}`;
  const troubles = [];
  const clients = await Promise.all(Array.from({length: 20}, async (_, i) => {
    const socket = await sio.connect(url, {transports: ['polling']});
    socket.on('connect_error', (err) => troubles.push(`client ${i}: connect_error ${err.message}`));
    socket.on('disconnect', (reason) => troubles.push(`client ${i}: disconnect ${reason}`));
    return socket;
  }));
  const until = Date.now() + 3000;
  let events = 0;
  const results = await Promise.all(clients.map(async (socket, i) => {
    const pids = new Set();
    const engineSids = new Set();
    let n = 0;
    while (Date.now() < until) {
      const [who] = await sio.emitAck(socket, 'whoami');
      pids.add(who.pid);
      engineSids.add(who.engineSid);
      const payload = `client ${i} message ${n++}`;
      const echoed = h.once(socket, 'echo', 10000);
      socket.emit('echo', payload);
      assert.deepEqual(await echoed, [payload]);
      events += 2;
    }
    assert.equal(socket.io.engine.transport.name, 'polling');
    return {pids, engineSids, clientSid: socket.io.engine.id};
  }));
  assert.deepEqual(troubles, []);
  const perServer = new Map(servers.map((s) => [s.info.pid, 0]));
  for (const [i, r] of results.entries()) {
    assert.equal(r.pids.size, 1, `client ${i} reached ${r.pids.size} server processes`);
    assert.equal(r.engineSids.size, 1, `client ${i} had ${r.engineSids.size} sessions`);
    const [pid] = r.pids;
    const [engineSid] = r.engineSids;
    assertClientSid(r.clientSid, engineSid);
    // The session was opened on the server that answered every event.
    const owner = servers.find((s) => s.lines.some(
        (o) => o.event === 'engine-connection' && o.engineSid === engineSid));
    assert.equal(owner.info.pid, pid, `client ${i}: session opened on another server`);
    perServer.set(pid, perServer.get(pid) + 1);
  }
  for (const s of servers) assert.deepEqual(engineErrors(s), [], `server ${s.info.pid} errors`);
  t.log(`${events} events in 3 s; sessions per server: ${[...perServer.values()].join(' / ')}`);
  for (const [pid, count] of perServer) assert.ok(count > 0, `no session on server ${pid}`);
}, {timeout: 30000});

h.test('two wsbridge instances with one sid_key share a polling session; other keys and ' +
           'tampered sids get 400 code 1', async () => {
  const servers = await startServers(2);
  const opts = {proxyOnly: 'needs wsbridge instances', sidKey: 'e2e-shared-sid-key-1'};
  const a = await startPassthrough(servers, opts);
  const b = await startPassthrough(servers, opts);
  const other = await startPassthrough(servers, {...opts, sidKey: 'a-different-key'});

  const session = new sio.PollingSession();
  await session.handshake(a.port);
  const m = sio.SIGNED_SID.exec(session.sid);
  assert.ok(m, `sid ${session.sid} is not signed`);
  const owner = await Promise.any(servers.map(async (s) => {
    await s.waitFor((o) => o.event === 'engine-connection' && o.engineSid === m[1], 5000);
    return s;
  }));

  let r = await session.post(b.port, '40');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  const connect = await session.getUntil(a.port, (p) => p.startsWith('40'), {pongPort: b.port});
  assert.match(connect, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);

  // Alternate: POST on one instance, GET the answer on the other.
  for (let i = 0; i < 6; i++) {
    const [post, get] = i % 2 ? [a, b] : [b, a];
    r = await session.post(post.port, `42["echo","round ${i}"]`);
    assert.equal(r.status, 200, `POST ${i}: ${r.body}`);
    assert.equal(r.body, 'ok');
    const packet = await session.getUntil(get.port, (p) => p.startsWith('42'));
    assert.equal(packet, `42["echo","round ${i}"]`);
  }
  r = await session.post(b.port, '421["whoami"]');
  assert.equal(r.status, 200);
  const ack = await session.getUntil(a.port, (p) => p.startsWith('43'));
  const who = JSON.parse(ack.slice(3))[0];
  assert.equal(ack.slice(0, 3), '431');
  assert.equal(who.pid, owner.info.pid);
  assert.equal(who.engineSid, m[1]);

  // Another key cannot open the sid; neither can anyone after a character changed.
  const unknown = '{"code":1,"message":"Session ID unknown"}';
  const flip = (s, i) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  const tampered = [
    flip(session.sid, session.sid.length - 1),  // the signature
    flip(session.sid, 0),                       // the upstream sid
    `${m[1]}.${'A'.repeat(16)}`,                // a made-up signature
    m[1],                                       // the bare upstream sid
  ];
  const attempts = [
    {port: other.port, sid: session.sid, what: 'another sid_key'},
    ...tampered.map((sid) => ({port: a.port, sid, what: `tampered sid ${sid}`})),
  ];
  for (const {port, sid, what} of attempts) {
    for (const method of ['GET', 'POST']) {
      r = await sio.request(port, {
        method,
        path: `/socket.io/?EIO=4&transport=polling&sid=${sid}`,
        body: method === 'POST' ? '42["echo","forged"]' : undefined,
      });
      assert.equal(r.status, 400, `${method} with ${what}`);
      assert.equal(r.body, unknown, `${method} with ${what}`);
      assert.match(r.headers['content-type'], /^application\/json/);
    }
  }
  // The real session is unharmed.
  r = await session.post(a.port, '42["echo","still here"]');
  assert.equal(r.status, 200);
  const still = await session.getUntil(b.port, (p) => p.startsWith('42'));
  assert.equal(still, '42["echo","still here"]');
  for (const s of servers) assert.deepEqual(engineErrors(s), []);
  assert.ok(!servers.some((s) => s.lines.some((o) => o.event === 'received' &&
                                                   o.args[0] === 'forged')));
}, {timeout: 30000});

h.test('Engine.IO errors and the polling handshake body match the reference server', async () => {
  const [server] = await startServers(1, ['--ping-interval', '3000', '--ping-timeout', '2000']);
  const {port} = await startPassthrough([server]);
  const cases = [
    {path: '/socket.io/?EIO=4', code: 0, message: 'Transport unknown'},
    {path: '/socket.io/?EIO=4&transport=carrier-pigeon', code: 0, message: 'Transport unknown'},
    {path: '/socket.io/?EIO=5&transport=polling', code: 5,
     message: 'Unsupported protocol version'},
    {path: '/socket.io/?transport=polling', code: 5, message: 'Unsupported protocol version'},
    {path: '/socket.io/?EIO=abc&transport=polling', code: 5,
     message: 'Unsupported protocol version'},
    {method: 'POST', path: '/socket.io/?EIO=4&transport=polling', body: '40', code: 2,
     message: 'Bad handshake method'},
    {path: '/socket.io/?EIO=4&transport=websocket', code: 3, message: 'Bad request'},
    {path: '/socket.io/?EIO=4&transport=polling&sid=nope', code: 1,
     message: 'Session ID unknown'},
  ];
  for (const c of cases) {
    const r = await sio.request(port, c);
    const what = `${c.method || 'GET'} ${c.path}`;
    assert.equal(r.status, 400, what);
    assert.equal(r.body, JSON.stringify({code: c.code, message: c.message}), what);
    assert.match(r.headers['content-type'], /^application\/json/, what);
  }

  const session = new sio.PollingSession();
  const res = await session.handshake(port);
  assert.match(res.headers['content-type'], /^text\/plain; ?charset=UTF-8$/i);
  assert.equal(res.body.indexOf(sio.RS), -1, 'the handshake body is one packet');
  assert.deepEqual(Object.keys(session.open),
                   ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
  assert.deepEqual(session.open.upgrades, ['websocket']);
  assert.equal(session.open.pingInterval, 3000);
  assert.equal(session.open.pingTimeout, 2000);
  assert.equal(session.open.maxPayload, 1000000);
  const upstream = await server.waitFor((o) => o.event === 'engine-connection');
  assertClientSid(session.sid, upstream.engineSid);
  // wsbridge answers all of the above itself: none reaches the server.
  if (!h.direct) assert.deepEqual(engineErrors(server), []);
}, {timeout: 30000});

h.test('upgrade by hand: 2probe -> 3probe, the pending poll returns 6, 5, then frames and ' +
           'heartbeats on the websocket', async (t) => {
  const [server] = await startServers(1, ['--ping-interval', '1500', '--ping-timeout', '1000']);
  const {port} = await startPassthrough([server]);
  const session = new sio.PollingSession();
  await session.handshake(port);
  let r = await session.post(port, '40');
  assert.equal(r.body, 'ok');
  const connect = await session.getUntil(port, (p) => p.startsWith('40'));
  assert.match(connect, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);

  const ws = await h.rawConnect(port);
  const up = await ws.handshake(`/socket.io/?EIO=4&transport=websocket&sid=${session.sid}`);
  assert.equal(up.status, 101);
  assert.equal(up.headers['sec-websocket-accept'], up.accept);
  ws.sendText('2probe');
  let f = await ws.readMessage();
  assert.equal(f.opcode, h.OP.TEXT);
  assert.equal(f.payload.toString(), '3probe');
  r = await session.get(port);
  assert.equal(r.status, 200);
  assert.equal(r.body, '6');
  ws.sendText('5');
  await server.waitFor((o) => o.event === 'engine-upgrade', 5000, 'the upgrade report');

  ws.sendText('42["echo","after upgrade"]');
  f = await ws.readMessage();
  assert.equal(f.payload.toString(), '42["echo","after upgrade"]');
  ws.sendText('421["echo",{"bin":false}]');
  f = await ws.readMessage();
  assert.equal(f.payload.toString(), '431[{"bin":false}]');
  // Binary: the BINARY_EVENT text, then the attachment as a binary frame, both ways.
  ws.sendText('451-["echo",{"_placeholder":true,"num":0}]');
  ws.sendFrame({opcode: h.OP.BINARY, payload: BYTES_0_255});
  f = await ws.readMessage();
  assert.equal(f.payload.toString(), '451-["echo",{"_placeholder":true,"num":0}]');
  f = await ws.readMessage();
  assert.equal(f.opcode, h.OP.BINARY);
  h.assertBytesEqual(f.payload, BYTES_0_255, 'binary attachment');

  // Polling is over for this session: the upstream says so through wsbridge.
  r = await session.get(port);
  assert.equal(r.status, 400);
  assert.equal(r.body, '{"code":3,"message":"Bad request"}');

  // Heartbeat over the websocket: the server's `2` arrives, our `3` keeps the session alive.
  for (let i = 0; i < 2; i++) {
    f = await ws.readMessage(5000);
    assert.equal(f.opcode, h.OP.TEXT);
    assert.equal(f.payload.toString(), '2');
    ws.sendText('3');
  }
  ws.sendText('42["echo","alive"]');
  f = await ws.readMessage();
  assert.equal(f.payload.toString(), '42["echo","alive"]');
  assert.ok(!server.lines.some((o) => o.event === 'engine-close'), 'the session closed');
  ws.sendClose(1000);
  const closeFrame = await ws.readClose();
  t.log(`close after goodbye: ${closeFrame.code}`);
  const gone = await server.waitFor((o) => o.event === 'engine-close', 5000, 'the close report');
  assert.equal(gone.reason, 'transport close');
}, {timeout: 30000});

h.test('hand-written mini-program client: 40, 40/realtime-voice, events, binary, acks, pongs',
       async () => {
  const [server] = await startServers(1, ['--ping-interval', '400', '--ping-timeout', '300']);
  const {port} = await startPassthrough([server]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  const eio = sio.eioClient(ws);

  const open = await eio.nextText();
  assert.equal(open[0], '0');
  const handshake = JSON.parse(open.slice(1));
  assert.deepEqual(Object.keys(handshake),
                   ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload']);
  assert.deepEqual(handshake.upgrades, []);
  assert.equal(handshake.pingInterval, 400);
  assert.equal(handshake.pingTimeout, 300);
  const upstream = await server.waitFor((o) => o.event === 'engine-connection');
  assertClientSid(handshake.sid, upstream.engineSid);

  const sidPacket = (prefix) => new RegExp(`^${prefix}\\{"sid":"[A-Za-z0-9_-]{20}"\\}$`);
  ws.send('40');
  assert.match(await eio.nextText(), sidPacket('40'));
  ws.send('40/realtime-voice,');
  assert.match(await eio.nextText(), sidPacket('40/realtime-voice,'));
  const start = '{"format":"pcm","sampleRate":16000,"lang":"zh-CN"}';
  ws.send(`42/realtime-voice,["start",${start}]`);
  assert.equal(await eio.nextText(), `42/realtime-voice,["started",${start}]`);
  const got = await server.waitFor((o) => o.event === 'received' && o.name === 'start');
  assert.equal(got.nsp, '/realtime-voice');
  assert.deepEqual(got.args, [JSON.parse(start)]);

  // One audio chunk the Socket.IO way, then its summary in an ack.
  const chunk = crypto.randomBytes(3200);
  ws.send('451-/realtime-voice,["audio",{"_placeholder":true,"num":0}]');
  ws.send(chunk, {binary: true});
  ws.send('42/realtime-voice,7["audio-end"]');
  const digest = crypto.createHash('sha256').update(chunk).digest('hex');
  assert.equal(await eio.nextText(),
               `43/realtime-voice,7[{"chunks":1,"bytes":3200,"sha256":"${digest}"}]`);
  // The default namespace works alongside.
  ws.send('42["echo","root"]');
  assert.equal(await eio.nextText(), '42["echo","root"]');

  // Answer the server's pings for a while: the session must stay up.
  const pingsBefore = eio.pings.length;
  await eio.waitPings(pingsBefore + 3, 5000);
  ws.send('42/realtime-voice,["stop",{}]');
  assert.equal(await eio.nextText(), '42/realtime-voice,["stopped",{}]');
  assert.equal(eio.pending, 0);
  assert.ok(!server.lines.some((o) => o.event === 'engine-close' || o.event === 'disconnect'),
            'the server dropped the session');

  ws.send('41/realtime-voice,');
  const left = await server.waitFor((o) => o.event === 'disconnect', 5000, 'the disconnect');
  assert.equal(left.nsp, '/realtime-voice');
  assert.equal(left.reason, 'client namespace disconnect');
}, {timeout: 30000});

h.test('heartbeat: a websocket client that never answers pings is dropped at the pong deadline',
       async (t) => {
  const interval = 300;
  const timeout = 200;
  const [server] = await startServers(1, ['--ping-interval', interval, '--ping-timeout', timeout]);
  const {port} = await startPassthrough([server]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  const eio = sio.eioClient(ws, {answerPings: false});
  assert.equal((await eio.nextText())[0], '0');
  ws.send('40');
  assert.match(await eio.nextText(), /^40\{"sid":/);
  await eio.waitPings(1, 3000);
  const pingAt = eio.pings[0];
  const closed = await h.withTimeout(eio.closed, 3000, 'the client close');
  const gone = await server.waitFor((o) => o.event === 'disconnect', 3000, 'the disconnect');
  t.log(`ping -> client closed ${closed.at - pingAt} ms (code ${closed.code} ` +
        `"${closed.reason}"), server disconnect ${gone.at - pingAt} ms (${gone.reason})`);
  assert.equal(eio.pings.length, 1, 'a second ping came: nobody enforced the deadline');
  // The deadline is the pingTimeout after the ping. Nothing else closes this session, so a
  // generous bound (5x, for a loaded machine) still shows the deadline did it.
  assert.ok(closed.at - pingAt < 5 * timeout, `client closed ${closed.at - pingAt} ms late`);
  assert.ok(gone.at - pingAt < 5 * timeout, `server disconnect ${gone.at - pingAt} ms late`);
  assert.ok(['ping timeout', 'transport close'].includes(gone.reason), gone.reason);
}, {timeout: 20000});

h.test('heartbeat after a polling upgrade: wsbridge enforces its ping_timeout and closes the ' +
           'upstream long before the server would', async (t) => {
  const [server] = await startServers(1, ['--ping-interval', '1000', '--ping-timeout', '5000']);
  const {port} = await startPassthrough([server], {
    proxyOnly: 'tests the proxy deadline',
    routeExtra: 'ping_timeout = "200ms"\n',
  });
  const session = new sio.PollingSession();
  await session.handshake(port);
  await session.post(port, '40');
  await session.getUntil(port, (p) => p.startsWith('40'));
  const ws = await h.rawConnect(port);
  const up = await ws.handshake(`/socket.io/?EIO=4&transport=websocket&sid=${session.sid}`);
  assert.equal(up.status, 101);
  ws.sendText('2probe');
  assert.equal((await ws.readMessage()).payload.toString(), '3probe');
  ws.sendText('5');
  const f = await ws.readMessage(5000);
  assert.equal(f.payload.toString(), '2');
  const pingAt = Date.now();  // not answered
  // The close frame, or null when the connection ends without one.
  const close = await ws.readClose(3000).catch((err) => {
    if (!ws.ended) throw err;
    return null;
  });
  const closedAt = Date.now();
  const gone = await server.waitFor((o) => o.event === 'disconnect', 3000, 'the disconnect');
  t.log(`ping -> ${close ? `close ${close.code} "${close.reason}"` : 'TCP close, no close frame'}` +
        ` after ${closedAt - pingAt} ms; server: ${gone.reason} after ${gone.at - pingAt} ms`);
  assert.equal(gone.reason, 'transport close');
  // wsbridge's 200 ms, not the server's 5 s: 10x slack for a loaded machine is still far below
  // what the server would take (pingTimeout 5 s).
  assert.ok(gone.at - pingAt < 2000, `server disconnect ${gone.at - pingAt} ms after ping`);
  assert.ok(closedAt - pingAt < 2000, `client closed ${closedAt - pingAt} ms after ping`);
  assert.ok(close, 'the client got no close frame (1006) instead of 1001');
  assert.equal(close.code, 1001);
  assert.equal(close.reason, 'client did not answer the ping');
}, {timeout: 20000});
