// examples/miniapp-voice end to end: the example's socket.io server and wsbridge on the
// example's own wsbridge.toml, driven by its two clients (the hand-rolled Engine.IO one through
// the pass-through route, the envelope one through translate up): every line each client
// prints, a dropped network and its reconnect, refused tokens, and the CLIs as users run them.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

const {assert} = h;
const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'miniapp-voice');

// Before the example's jwt.js reads it: the same secret for the clients, server and wsbridge.
process.env.JWT_SECRET = 'e2e-miniapp-voice-secret';
process.env.VOICE_GATEWAY_KEY = 'e2e-gateway-key';
const jwt = require(path.join(EXAMPLE, 'jwt'));
const {runVoiceSession} = require(path.join(EXAMPLE, 'voice-app'));
const {EioSocket} = require(path.join(EXAMPLE, 'client-eio'));
const {EnvelopeSocket} = require(path.join(EXAMPLE, 'client-envelope'));

// The server with a short heartbeat (so a session spans several pings) and wsbridge on the
// example's config, its ${PORT}s pointed at free ports.
async function startExample() {
  const server = await h.startPeer(path.join(EXAMPLE, 'server.js'), [], {
    env: {PORT: '0', PING_INTERVAL_MS: '300', PING_TIMEOUT_MS: '300'},
  });
  const port = await h.freePort();
  const toml = fs.readFileSync(path.join(EXAMPLE, 'wsbridge.toml'), 'utf8');
  const bridge = await h.startWsbridge(toml, {
    env: {WSBRIDGE_PORT: String(port), VOICE_SERVER_PORT: String(server.port)},
    waitFor: [{host: '127.0.0.1', port}],
  });
  return {server, bridge, port, base: `ws://127.0.0.1:${port}`};
}

// Runs the app on `socket`; resolves {lines, result | error} once it finished and the socket
// is closed for good.
async function session(socket, opts) {
  h.defer(() => socket.close());
  const lines = [];
  socket.on('transport-error', (msg) => lines.push(`transport error: ${msg}`));
  socket.on('connect_error', (err) => lines.push(`connect_error ${JSON.stringify(err)}`));
  const closed = new Promise((resolve) => socket.on('give-up', resolve));
  const outcome = await h.withTimeout(
      runVoiceSession(socket, {intervalMs: 20, print: (l) => lines.push(l), ...opts})
          .then((result) => ({result}), (error) => ({error: error.message})),
      15000, 'the voice session');
  await h.withTimeout(closed, 5000, 'the final close');
  return {lines, ...outcome};
}

const results = (from, to) => {
  const out = [];
  for (let i = from; i <= to; i++) {
    out.push(`result {"text":"chunk ${i}: 3200 bytes","isFinal":false}`);
  }
  return out;
};

// What the app prints for `chunks` chunks dropped after `dropAfter`, up to `stopped`.
function expectedTranscript(chunks, dropAfter, user, lostLine) {
  const rest = chunks - dropAfter;
  return [
    'connected',
    `ready {"user":"${user}"}`,
    ...results(1, dropAfter),
    'network lost (demo: the socket is dropped without a close)',
    lostLine,
    'reconnecting (attempt 1)',
    'connected',
    `ready {"user":"${user}"}`,
    ...results(1, rest),
    `result {"text":"heard ${rest * 3200} bytes","isFinal":true}`,
    `stopped {"chunks":${rest},"bytes":${rest * 3200}}`,
  ];
}

// ---------------------------------------------------------------------------------------------

h.test('hand-rolled Engine.IO client: token in start, audio results, pongs, a dropped network, ' +
           'reconnect and carry on, stop', async () => {
  const {server, base} = await startExample();
  const socket = new EioSocket({base});
  // 150 ms pacing over 6 chunks spans several 300 ms pings: the client must answer each with 3.
  const {lines, result, error} =
      await session(socket, {token: jwt.mint('alice'), chunks: 6, dropAfter: 2, intervalMs: 150});
  assert.equal(error, undefined);
  const lost = 'disconnected (transport close 1006)';
  assert.deepEqual(lines, [...expectedTranscript(6, 2, 'alice', lost),
                           'disconnected (io client disconnect)']);
  assert.deepEqual(result, {chunks: 4, bytes: 12800});

  // The server saw two sockets, both authenticated by itself from the token in `start`.
  const seen = server.lines.filter((o) => o.event === 'connection' || o.event === 'start' ||
                                          o.event === 'stop');
  assert.deepEqual(seen.map((o) => [o.event, o.via ?? o.user]),
                   [['connection', 'app-auth'], ['start', 'alice'], ['connection', 'app-auth'],
                    ['start', 'alice'], ['stop', 'alice']]);
  const dropped = await server.waitFor((o) => o.event === 'disconnect');
  assert.equal(dropped.reason, 'transport close');
  const left = await server.waitFor((o) => o.event === 'disconnect' && o.sid !== dropped.sid);
  assert.equal(left.reason, 'client namespace disconnect');
  assert.ok(!server.lines.some((o) => o.reason === 'ping timeout'), 'a pong was missed');
}, {timeout: 30000});

h.test('hand-rolled client with a bad or missing token: error event, server disconnect, no ' +
           'reconnect', async () => {
  const {base} = await startExample();
  for (const [token, message] of [['not.a.token', 'invalid token'],
                                  [jwt.mint('bob', {ttlSeconds: -10}), 'invalid token'],
                                  [undefined, 'missing token']]) {
    const {lines, result, error} = await session(new EioSocket({base}), {token});
    assert.equal(result, undefined);
    assert.deepEqual(lines, ['connected', `error {"message":"${message}"}`,
                             'disconnected (io server disconnect)']);
    // socket.io closes its Engine.IO websocket with an empty close frame (1005), relayed as is.
    assert.equal(error, 'closed (1005)');
  }
}, {timeout: 30000});

h.test('envelope client: JWT checked by wsbridge, binary audio, the stop ack, a dropped ' +
           'network, reconnect and carry on', async () => {
  const {server, base} = await startExample();
  const socket = new EnvelopeSocket({base, token: jwt.mint('carol')});
  const {lines, result, error} =
      await session(socket, {chunks: 7, dropAfter: 3, useAck: true});
  assert.equal(error, undefined);
  assert.deepEqual(lines, [...expectedTranscript(7, 3, 'carol', 'disconnected (close 1006)'),
                           'ack stop {"chunks":4,"bytes":12800}', 'disconnected (close 1000)']);
  assert.deepEqual(result, {chunks: 4, bytes: 12800});
  // The server trusted wsbridge's word (the gateway key) for the user; `start` had no token.
  const seen = server.lines.filter((o) => o.event === 'connection');
  assert.deepEqual(seen.map((o) => [o.via, o.user]),
                   [['wsbridge-auth', 'carol'], ['wsbridge-auth', 'carol']]);
}, {timeout: 30000});

h.test('envelope client with a bad, expired or missing token: 403 / 401 from wsbridge, the ' +
           'server sees nothing, no reconnect', async () => {
  const {server, base} = await startExample();
  const cases = [
    ['not.a.token', 'HTTP 403 {"error":"invalid token"}'],
    [jwt.mint('dave', {ttlSeconds: -10}), 'HTTP 403 {"error":"invalid token"}'],
    [jwt.mint('dave', {secret: 'someone else'}), 'HTTP 403 {"error":"invalid token"}'],
    [undefined, 'HTTP 401 {"error":"missing token"}'],
  ];
  for (const [token, refusal] of cases) {
    const {lines, error} = await session(new EnvelopeSocket({base, token}), {});
    assert.deepEqual(lines, [`transport error: ${refusal}`]);
    assert.equal(error, 'closed (1006)');
  }
  assert.ok(!server.lines.some((o) => o.event === 'connection'), 'a refused client got through');
}, {timeout: 30000});

h.test('both command-line clients as run.sh prints them, with --drop-after', async () => {
  const {base} = await startExample();
  const runCli = (file, args) => new Promise((resolve) => {
    childProcess.execFile(process.execPath, [path.join(EXAMPLE, file), '--base', base, ...args],
                          {timeout: 15000}, (err, stdout) => resolve({code: err?.code ?? 0,
                                                                      stdout}));
  });
  const [eio, envelope] = await Promise.all([
    runCli('client-eio.js', ['--user', 'erin', '--chunks', '4', '--drop-after', '1']),
    runCli('client-envelope.js', ['--user', 'frank', '--chunks', '4', '--drop-after', '1',
                                  '--ack']),
  ]);
  assert.equal(eio.code, 0, eio.stdout);
  assert.deepEqual(eio.stdout.trim().split('\n'),
                   [...expectedTranscript(4, 1, 'erin', 'disconnected (transport close 1006)'),
                    'done', 'disconnected (io client disconnect)']);
  assert.equal(envelope.code, 0, envelope.stdout);
  assert.deepEqual(envelope.stdout.trim().split('\n'),
                   [...expectedTranscript(4, 1, 'frank', 'disconnected (close 1006)'),
                    'ack stop {"chunks":3,"bytes":9600}', 'done', 'disconnected (close 1000)']);
  // A refused token: the CLI says why and exits 1.
  const refused = await runCli('client-envelope.js', ['--token', 'x.y.z']);
  assert.equal(refused.code, 1);
  assert.deepEqual(refused.stdout.trim().split('\n'),
                   ['transport error: HTTP 403 {"error":"invalid token"}',
                    'gave up: closed (1006)']);
}, {timeout: 30000});
