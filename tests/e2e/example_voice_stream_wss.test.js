// examples/voice-stream-wss end to end: certificates from the example's make-certs.sh, its plain
// ws:// backend and wsbridge on its own wsbridge.toml terminating TLS; the example's client
// streams over wss:// with a dropped network and a reconnect, and each failure users meet
// (bad/missing token, untrusted CA, ws:// to the TLS port, wss:// to the plain backend, backend
// down) gets exactly the client output and wsbridge log the README shows.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./lib/harness');

const {assert} = h;
const EXAMPLE = path.join(__dirname, '..', '..', 'examples', 'voice-stream-wss');
const STREAM = '/api/realtime-voice/stream';

process.env.JWT_SECRET = 'e2e-voice-stream-secret';  // before jwt.js reads it
const jwt = require(path.join(EXAMPLE, 'jwt'));
const {streamVoice} = require(path.join(EXAMPLE, 'client'));

// A fresh CA and server certificate from the example's own script (the case's temp dir).
function makeCerts() {
  const dir = h.tmpDir('wsb-e2e-voice-certs-');
  const r = childProcess.spawnSync(path.join(EXAMPLE, 'make-certs.sh'), [dir],
                                   {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`make-certs.sh failed: ${r.stderr}`);
  return {dir, ca: fs.readFileSync(path.join(dir, 'ca.pem'))};
}

// The access log line is written when wsbridge finishes the close, just after the client saw it.
async function waitForLog(bridge, re, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!re.test(bridge.logs())) {
    if (Date.now() > deadline) throw new Error(`no log line ${re}:\n${bridge.logs(20)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startExample({backend = true} = {}) {
  const {dir, ca} = makeCerts();
  const server = backend ?
      await h.startPeer(path.join(EXAMPLE, 'backend.js'), [], {env: {PORT: '0'}}) :
      null;
  const port = await h.freePort();
  const toml = fs.readFileSync(path.join(EXAMPLE, 'wsbridge.toml'), 'utf8');
  const bridge = await h.startWsbridge(toml, {
    env: {
      WSS_PORT: String(port),
      VOICE_BACKEND_PORT: String(server ? server.port : await h.freePort()),
      CERT_DIR: dir,
    },
    waitFor: [{host: '127.0.0.1', port}],
  });
  return {server, bridge, port, ca, dir, url: `wss://localhost:${port}${STREAM}`};
}

// Runs the client; resolves {lines, result | error}.
async function run(opts) {
  const lines = [];
  const outcome = await h.withTimeout(
      streamVoice({intervalMs: 20, print: (l) => lines.push(l), ...opts})
          .then((result) => ({result}), (error) => ({error: error.message})),
      20000, 'the client');
  return {lines, ...outcome};
}

const partials = (n) => Array.from({length: n}, (_, i) =>
  `partial {"type":"partial","text":"chunk ${i + 1}: 3200 bytes"}`);

// ---------------------------------------------------------------------------------------------

h.test('wss:// stream: token checked by wsbridge, user forwarded, a dropped network, ' +
           'reconnect and carry on, close 1000 done', async () => {
  const {server, url, ca, bridge} = await startExample();
  const {lines, result, error} =
      await run({url, ca, token: jwt.mint('alice'), chunks: 7, dropAfter: 3});
  assert.equal(error, undefined);
  const final = '{"type":"final","text":"heard 12800 bytes","chunks":4,"bytes":12800}';
  assert.deepEqual(lines, [
    'open', 'ready {"type":"ready","user":"alice"}', ...partials(3),
    'network lost (demo: the socket is dropped without a close)', 'closed 1006',
    'reconnecting (attempt 1)',
    'open', 'ready {"type":"ready","user":"alice"}', ...partials(4),
    `final ${final}`, 'closed 1000 done',
  ]);
  assert.deepEqual(result, JSON.parse(final));
  // The backend saw the user wsbridge verified, over what was https to the client.
  const conns = server.lines.filter((o) => o.event === 'connection');
  assert.deepEqual(conns, [{event: 'connection', user: 'alice', proto: 'https'},
                           {event: 'connection', user: 'alice', proto: 'https'}]);
  const closes = await server.waitFor((o) => o.event === 'close' && o.code === 1000);
  assert.equal(closes.user, 'alice');
  assert.deepEqual(server.lines.filter((o) => o.event === 'close').map((o) => o.code),
                   [1001, 1000]);  // the dropped client's upstream gets 1001 from wsbridge
  await waitForLog(bridge, new RegExp('route=/api/realtime-voice/stream client=127\\.0\\.0\\.1 ' +
                                      'user="alice" .*close_code=1006 closed_by=client'));
  await waitForLog(bridge, /user="alice" .*close_code=1000 closed_by=upstream reason="done"/);
}, {timeout: 30000});

h.test('bad, expired and missing tokens: 403 / 401 from wsbridge, logged, the backend sees ' +
           'nothing, no retry', async () => {
  const {server, url, ca, bridge} = await startExample();
  const cases = [
    ['not.a.jwt', 403, '{"error":"invalid token"}'],
    [jwt.mint('bob', {ttlSeconds: -10}), 403, '{"error":"invalid token"}'],
    [undefined, 401, '{"error":"missing token"}'],
  ];
  for (const [token, status, body] of cases) {
    const {lines, error} = await run({url, ca, token});
    assert.deepEqual(lines, [`refused: HTTP ${status} ${body}`]);
    assert.equal(error, `refused (HTTP ${status})`);
  }
  assert.ok(!server.lines.some((o) => o.event === 'connection'), 'a refused client got through');
  await waitForLog(bridge, /status=401/);
  const refusals = bridge.logs().split('\n').filter((l) => / status=\d+ /.test(l))
                       .map((l) => / status=(\d+) closed_by=(\w+)/.exec(l).slice(1).join(' '));
  assert.deepEqual(refusals, ['403 wsbridge', '403 wsbridge', '401 wsbridge']);
  assert.ok(!bridge.logs().includes('not.a.jwt'), 'a token reached the log');
}, {timeout: 30000});

h.test('TLS failures: untrusted CA, ws:// to the TLS port, wss:// to the plain backend',
       async () => {
  const {server, url, port} = await startExample();
  const token = jwt.mint('carol');
  // No CA given: the demo CA is not trusted, the handshake fails in the client (1006).
  const untrusted = await run({url, token});
  assert.deepEqual(untrusted.lines, [
    'error: UNABLE_TO_VERIFY_LEAF_SIGNATURE unable to verify the first certificate',
    'closed 1006',
  ]);
  assert.equal(untrusted.error, 'TLS handshake failed');
  // Plain ws:// to the wss:// port: wsbridge drops the non-TLS bytes, the client sees 1006.
  const plain = await run({url: `ws://localhost:${port}${STREAM}`, token});
  assert.deepEqual(plain.lines, [
    'error: ECONNRESET read ECONNRESET', 'closed 1006', 'reconnecting (attempt 1)',
    'error: ECONNRESET read ECONNRESET', 'closed 1006', 'reconnecting (attempt 2)',
    'error: ECONNRESET read ECONNRESET', 'closed 1006', 'reconnecting (attempt 3)',
    'error: ECONNRESET read ECONNRESET', 'closed 1006',
  ]);
  assert.equal(plain.error, 'no connection after 3 attempts');
  // wss:// straight at the plain backend (what a client without wsbridge would need): no TLS.
  const direct = await run({url: `wss://127.0.0.1:${server.port}${STREAM}`, token});
  assert.match(direct.lines[0], /^error: EPROTO .*wrong version number/);
  assert.deepEqual(direct.lines.slice(1), ['closed 1006']);
  assert.equal(direct.error, 'TLS handshake failed');
  // And plain ws:// straight at the backend: it refuses what did not come through wsbridge.
  const bypass = await run({url: `ws://127.0.0.1:${server.port}${STREAM}`, token});
  assert.deepEqual(bypass.lines, ['refused: HTTP 401 Unauthorized']);
  assert.ok(!server.lines.some((o) => o.event === 'connection'), 'the backend took a client');
}, {timeout: 30000});

h.test('backend down: 502 naming the cluster, a warning in the log, the client retries and ' +
           'gives up', async () => {
  const {url, ca, bridge} = await startExample({backend: false});
  const {lines, error} = await run({url, ca, token: jwt.mint('dave')});
  const refused = 'refused: HTTP 502 {"error":"no upstream available","cluster":"voice"}';
  assert.deepEqual(lines, [refused, 'reconnecting (attempt 1)', refused,
                           'reconnecting (attempt 2)', refused, 'reconnecting (attempt 3)',
                           refused]);
  assert.equal(error, 'no connection after 3 attempts');
  await waitForLog(bridge, new RegExp("\\[warning\\] 127\\.0\\.0\\.1:\\d+: cluster 'voice': " +
                                      'no endpoint reachable \\(127\\.0\\.0\\.1:\\d+: ' +
                                      'connection failed\\)'));
  await waitForLog(bridge, /user="dave" .*status=502 closed_by=wsbridge/);
}, {timeout: 30000});

h.test('the command-line client as run.sh prints it', async () => {
  const {url, dir} = await startExample();
  const out = await new Promise((resolve) => {
    childProcess.execFile(process.execPath, [path.join(EXAMPLE, 'client.js'), '--url', url,
                                             '--ca', path.join(dir, 'ca.pem'), '--user', 'erin',
                                             '--chunks', '2'],
                          {timeout: 15000},
                          (err, stdout) => resolve({code: err?.code ?? 0, stdout}));
  });
  assert.equal(out.code, 0, out.stdout);
  assert.deepEqual(out.stdout.trim().split('\n'), [
    'open', 'ready {"type":"ready","user":"erin"}', ...partials(2),
    'final {"type":"final","text":"heard 6400 bytes","chunks":2,"bytes":6400}',
    'closed 1000 done', 'done',
  ]);
}, {timeout: 30000});
