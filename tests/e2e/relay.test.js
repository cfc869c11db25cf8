// Core relay integration: a `ws` client (or a raw socket) through wsbridge to the ws-echo
// backend, asserting byte-exact relaying, close codes, HTTP errors, backpressure and TLS.
'use strict';

const h = require('./lib/harness');

const {OP, assert} = h;
const KiB = 1024;
const MiB = 1024 * 1024;

// Reproducible randomness: E2E_SEED=<n> replays a run (the seed is printed on failure).
const SEED = Number(process.env.E2E_SEED || Math.floor(Math.random() * 2 ** 31));
function prng(seed) {
  let a = seed >>> 0;
  return () => {  // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Starts the relay in front of `endpoints` (ports); in direct mode (no proxy) the client talks
// to the first endpoint itself, so the case still checks the test and the peer.
async function startRelay(endpoints, {proxyOnly, env, ...opts} = {}) {
  if (h.direct) {
    if (proxyOnly) throw new h.Skip(proxyOnly);
    return {port: endpoints[0], bridge: null};
  }
  const port = await h.freePort();
  const bridge = await h.startWsbridge(h.relayConfig({port, endpoints, ...opts}), {env});
  return {port, bridge};
}

// The backend's close report for connection `id` (or any connection).
function backendClose(peer, id, ms = 10000) {
  return peer.waitFor((o) => o.event === 'close' && (id === undefined || o.id === id), ms,
                      `close report${id === undefined ? '' : ` for connection ${id}`}`);
}

async function lastConnectionId(peer, count) {
  const conns = () => peer.lines.filter((o) => o.event === 'connection');
  await peer.waitFor(() => conns().length >= count, 10000, `connection #${count}`);
  return conns()[count - 1].id;
}

// ---------------------------------------------------------------------------------------------

h.test('10,000 mixed text/binary messages of 0..200 KiB echo byte-exact', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const {port, bridge} = await startRelay([echo.port], {maxMessage: '1MiB', logLevel: 'info'});
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);

  const rand = prng(SEED);
  t.log(`seed ${SEED}`);
  // Pools the messages are sliced from: random bytes, and random valid UTF-8 (1..4-byte chars;
  // no '{' so a text message never looks like a peer command).
  const binPool = Buffer.allocUnsafe(8 * MiB);
  for (let i = 0; i < binPool.length; i += 4) binPool.writeUInt32LE((rand() * 2 ** 32) >>> 0, i);
  const alphabet = [];
  for (let c = 0x20; c < 0x7f; c++) if (c !== 0x7b) alphabet.push(String.fromCharCode(c));
  alphabet.push('é', 'ß', 'Ж', '€', '中', '文', '😀', '🚀', '\n', '\t');
  const parts = [];
  for (let i = 0; i < 3 * MiB; i++) {
    parts.push(alphabet[rand() < 0.8 ? Math.floor(rand() * 95) :
                                       Math.floor(rand() * alphabet.length)]);
  }
  const textPool = Buffer.from(parts.join(''), 'utf8');
  const isCont = (b) => (b & 0xc0) === 0x80;

  // E2E_MESSAGES scales the run down where it is not the point (the sanitizer build in CI).
  const N = Number(process.env.E2E_MESSAGES || 10000);
  const WINDOW = 16;
  const MAX = 200 * KiB;
  const makeMessage = () => {
    const size = Math.floor(rand() * (MAX + 1));
    if (rand() < 0.5) {
      const off = Math.floor(rand() * (binPool.length - size));
      return {data: binPool.subarray(off, off + size), isBinary: true};
    }
    let start = Math.floor(rand() * (textPool.length - size - 8));
    while (isCont(textPool[start])) start++;
    let end = start + size;
    while (end > start && isCont(textPool[end])) end--;  // cut before a character, not in it
    return {data: textPool.subarray(start, end), isBinary: false};
  };

  const inFlight = [];
  let sent = 0;
  let bytes = 0;
  const sendNext = () => {
    const m = makeMessage();
    inFlight.push(m);
    sent++;
    bytes += m.data.length;
    ws.send(m.data, {binary: m.isBinary});
  };
  const cpu = () => (bridge ? h.readCpuSeconds(bridge.pid) : 0);
  const cpuBefore = cpu();
  const started = process.hrtime.bigint();
  while (sent < WINDOW) sendNext();
  for (let i = 0; i < N; i++) {
    const got = await q.next(30000);
    const want = inFlight.shift();
    assert.equal(got.isBinary, want.isBinary, `message ${i}: type`);
    h.assertBytesEqual(got.data, want.data, `message ${i} (${want.isBinary ? 'binary' : 'text'})`);
    if (sent < N) sendNext();
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  t.log(`${N} messages, ${(bytes / MiB).toFixed(1)} MiB each way in ${secs.toFixed(2)} s: ` +
        `${(N / secs).toFixed(0)} msg/s, ${((2 * bytes) / MiB / secs).toFixed(1)} MiB/s ` +
        `(both directions)` +
        (bridge ? `; wsbridge CPU ${(cpu() - cpuBefore).toFixed(2)} s` : ''));
  ws.close(1000);
  await backendClose(echo);
}, {timeout: 240000});

h.test('client-fragmented messages arrive whole and byte-exact', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);

  // Text with a 3-byte character split across fragments (valid only once joined).
  const text = Buffer.from('fragments: € and 😀 split across frames', 'utf8');
  const euro = text.indexOf(Buffer.from('€'));
  const emoji = text.indexOf(Buffer.from('😀'));
  ws.send(text.subarray(0, euro + 1), {binary: false, fin: false});
  ws.send(text.subarray(euro + 1, emoji + 2), {fin: false});
  ws.send(text.subarray(emoji + 2), {fin: true});
  let got = await q.next();
  assert.equal(got.isBinary, false);
  h.assertBytesEqual(got.data, text, 'fragmented text');

  // Binary of 3 x 100 KiB plus an empty final fragment.
  const bin = Buffer.alloc(300 * KiB);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 31 + 7) & 0xff;
  ws.send(bin.subarray(0, 100 * KiB), {binary: true, fin: false});
  ws.send(bin.subarray(100 * KiB, 200 * KiB), {fin: false});
  ws.send(bin.subarray(200 * KiB), {fin: false});
  ws.send(Buffer.alloc(0), {fin: true});
  got = await q.next();
  assert.equal(got.isBinary, true);
  h.assertBytesEqual(got.data, bin, 'fragmented binary');
});

h.test('raw fragments with a ping in between, trickled byte by byte, arrive whole', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);
  const c = await h.rawConnect(port);
  const res = await c.handshake('/');
  assert.equal(res.status, 101);
  assert.equal(res.headers['sec-websocket-accept'], res.accept);

  c.sendFrame({opcode: OP.TEXT, payload: 'frag-one ', fin: false});
  c.sendFrame({opcode: OP.PING, payload: 'p1'});
  c.sendFrame({opcode: OP.CONT, payload: 'two ', fin: false});
  c.sendFrame({opcode: OP.CONT, payload: 'three', fin: true});
  const msg = await c.readMessage();
  assert.equal(msg.opcode, OP.TEXT);
  assert.equal(msg.payload.toString(), 'frag-one two three');
  // The pong may come before or after the echo; collect frames until we have it.
  let pong = msg.control.find((f) => f.opcode === OP.PONG);
  while (!pong) {
    const f = await c.readFrame();
    if (f.opcode === OP.PONG) pong = f;
  }
  assert.equal(pong.payload.toString(), 'p1');
  assert.equal(pong.masked, false);

  // One byte per write: the proxy's parser must resume mid-header and mid-payload.
  const payload = Buffer.from('trickled ' + 'x'.repeat(300) + ' é', 'utf8');
  const bytes = Buffer.concat([
    h.encodeFrame({opcode: OP.BINARY, payload: payload.subarray(0, 150), fin: false}),
    h.encodeFrame({opcode: OP.CONT, payload: payload.subarray(150), fin: true}),
  ]);
  for (let i = 0; i < bytes.length; i++) {
    await new Promise((resolve) => c.socket.write(bytes.subarray(i, i + 1), resolve));
  }
  const trickled = await c.readMessage();
  assert.equal(trickled.opcode, OP.BINARY);
  h.assertBytesEqual(trickled.payload, payload, 'trickled message');
  c.sendClose(1000);
  const close = await c.readClose();
  assert.equal(close.code, 1000);
});

h.test('subprotocol: client offers a, chat; backend picks chat; client sees chat', async () => {
  const echo = await h.startPeer('ws-echo.js', ['--protocols', 'chat,other']);
  const {port} = await startRelay([echo.port]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`, ['a', 'chat']);
  assert.equal(ws.protocol, 'chat');
  const conn = await echo.waitFor((o) => o.event === 'connection');
  assert.equal(conn.protocol, 'chat');
  assert.deepEqual(conn.offered.split(',').map((s) => s.trim()), ['a', 'chat']);
  const q = h.messageQueue(ws);
  ws.send('with protocol');
  assert.equal((await q.next()).data.toString(), 'with protocol');

  // Nothing the backend accepts: a 101 without a protocol (a `ws` client would refuse it).
  const c = await h.rawConnect(port);
  const res = await c.handshake('/', {'Sec-WebSocket-Protocol': 'x, y'});
  assert.equal(res.status, 101);
  assert.equal(res.headers['sec-websocket-protocol'], undefined);
  const conn2 = await echo.waitFor((o) => o.event === 'connection' && o.id !== conn.id);
  assert.equal(conn2.protocol, '');
});

h.test('close code 4000 and reason travel client->backend and backend->client', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);

  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const id1 = await lastConnectionId(echo, 1);
  const closed = h.once(ws, 'close');
  ws.close(4000, 'bye-client');
  const seen = await backendClose(echo, id1);
  assert.equal(seen.code, 4000);
  assert.equal(seen.reason, 'bye-client');
  const [code1] = await closed;
  assert.equal(code1, 4000);  // the backend's reply (ws echoes the code) comes back

  const ws2 = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const id2 = await lastConnectionId(echo, 2);
  const closed2 = h.once(ws2, 'close');
  ws2.send(JSON.stringify({cmd: 'close', code: 4000, reason: 'bye'}));
  const [code2, reason2] = await closed2;
  assert.equal(code2, 4000);
  assert.equal(reason2.toString(), 'bye');
  const reply = await backendClose(echo, id2);
  assert.equal(reply.code, 4000);  // the client's reply went back through the proxy
});

h.test('no endpoint up: 502 with a JSON body naming the cluster', async () => {
  const down1 = await h.freePort();
  const down2 = await h.freePort();
  const {port} = await startRelay([down1, down2], {
    cluster: 'nowhere',
    proxyOnly: 'the 502 comes from the proxy',
  });
  const c = await h.rawConnect(port);
  const res = await c.handshake('/chat');
  assert.equal(res.statusLine, 'HTTP/1.1 502 Bad Gateway');
  assert.match(res.headers['content-type'] || '', /^application\/json/);
  const body = JSON.parse(res.body.toString('utf8'));
  assert.ok(JSON.stringify(body).includes('nowhere'),
            `body does not name the cluster: ${res.body}`);
});

h.test('endpoints [down, up]: every connection reaches the live one', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const down = await h.freePort();
  const {port} = await startRelay([down, echo.port], {
    proxyOnly: 'endpoint failover is the proxy\'s',
  });
  for (let i = 0; i < 4; i++) {  // round robin: both orders of trying happen
    const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
    const q = h.messageQueue(ws);
    ws.send(`attempt ${i}`);
    assert.equal((await q.next()).data.toString(), `attempt ${i}`);
    const closed = h.once(ws, 'close');
    ws.close(1000);
    await closed;
  }
});

// Sends `frames` after the handshake and expects the proxy's close frame with `code`, then a
// closed TCP connection after our reply; the backend must have seen a proper close too.
async function expectViolation(port, echo, connIndex, frames, code) {
  const c = await h.rawConnect(port);
  const res = await c.handshake('/');
  assert.equal(res.status, 101);
  const id = await lastConnectionId(echo, connIndex);
  for (const f of frames) c.write(Buffer.isBuffer(f) ? f : h.encodeFrame(f));
  const close = await c.readClose();
  assert.equal(close.raw[0], 0x88, 'close frame: FIN + opcode 8');
  assert.equal(close.masked, false, 'server frames are not masked');
  assert.equal(close.code, code, `close code (reason "${close.reason}")`);
  c.sendClose(code);
  await h.withTimeout(c.closed, 10000, 'TCP close after the close handshake');
  const seen = await backendClose(echo, id);
  // Direct, the backend itself is the violated side (and `ws` stops reading after it: 1006).
  if (!h.direct) {
    assert.notEqual(seen.code, 1006, 'backend got a close frame, not a dropped connection');
  }
  return {close, backend: seen};
}

h.test('message over max_message closes 1009; one at the limit passes', async (t) => {
  const limit = 64 * KiB;
  const echo = await h.startPeer('ws-echo.js', h.direct ? ['--max-payload', limit] : []);
  const {port} = await startRelay([echo.port], {maxMessage: '64KiB'});

  const ok = await h.rawConnect(port);
  assert.equal((await ok.handshake('/')).status, 101);
  const atLimit = Buffer.alloc(limit, 0x5a);
  ok.sendFrame({opcode: OP.BINARY, payload: atLimit});
  const echoed = await ok.readMessage();
  assert.equal(echoed.opcode, OP.BINARY);
  h.assertBytesEqual(echoed.payload, atLimit, 'message at the limit');

  let r = await expectViolation(port, echo, 2,
                                [{opcode: OP.BINARY, payload: Buffer.alloc(limit + 1, 0x5a)}],
                                1009);
  t.log(`one frame of limit+1: client got 1009 "${r.close.reason}", backend saw ${r.backend.code}`);
  r = await expectViolation(port, echo, 3, [
    {opcode: OP.TEXT, payload: 'a'.repeat(30000), fin: false},
    {opcode: OP.CONT, payload: 'b'.repeat(30000), fin: false},
    {opcode: OP.CONT, payload: 'c'.repeat(30000), fin: true},
  ], 1009);
  t.log(`fragments totalling 90000: client got 1009, backend saw ${r.backend.code}`);
});

h.test('invalid UTF-8 in a text message closes 1007', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);
  let r = await expectViolation(port, echo, 1,
                                [{opcode: OP.TEXT, payload: Buffer.from([0x68, 0x69, 0xc3, 0x28])}],
                                1007);
  t.log(`single frame: backend saw ${r.backend.code}`);
  // Truncated 3-byte sequence at a fragment boundary, followed by a non-continuation byte.
  r = await expectViolation(port, echo, 2, [
    {opcode: OP.TEXT, payload: Buffer.from([0x61, 0xe2, 0x82]), fin: false},
    {opcode: OP.CONT, payload: Buffer.from([0x28, 0x61]), fin: true},
  ], 1007);
  t.log(`split across fragments: backend saw ${r.backend.code}`);
});

h.test('unmasked client frame closes 1002', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);
  const r = await expectViolation(port, echo, 1,
                                  [{opcode: OP.TEXT, payload: 'not masked', mask: false}], 1002);
  t.log(`backend saw ${r.backend.code}`);
});

h.test('a client that never reads: the backend stalls and wsbridge RSS stays bounded',
       async (t) => {
  const TOTAL = 200 * MiB;
  const RSS_LIMIT = 64 * MiB;
  const STALL_REPORTS = 10;  // 10 progress reports (100 ms apart) without growth = stalled
  const echo = await h.startPeer('ws-echo.js');
  const {port, bridge} = await startRelay([echo.port], {logLevel: 'info',
                                                         env: h.smallQuarantineEnv()});
  const c = await h.rawConnect(port);
  assert.equal((await c.handshake('/')).status, 101);
  const id = await lastConnectionId(echo, 1);
  const rss = () => (bridge ? h.readRss(bridge.pid) : 0);
  const baseline = rss();
  let peak = baseline;

  c.pause();  // from now on the kernel buffers fill up and the proxy must stop reading
  c.sendText(JSON.stringify({cmd: 'stream', bytes: TOTAL, chunk: 64 * KiB}));
  let lastSent = -1;
  let flat = 0;
  const stalled = await echo.waitFor((o) => {
    if (o.event !== 'progress' || o.id !== id) return false;
    peak = Math.max(peak, rss());
    if (o.done) throw new Error('backend sent everything to a client that never read');
    flat = o.sent === lastSent && o.sent > 0 ? flat + 1 : 0;
    lastSent = o.sent;
    return flat >= STALL_REPORTS;
  }, 60000, 'stalled stream');
  peak = Math.max(peak, rss());
  t.log(`stalled after ${(stalled.sent / MiB).toFixed(1)} MiB of ${TOTAL / MiB} MiB; ` +
        `wsbridge RSS baseline ${(baseline / MiB).toFixed(1)} MiB, peak ` +
        `${(peak / MiB).toFixed(1)} MiB (bound ${RSS_LIMIT / MiB} MiB)`);
  assert.ok(stalled.sent < TOTAL / 4, `backend sent ${stalled.sent} bytes, not << ${TOTAL}`);
  if (bridge) assert.ok(peak < RSS_LIMIT, `wsbridge RSS peak ${peak} >= ${RSS_LIMIT}`);

  // Reading again drains everything: backpressure released, nothing lost.
  const stopWatch = echo.watch(() => {
    peak = Math.max(peak, rss());
  });
  c.resume();
  let received = 0;
  while (received < TOTAL) {
    const f = await c.readFrame(30000);
    assert.equal(f.opcode, OP.BINARY);
    received += f.payload.length;
  }
  stopWatch();
  assert.equal(received, TOTAL);
  await echo.waitFor((o) => o.event === 'progress' && o.id === id && o.done, 10000, 'done');
  t.log(`after resuming: all ${TOTAL / MiB} MiB arrived; RSS peak overall ` +
        `${(peak / MiB).toFixed(1)} MiB`);
  if (bridge) assert.ok(peak < RSS_LIMIT, `wsbridge RSS peak ${peak} >= ${RSS_LIMIT}`);
}, {timeout: 180000});

h.test('wss: a ws client with the self-signed CA echoes over TLS', async () => {
  const cert = h.makeCert();
  const echo = await h.startPeer('ws-echo.js', h.direct ? ['--tls-cert', cert.cert,
                                                           '--tls-key', cert.key] : []);
  const {port} = await startRelay([echo.port], {tlsCert: cert.cert, tlsKey: cert.key});
  const ws = await h.wsConnect(`wss://127.0.0.1:${port}/`, [], {ca: cert.pem});
  assert.equal(ws._socket.getPeerCertificate().fingerprint256, cert.fingerprint256);
  const q = h.messageQueue(ws);
  const big = Buffer.alloc(300 * KiB);
  for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
  const msgs = [
    {data: Buffer.from('hello over tls'), isBinary: false},
    {data: big, isBinary: true},
    {data: Buffer.from('ünïcödé '.repeat(20000)), isBinary: false},
    {data: Buffer.alloc(0), isBinary: true},
  ];
  for (const m of msgs) ws.send(m.data, {binary: m.isBinary});
  for (const m of msgs) {
    const got = await q.next();
    assert.equal(got.isBinary, m.isBinary);
    h.assertBytesEqual(got.data, m.data, 'wss echo');
  }
  const closed = h.once(ws, 'close');
  ws.close(1000, 'done');
  const [code] = await closed;
  assert.equal(code, 1000);
});

h.test('backend killed: the client gets close 1011', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const q = h.messageQueue(ws);
  ws.send('before');
  assert.equal((await q.next()).data.toString(), 'before');
  const closed = h.once(ws, 'close');
  await echo.kill('SIGKILL');
  const [code] = await closed;
  assert.equal(code, h.direct ? 1006 : 1011);
});

h.test('client vanishes (reset or FIN without close): the backend sees close 1001', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port} = await startRelay([echo.port]);
  const expected = h.direct ? 1006 : 1001;

  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const id1 = await lastConnectionId(echo, 1);
  const q = h.messageQueue(ws);
  ws.send('before reset');
  assert.equal((await q.next()).data.toString(), 'before reset');
  ws._socket.resetAndDestroy();
  assert.equal((await backendClose(echo, id1)).code, expected, 'after a TCP reset');

  const c = await h.rawConnect(port);
  assert.equal((await c.handshake('/')).status, 101);
  const id2 = await lastConnectionId(echo, 2);
  c.socket.end();  // FIN, no close frame
  assert.equal((await backendClose(echo, id2)).code, expected, 'after a FIN');
});
