// Translate up end to end: a bare `ws` client speaking the JSON envelope through wsbridge to a
// real socket.io 4.8 server (peers/sio-server.js): events and acks both ways, namespaces,
// CONNECT auth from the query, binary audio streaming, bad envelopes and close codes.
'use strict';

const crypto = require('node:crypto');
const h = require('./lib/harness');
const sio = require('./lib/sio');

const {assert} = h;

// A socket.io server and wsbridge translating for it; `route` lines go into the route table.
async function startTranslateUp({serverArgs = [], route = ''} = {}) {
  const server = await h.startPeer('sio-server.js', serverArgs);
  const port = await h.freePort();
  const bridge = await h.startWsbridge(sio.sioConfig({
    port,
    endpoints: [server.port],
    downstream: 'websocket',
    routeExtra: `binary_event = "audio"\n${route}`,
  }));
  return {server, port, bridge, url: `ws://127.0.0.1:${port}/ws`};
}

// A connected envelope client: q.next() -> {data, isBinary}. The queue listens before the
// upgrade completes, since wsbridge may send right behind its 101 (connect_error_as_event).
async function connectClient(url) {
  const ws = new h.WebSocket(url, {perMessageDeflate: false});
  h.defer(() => ws.terminate());
  const q = h.messageQueue(ws);
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({code, reason: reason.toString()}));
  });
  await h.withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => {
      reject(new Error(`connect ${url}: HTTP ${res.statusCode}`));
    });
  }), 10000, `connect ${url}`);
  ws.on('error', () => {});
  return {ws, q, closed};
}

async function nextText(q, ms = 10000) {
  const m = await q.next(ms);
  assert.equal(m.isBinary, false, `expected text, got ${m.data.length} binary bytes`);
  return m.data.toString('utf8');
}

function sendJson(ws, obj) {
  ws.send(JSON.stringify(obj));
}

// ---------------------------------------------------------------------------------------------

h.test('envelope events both ways, acks both ways, server-initiated events', async () => {
  const {server, url} = await startTranslateUp();
  const {ws, q} = await connectClient(url);
  const conn = await server.waitFor((o) => o.event === 'connection');
  assert.equal(conn.nsp, '/');
  assert.deepEqual(conn.auth, {});

  // emit: one argument is "data".
  ws.send('{"event":"echo","data":{"text":"hi","emoji":"😀"}}');
  assert.equal(await nextText(q), '{"event":"echo","data":{"text":"hi","emoji":"😀"}}');
  const got = await server.waitFor((o) => o.event === 'received' && o.name === 'echo');
  assert.deepEqual(got.args, [{text: 'hi', emoji: '😀'}]);
  assert.equal(got.ack, false);

  // Several arguments are "args"; none is neither.
  ws.send('{"event":"echo","args":[1,"two",[3],null]}');
  assert.equal(await nextText(q), '{"event":"echo","args":[1,"two",[3],null]}');
  ws.send('{"event":"echo"}');
  assert.equal(await nextText(q), '{"event":"echo"}');

  // emit with ack: the answer carries the client's own ack id, whatever the upstream used.
  ws.send('{"event":"echo","args":[1,"two"],"ack":7}');
  assert.equal(await nextText(q), '{"ack":7,"args":[1,"two"]}');
  ws.send('{"event":"echo","data":"x","ack":123456789012}');
  assert.equal(await nextText(q), '{"ack":123456789012,"data":"x"}');
  ws.send('{"event":"whoami","ack":1}');
  const who = JSON.parse(await nextText(q));
  assert.equal(who.ack, 1);
  assert.equal(who.data.nsp, '/');
  assert.equal(who.data.transport, 'websocket');

  // Server -> client events.
  ws.send('{"event":"emit","args":["news",{"n":1},"x"]}');
  assert.equal(await nextText(q), '{"event":"news","args":[{"n":1},"x"]}');
  ws.send('{"event":"emit","args":["tick"]}');
  assert.equal(await nextText(q), '{"event":"tick"}');

  // Server emit with ack, answered by the client envelope.
  ws.send('{"event":"ask","data":"ready?"}');
  const question = JSON.parse(await nextText(q));
  assert.equal(question.event, 'question');
  assert.equal(question.data, 'ready?');
  assert.ok(Number.isInteger(question.ack), `no ack id: ${JSON.stringify(question)}`);
  sendJson(ws, {ack: question.ack, args: ['yes', 2]});
  const answer = await server.waitFor((o) => o.event === 'answer');
  assert.deepEqual(answer.args, ['yes', 2]);
  assert.equal(await nextText(q), '{"event":"answered","args":["yes",2]}');

  // A non-envelope text goes as the route's text_event ("message").
  ws.send('plain words');
  const plain = await server.waitFor((o) => o.event === 'received' && o.name === 'message');
  assert.deepEqual(plain.args, ['plain words']);
  assert.equal(q.length, 0);
}, {timeout: 30000});

h.test('route namespace "/admin": the client lives in /admin only', async () => {
  const {server, url} = await startTranslateUp({route: 'namespace = "/admin"\n'});
  const {ws, q} = await connectClient(url);
  const conn = await server.waitFor((o) => o.event === 'connection');
  assert.equal(conn.nsp, '/admin');
  ws.send('{"event":"whoami","ack":3}');
  const who = JSON.parse(await nextText(q));
  assert.equal(who.ack, 3);
  assert.equal(who.data.nsp, '/admin');
  ws.send('{"event":"echo","data":"in admin"}');
  assert.equal(await nextText(q), '{"event":"echo","data":"in admin"}');
  const got = await server.waitFor((o) => o.event === 'received' && o.name === 'echo');
  assert.equal(got.nsp, '/admin');
  assert.equal(server.lines.filter((o) => o.event === 'connection').length, 1);
}, {timeout: 30000});

h.test('upstream_auth from the query: accepted with the right token, 403 with the message ' +
           'otherwise', async () => {
  const {server, url} = await startTranslateUp({
    serverArgs: ['--auth-nsp', '/secure', '--auth-token', 's3cret'],
    route: 'namespace = "/secure"\nupstream_auth = { token = "{query.token}" }\n',
  });
  const {ws, q} = await connectClient(`${url}?token=s3cret&room=7`);
  const conn = await server.waitFor((o) => o.event === 'connection');
  assert.equal(conn.nsp, '/secure');
  assert.deepEqual(conn.auth, {token: 's3cret'});
  assert.equal(conn.query.room, '7');  // the app still sees the client's query
  ws.send('{"event":"echo","data":"authed","ack":0}');
  assert.equal(await nextText(q), '{"ack":0,"data":"authed"}');

  for (const query of ['?token=wrong', '']) {
    const err = await h.wsConnect(`${url}${query}`).then(() => null, (e) => e);
    assert.ok(err, `connected with ${query || 'no token'}`);
    assert.equal(err.status, 403, err.message);
    assert.equal(err.body, '{"error":"invalid token"}');
  }
  const refused = server.lines.filter((o) => o.event === 'refused');
  assert.deepEqual(refused.map((o) => o.auth), [{token: 'wrong'}, {token: ''}]);
}, {timeout: 30000});

h.test('connect_error_as_event: a refused CONNECT is a 101, a connect_error event, close 1008',
       async () => {
  const {url} = await startTranslateUp({
    serverArgs: ['--auth-nsp', '/secure', '--auth-token', 's3cret'],
    route: 'namespace = "/secure"\nupstream_auth = { token = "{query.token}" }\n' +
               'connect_error_as_event = true\n',
  });
  const {q, closed} = await connectClient(`${url}?token=nope`);
  assert.equal(await nextText(q), '{"event":"connect_error","data":{"message":"invalid token"}}');
  const c = await h.withTimeout(closed, 5000, 'the close');
  assert.equal(c.code, 1008);
  assert.equal(c.reason, 'invalid token');
}, {timeout: 30000});

h.test('binary: 500 audio chunks of 3200 bytes at 50/s arrive in order; server binary comes ' +
           'back as frames or inline base64', async (t) => {
  const {server, url} = await startTranslateUp();
  const {ws, q} = await connectClient(url);
  await server.waitFor((o) => o.event === 'connection');

  // Server -> client: the binary_event with one binary arg is a binary frame, byte for byte.
  ws.send('{"event":"emit","args":["audio",{"_base64":"AAECAwT/"}]}');
  const frame = await q.next();
  assert.equal(frame.isBinary, true);
  h.assertBytesEqual(frame.data, Buffer.from([0, 1, 2, 3, 4, 0xff]), 'audio frame');
  // Anything else with binary is inline base64.
  ws.send('{"event":"emit","args":["blob",{"_base64":"AAECAwT/"},"tail"]}');
  assert.equal(await nextText(q), '{"event":"blob","args":[{"_base64":"AAECAwT/"},"tail"]}');
  ws.send('{"event":"emit","args":["audio",{"_base64":"AQI="},{"_base64":"AwQ="}]}');
  assert.equal(await nextText(q),
               '{"event":"audio","args":[{"_base64":"AQI="},{"_base64":"AwQ="}]}');
  // Client base64 reaches the server as real binary, and an ack with binary comes back inline.
  ws.send('{"event":"echo","data":{"pcm":{"_base64":"AAECAw=="}},"ack":5}');
  assert.equal(await nextText(q), '{"ack":5,"data":{"pcm":{"_base64":"AAECAw=="}}}');
  const echoed = await server.waitFor((o) => o.event === 'received' && o.name === 'echo');
  assert.deepEqual(echoed.args, [{pcm: {_bin: 'AAECAw=='}}]);

  // Client -> server: 500 binary frames, paced at 50 per second as a microphone would.
  const chunks = 500;
  const size = 3200;
  const hash = crypto.createHash('sha256');
  const started = Date.now();
  for (let i = 0; i < chunks; i++) {
    const chunk = crypto.randomBytes(size);
    chunk.writeUInt32BE(i, 0);  // a sequence number, so reordering changes the hash
    hash.update(chunk);
    ws.send(chunk, {binary: true});
    const due = started + (i + 1) * 20;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));  // pacing
  }
  ws.send('{"event":"audio-end","ack":42}');
  const summary = JSON.parse(await nextText(q, 15000));
  const secs = (Date.now() - started) / 1000;
  assert.deepEqual(summary, {ack: 42, data: {chunks, bytes: chunks * size,
                                             sha256: hash.digest('hex')}});
  t.log(`${chunks} chunks (${(chunks * size / 1024).toFixed(0)} KiB) in ${secs.toFixed(2)} s, ` +
        'all in order');
  assert.equal(q.length, 0);
}, {timeout: 60000});

h.test('a bad envelope gets an error event and the connection stays up', async () => {
  const {url} = await startTranslateUp();
  const {ws, q} = await connectClient(url);
  const bad = [
    ['{"data":1}', 'missing \\"event\\"'],
    ['{"event":5}', '\\"event\\" must be a string'],
    ['{"event":"x","args":{}}', '\\"args\\" must be an array'],
    ['{"event":"x","ack":-1}', '\\"ack\\" must be a non-negative integer'],
  ];
  for (const [text, message] of bad) {
    ws.send(text);
    assert.equal(await nextText(q), `{"event":"error","data":{"message":"${message}"}}`, text);
  }
  ws.send('{"event":"echo","data":"still up"}');
  assert.equal(await nextText(q), '{"event":"echo","data":"still up"}');
}, {timeout: 30000});

h.test('server disconnect closes the client 1000; a killed server closes it 1011', async () => {
  const {server, url} = await startTranslateUp();
  const first = await connectClient(url);
  await server.waitFor((o) => o.event === 'connection');
  first.ws.send('{"event":"disconnect-me"}');
  const c1 = await h.withTimeout(first.closed, 5000, 'the close after disconnect');
  assert.equal(c1.code, 1000);
  const gone = await server.waitFor((o) => o.event === 'disconnect');
  assert.equal(gone.reason, 'server namespace disconnect');

  const second = await connectClient(url);
  await server.waitFor((o) => o.event === 'connection' && o.sid !== gone.sid);
  second.ws.send('{"event":"echo","data":1,"ack":1}');
  assert.equal(await nextText(second.q), '{"ack":1,"data":1}');
  await server.kill('SIGKILL');
  const c2 = await h.withTimeout(second.closed, 5000, 'the close after the server died');
  assert.equal(c2.code, 1011);
}, {timeout: 30000});

h.test('the client leaving disconnects its upstream socket', async () => {
  const {server, url} = await startTranslateUp();
  const {ws, q} = await connectClient(url);
  ws.send('{"event":"echo","data":1,"ack":1}');
  assert.equal(await nextText(q), '{"ack":1,"data":1}');
  ws.close(1000, 'bye');
  const gone = await server.waitFor((o) => o.event === 'disconnect', 5000, 'the disconnect');
  assert.equal(gone.reason, 'client namespace disconnect');
}, {timeout: 30000});

h.test('reconnect = true: a killed server comes back; the client stays connected and every ' +
           'message it sent meanwhile arrives once, in order', async () => {
  const {server, url} = await startTranslateUp({
    route: 'reconnect = { initial_backoff = "50ms", max_backoff = "200ms" }\n',
  });
  const {ws, q, closed} = await connectClient(url);
  await server.waitFor((o) => o.event === 'connection');
  ws.send('{"event":"echo","data":"before","ack":1}');
  assert.equal(await nextText(q), '{"ack":1,"data":"before"}');

  await server.kill('SIGKILL');
  assert.equal(await nextText(q), '{"event":"reconnecting"}');
  // Sent while no server exists: held by wsbridge, in order, text and binary.
  const chunk = crypto.randomBytes(3200);
  for (let i = 0; i < 20; i++) ws.send(JSON.stringify({event: 'note', data: i}));
  ws.send(chunk);
  ws.send('{"event":"echo","data":"after","ack":2}');

  const again = await h.startPeer('sio-server.js', ['--port', server.port]);
  assert.equal(await nextText(q), '{"event":"reconnected"}');
  assert.equal(await nextText(q), '{"ack":2,"data":"after"}');
  await again.waitFor((o) => o.event === 'received' && o.name === 'echo', 5000, 'the last report');
  const received = again.lines.filter((o) => o.event === 'received');
  assert.deepEqual(received.filter((o) => o.name === 'note').map((o) => o.args[0]),
                   Array.from({length: 20}, (_, i) => i), 'notes: each once, in order');
  assert.deepEqual(received.map((o) => o.name).filter((n) => n !== 'audio'),
                   [...Array(20).fill('note'), 'echo'], 'nothing else, nothing twice');
  ws.send('{"event":"audio-end","ack":4}');
  const digest = crypto.createHash('sha256').update(chunk).digest('hex');
  assert.equal(await nextText(q), `{"ack":4,"data":{"chunks":1,"bytes":3200,"sha256":"${digest}"}}`);

  // Still one live connection, still translating.
  ws.send('{"event":"echo","data":3,"ack":3}');
  assert.equal(await nextText(q), '{"ack":3,"data":3}');
  assert.equal(again.lines.filter((o) => o.event === 'connection').length, 1);
  assert.equal(await Promise.race([closed, 'open']), 'open', 'the client was closed');
}, {timeout: 30000});

h.test('reconnect: beyond max_messages held the client is closed 1013; after ' +
           'max_attempts, 1011', async () => {
  const {server, url} = await startTranslateUp({
    route: 'reconnect = { initial_backoff = "50ms", max_backoff = "100ms", ' +
           'max_attempts = 3, max_messages = 5 }\n',
  });
  const first = await connectClient(url);
  const second = await connectClient(url);
  await server.waitFor((o) => o.event === 'connection');
  await server.kill('SIGKILL');
  assert.equal(await nextText(first.q), '{"event":"reconnecting"}');
  assert.equal(await nextText(second.q), '{"event":"reconnecting"}');
  for (let i = 0; i < 6; i++) first.ws.send(JSON.stringify({event: 'note', data: i}));
  const overflow = await h.withTimeout(first.closed, 5000, 'the close on overflow');
  assert.equal(overflow.code, 1013);
  const gaveUp = await h.withTimeout(second.closed, 10000, 'the close after max_attempts');
  assert.equal(gaveUp.code, 1011);
}, {timeout: 30000});
