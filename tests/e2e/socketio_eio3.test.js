// Engine.IO v3 / Socket.IO v4 clients (socket.io-client 2.x, the mini-program ports of it) on a
// socket.io 4.8 server that does NOT allow EIO3: wsbridge speaks v3 to the client and v4 to the
// upstream (route option allow_eio3), over the websocket transport.
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const ioV2 = require('socket.io-client-v2');
const h = require('./lib/harness');
const sio = require('./lib/sio');

const {assert} = h;

async function startEio3(serverArgs = []) {
  if (h.direct) throw new h.Skip('the upstream does not allow EIO3: only wsbridge adapts it');
  const server = await h.startPeer('sio-server.js', serverArgs);
  const port = await h.freePort();
  await h.startWsbridge(sio.sioConfig({port, endpoints: [server.port],
                                       routeExtra: 'allow_eio3 = true\n'}));
  return {server, port};
}

// A socket.io-client 2.x socket, websocket only (as weapp.socket.io 2.x), closed at the end.
function connectV2(url, opts = {}) {
  const socket = ioV2(url, {forceNew: true, reconnection: false, transports: ['websocket'], ...opts});
  h.defer(() => socket.close());
  return socket;
}

function waitConnectedV2(socket, ms = 10000) {
  return h.withTimeout(new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
    socket.once('error', (e) => reject(new Error(`error event: ${JSON.stringify(e)}`)));
  }), ms, `socket ${socket.nsp} connect`);
}

function nextEvent(socket, name, ms = 10000) {
  return h.withTimeout(new Promise((resolve) => socket.once(name, (...args) => resolve(args))),
                       ms, `'${name}' on ${socket.nsp}`);
}

function emitAckV2(socket, name, ...args) {
  return h.withTimeout(new Promise((resolve) => socket.emit(name, ...args, (...r) => resolve(r))),
                       10000, `ack for '${name}'`);
}

h.test('socket.io-client 2.x over websocket: default namespace, events, acks both ways, binary',
       async () => {
  const {server, port} = await startEio3();
  const socket = connectV2(`http://127.0.0.1:${port}`, {query: {room: 'r1'}});
  await waitConnectedV2(socket);

  const [who] = await emitAckV2(socket, 'whoami');
  assert.equal(who.nsp, '/');
  assert.equal(who.transport, 'websocket');
  assert.equal(who.query.room, 'r1', 'the handshake query reaches the app');
  assert.equal(who.query.EIO, '4', 'the upstream sees an Engine.IO v4 client');

  const text = {s: 'é€中😀', list: [1, null, true]};
  socket.emit('echo', 'hello', text);
  assert.deepEqual(await nextEvent(socket, 'echo'), ['hello', text]);
  assert.deepEqual(await emitAckV2(socket, 'echo', 1, 'two', [3]), [1, 'two', [3]]);

  socket.on('question', (...args) => args.pop()('answer', ...args));
  socket.emit('ask', 'q1');
  const answer = await server.waitFor((o) => o.event === 'answer', 5000, 'the answer report');
  assert.deepEqual(answer.args, ['answer', 'q1']);

  // Binary both ways: v3 frames carry a leading packet-type byte that v4 frames do not.
  const bytes = crypto.randomBytes(4096);
  const [back] = await emitAckV2(socket, 'echo', bytes);
  h.assertBytesEqual(Buffer.from(back), bytes, 'binary echoed in an ack');
  const got = await server.waitFor(
      (o) => o.event === 'received' && o.args[0]?._bin, 5000, 'the binary report');
  assert.equal(got.args[0]._bin, bytes.toString('base64'), 'the server got the bytes unprefixed');
  socket.emit('emit', 'blob', {_bin: 'AAECAw=='});
  const [blob] = await nextEvent(socket, 'blob');
  h.assertBytesEqual(Buffer.from(blob), Buffer.from([0, 1, 2, 3]), 'server-initiated binary');

  socket.close();
  const left = await server.waitFor((o) => o.event === 'disconnect', 5000, 'the disconnect');
  assert.ok(['client namespace disconnect', 'transport close'].includes(left.reason), left.reason);
});

h.test('socket.io-client 2.x: namespace query becomes the CONNECT auth; refusals arrive as the ' +
           'v2 error event', async () => {
  const {server, port} = await startEio3(['--auth-nsp', '/secure', '--auth-token', 'T0K']);
  const secure = connectV2(`http://127.0.0.1:${port}/secure`, {query: {token: 'T0K'}});
  await waitConnectedV2(secure);
  const [who] = await emitAckV2(secure, 'whoami');
  assert.equal(who.nsp, '/secure');
  assert.deepEqual(who.auth, {token: 'T0K'});

  const refused = connectV2(`http://127.0.0.1:${port}/secure`, {query: {token: 'nope'}});
  const [err] = await nextEvent(refused, 'error');
  assert.equal(err, 'invalid token', 'a v2 client gets CONNECT_ERROR as a plain string');
  const report = await server.waitFor((o) => o.event === 'refused', 5000, 'the refusal');
  assert.deepEqual(report.auth, {token: 'nope'});
});

h.test('socket.io-client 2.x: the heartbeat is answered on both sides, hop by hop', async () => {
  const {server, port} = await startEio3(['--ping-interval', '200', '--ping-timeout', '300']);
  const socket = connectV2(`http://127.0.0.1:${port}`);
  await waitConnectedV2(socket);
  // The v2 client pings and waits for pongs; the v4 server pings and waits for pongs. Five
  // rounds of each are several pingInterval + pingTimeout windows.
  for (let i = 0; i < 5; i++) await nextEvent(socket, 'pong', 3000);
  assert.deepEqual(await emitAckV2(socket, 'echo', 'still here'), ['still here']);
  assert.ok(!server.lines.some((o) => o.event === 'engine-close' || o.event === 'disconnect'),
            'the server dropped the session');
}, {timeout: 20000});

h.test('raw Engine.IO v3 websocket that never pings: closed within the OPEN\'s pingInterval + ' +
       'pingTimeout (not the route\'s 25 s + 20 s), the upstream session with it', async () => {
  const interval = 300;
  const timeout = 200;
  const {server, port} = await startEio3(['--ping-interval', interval, '--ping-timeout', timeout]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/socket.io/?EIO=3&transport=websocket`);
  const eio = sio.eioClient(ws, {answerPings: false});
  const opened = Date.now();
  const open = JSON.parse((await eio.nextText()).slice(1));
  assert.equal(open.pingInterval, interval);
  const closed = await h.withTimeout(eio.closed, 10000, 'the client close');
  assert.equal(closed.code, 1001);
  assert.ok(closed.at - opened >= interval + timeout - 50, 'closed before the deadline');
  await server.waitFor((o) => o.event === 'engine-close', 10000, 'the upstream session to close');
}, {timeout: 20000});

for (const version of ['3', '4']) {
  h.test(`Engine.IO v${version} close packet \`1\` over websocket ends the session at once, ` +
         'both sides (the server\'s heartbeat is 25 s)', async () => {
    const {server, port} = await startEio3();
    const ws = await h.wsConnect(
        `ws://127.0.0.1:${port}/socket.io/?EIO=${version}&transport=websocket`);
    const eio = sio.eioClient(ws);
    const open = JSON.parse((await eio.nextText()).slice(1));
    if (version === '4') {
      ws.send('40');
      assert.match(await eio.nextText(), /^40\{"sid"/);
    } else {
      assert.equal(await eio.nextText(), '40');
    }
    ws.send('1');
    const closed = await h.withTimeout(eio.closed, 5000, 'the close (a ping timeout is 45 s)');
    assert.equal(closed.code, 1000);
    await server.waitFor((o) => o.event === 'engine-close' && o.engineSid === open.sid.split('.')[0],
                         5000, 'the upstream session to close');
  }, {timeout: 20000});
}

h.test('raw Engine.IO v3 websocket: OPEN, implicit 40, 2probe/2 answered, binary with the type ' +
           'byte; a client that stops pinging is closed and the upstream freed', async (t) => {
  const interval = 300;
  const timeout = 200;
  const {server, port} = await startEio3(['--ping-interval', interval, '--ping-timeout', timeout]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/socket.io/?EIO=3&transport=websocket`);
  const eio = sio.eioClient(ws, {answerPings: false});
  const open = JSON.parse((await eio.nextText()).slice(1));
  assert.equal(open.pingInterval, interval);
  assert.equal(await eio.nextText(), '40', 'v4: the default namespace is connected unasked');

  ws.send('2probe');
  assert.equal(await eio.nextText(), '3probe');
  ws.send('2');
  assert.equal(await eio.nextText(), '3');
  ws.send('40/admin?x=1,');
  assert.equal(await eio.nextText(), '40/admin,', 'v4 CONNECT reply: no sid');

  ws.send('451-["echo",{"_placeholder":true,"num":0}]');
  ws.send(Buffer.from([4, 1, 2, 3]), {binary: true});
  assert.equal(await eio.nextText(), '451-["echo",{"_placeholder":true,"num":0}]');
  const frame = await eio.next();
  assert.ok(frame.isBinary);
  h.assertBytesEqual(frame.data, Buffer.from([4, 1, 2, 3]), 'v3 binary frame');
  assert.equal(eio.pings.length, 0, 'the upstream pings reached a v3 client');

  // Silence after a last ping: none within pingInterval + pingTimeout closes both sides.
  ws.send('2');
  const quietFrom = Date.now();
  assert.equal(await eio.nextText(), '3');
  const closed = await h.withTimeout(eio.closed, 3000, 'the client close');
  const gone = await server.waitFor((o) => o.event === 'engine-close', 3000, 'the engine close');
  t.log(`closed after ${closed.at - quietFrom} ms of silence (code ${closed.code})`);
  assert.equal(closed.code, 1001);
  assert.ok(closed.at - quietFrom >= interval + timeout - 50, 'closed before the deadline');
  assert.ok(gone.at - quietFrom < interval + timeout + 500, 'the upstream stayed open');
}, {timeout: 20000});

for (const [label, transports] of [['default transports (polling, then the upgrade)', undefined],
                                   ['polling only', ['polling']]]) {
  h.test(`socket.io-client 2.x, ${label}: events, acks, binary, namespace auth, heartbeat`,
         async () => {
    const {server, port} = await startEio3(['--ping-interval', '300', '--ping-timeout', '300',
                                            '--auth-nsp', '/secure', '--auth-token', 'T0K']);
    const url = `http://127.0.0.1:${port}`;
    const opts = transports ? {transports} : {transports: ['polling', 'websocket']};
    const socket = connectV2(url, opts);
    await waitConnectedV2(socket);
    const engine = socket.io.engine;
    if (!transports) {
      if (engine.transport.name !== 'websocket') await h.once(engine, 'upgrade', 5000);
      assert.equal(engine.transport.name, 'websocket');
    } else {
      assert.equal(engine.transport.name, 'polling');
    }
    const [who] = await emitAckV2(socket, 'whoami');
    assert.equal(who.transport, 'websocket', 'wsbridge talks to the server over websocket');
    assert.equal(who.query.EIO, '4');

    socket.emit('echo', 'hello', {s: 'é€'});
    assert.deepEqual(await nextEvent(socket, 'echo'), ['hello', {s: 'é€'}]);
    socket.on('question', (...args) => args.pop()('answer', ...args));
    socket.emit('ask', 'q1');
    const answer = await server.waitFor((o) => o.event === 'answer', 5000, 'the answer report');
    assert.deepEqual(answer.args, ['answer', 'q1']);
    const bytes = crypto.randomBytes(2048);
    const [back] = await emitAckV2(socket, 'echo', bytes);
    h.assertBytesEqual(Buffer.from(back), bytes, 'binary through v3 polling / websocket');

    const secure = connectV2(`${url}/secure`, {...opts, query: {token: 'T0K'}});
    await waitConnectedV2(secure);
    const [whoSecure] = await emitAckV2(secure, 'whoami');
    assert.deepEqual(whoSecure.auth, {token: 'T0K'});

    // Both heartbeats, hop by hop: several cycles pass with the session up.
    for (let i = 0; i < 3; i++) await nextEvent(socket, 'pong', 3000);
    assert.deepEqual(await emitAckV2(socket, 'echo', 'still here'), ['still here']);
    assert.ok(!server.lines.some((o) => o.event === 'engine-close'), 'the server dropped it');
    socket.close();
    await server.waitFor((o) => o.event === 'disconnect' && o.nsp === '/', 5000, 'the disconnect');
  }, {timeout: 30000});
}

h.test('Engine.IO v3 polling by hand: the server\'s heartbeat in a length-prefixed OPEN, the ' +
           'implicit 40, client pings answered; without allow_eio3 code 5', async () => {
  const {port} = await startEio3(['--ping-interval', '1000', '--ping-timeout', '2000']);
  const agent = new http.Agent({keepAlive: true, maxSockets: 1});
  h.defer(() => agent.destroy());
  const get = (path) => sio.request(port, {path, agent});
  const open = await get('/socket.io/?EIO=3&transport=polling&b64=1');
  assert.equal(open.status, 200);
  const m = /^(\d+):0(\{.*\})$/.exec(open.body);
  assert.ok(m, `v3 handshake body: ${open.body}`);
  assert.equal(Number(m[1]), m[2].length + 1);
  const handshake = JSON.parse(m[2]);
  assert.equal(handshake.pingInterval, 1000);
  assert.equal(handshake.pingTimeout, 2000);
  const path = `/socket.io/?EIO=3&transport=polling&b64=1&sid=${handshake.sid}`;
  assert.equal((await get(path)).body, '2:40');
  const post = await sio.request(port, {method: 'POST', path, agent, body: '1:2',
                                        headers: {'content-type': 'text/plain;charset=UTF-8'}});
  assert.equal(post.body, 'ok');
  assert.equal((await get(path)).body, '1:3');

  const server = await h.startPeer('sio-server.js');
  const plainPort = await h.freePort();
  await h.startWsbridge(sio.sioConfig({port: plainPort, endpoints: [server.port]}));
  const refused = await sio.request(plainPort, {path: '/socket.io/?EIO=3&transport=polling'});
  assert.equal(refused.status, 400);
  assert.deepEqual(JSON.parse(refused.body), {code: 5, message: 'Unsupported protocol version'});
});
