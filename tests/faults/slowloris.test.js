// Slow and stalled clients: 2,000 connections that send their headers a byte a second get 408 at
// handshake_timeout while a normal client keeps upgrading fast; 2,000 upgraded connections that
// stop in the middle of a frame are closed by idle_timeout; and at a descriptor limit one source
// cannot take every descriptor (max_handshakes_per_ip), so a client from another address still
// upgrades.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const {execFileSync} = require('node:child_process');
const {performance} = require('node:perf_hooks');
const h = require('../e2e/lib/harness');
const admin = require('../e2e/lib/admin');
const leaks = require('./lib/leaks');

const {assert} = h;

const SLOW_HEAD = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n';
const SLOW_HEADER = 'X-Slowloris: ' + 'a'.repeat(200);  // dripped a byte a second, never ended
const TIMEOUT_408 = 'HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n' +
                    'Connection: close\r\nContent-Length: 29\r\n\r\n{"error":"handshake timeout"}';
const REFUSAL_BODY = '{"error":"too many connections in the handshake from this address"}';
const REFUSAL_429 = 'HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n' +
                    'Connection: close\r\nRetry-After: 1\r\n' +
                    `Content-Length: ${REFUSAL_BODY.length}\r\n\r\n${REFUSAL_BODY}`;

// The CI's sanitizer run (ASAN_OPTIONS set) is two to three times slower: the latency bound
// that is the point of case 1 holds for the release build, and is 3x under a sanitizer. An ASan
// build also keeps freed memory in a quarantine (256 MiB), which would swamp the RSS check:
// wsbridge runs with a 1 MiB one (h.smallQuarantineEnv).
const {SANITIZED} = h;
const P99_BOUND_MS = SANITIZED ? 300 : 100;
// Even so, ASan's allocator and shadow memory grow 13-16 MiB with thousands of connections and
// keep it (measured); there LeakSanitizer, at wsbridge's exit, is the leak check that counts.
const rssMargin = (release) => (SANITIZED ? 32 << 20 : release);

// This process holds thousands of sockets at once.
function raiseOwnFdLimit(wanted) {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const soft = Number(/Max open files\s+(\d+)/.exec(limits)[1]);
  if (soft < wanted) {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`]);
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const f = (v) => v.toFixed(0);
  return `min ${f(s[0])} ms, median ${f(percentile(s, 0.5))} ms, ` +
         `p99 ${f(percentile(s, 0.99))} ms, ` +
         `max ${f(s[s.length - 1])} ms`;
}

// Writes the next header byte to every slow connection once a second.
class Drip {
  constructor() {
    this.open = new Set();
    this.timer = setInterval(() => {
      for (const c of this.open) {
        if (c.dripped < SLOW_HEADER.length) c.socket.write(SLOW_HEADER[c.dripped++]);
      }
    }, 1000);
    h.defer(() => this.stop());
  }
  stop() {
    clearInterval(this.timer);
  }
}

// A slowloris connection: the request line and Host at once, then one header byte a second and
// never the blank line. `connected` resolves on connect (or close), `ended` with what it got.
function slowConnection(port, drip, localAddress) {
  const c = {socket: null, chunks: [], dripped: 0, connectedAt: null, endedAt: null, error: null};
  c.socket = net.connect({host: '127.0.0.1', port, localAddress});
  h.defer(() => c.socket.destroy());
  c.connected = new Promise((resolve) => {
    c.socket.once('connect', () => {
      c.connectedAt = performance.now();
      c.socket.write(SLOW_HEAD);
      drip.open.add(c);
      resolve(c);
    });
    c.socket.once('close', () => resolve(c));
  });
  c.ended = new Promise((resolve) => {
    c.socket.on('data', (d) => c.chunks.push(d));
    c.socket.on('error', (err) => (c.error = err.code || err.message));
    c.socket.once('close', () => {
      c.endedAt = performance.now();
      drip.open.delete(c);
      c.received = Buffer.concat(c.chunks).toString('latin1');
      resolve(c);
    });
  });
  return c;
}

// Opens `count` slow connections, `batch` connecting at a time (the listen backlog is 1024).
async function openSlow(port, drip, count, batch, localAddress) {
  const all = [];
  for (let i = 0; i < count; i += batch) {
    const group = [];
    for (let j = i; j < Math.min(count, i + batch); j++) {
      group.push(slowConnection(port, drip, localAddress));
    }
    await Promise.all(group.map((c) => c.connected));
    all.push(...group);
  }
  return all;
}

// One WebSocket upgrade from `localAddress`, timed from connect() to the 101; checks the accept
// key and, with `echo`, one message round trip; then closes. Returns the milliseconds to the 101.
async function timedUpgrade(port, {localAddress, echo = false} = {}) {
  const started = performance.now();
  const socket = net.connect({host: '127.0.0.1', port, localAddress});
  h.defer(() => socket.destroy());
  socket.setNoDelay(true);
  await h.once(socket, 'connect', 5000);
  const client = new h.RawClient(socket);
  const res = await client.handshake('/', {}, 5000);
  const elapsed = performance.now() - started;
  assert.equal(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
  assert.equal(res.headers['sec-websocket-accept'], res.accept);
  if (echo) {
    client.sendText('through');
    const m = await client.readMessage(5000);
    assert.equal(m.payload.toString(), 'through');
  }
  client.sendClose(1000);
  socket.destroy();
  return elapsed;
}

// Repeats timedUpgrade until `stop()` says so; resolves with each {ms, at} (at: when it began).
// Marked handled at once: a failure surfaces where the case awaits it.
function upgradeLoop(port, stop, opts) {
  const loop = upgradeLoopInner(port, stop, opts);
  loop.catch(() => {});
  return loop;
}

async function upgradeLoopInner(port, stop, opts) {
  const latencies = [];
  while (!stop()) {
    const at = performance.now();
    latencies.push({ms: await timedUpgrade(port, opts), at});
    await new Promise((resolve) => setTimeout(resolve, 10));  // pacing, not synchronisation
  }
  return latencies;
}

// The three slowest samples, with when they began relative to `from`.
function slowest(samples, from) {
  return [...samples].sort((a, b) => b.ms - a.ms).slice(0, 3)
      .map((x) => `${x.ms.toFixed(0)} ms at +${(x.at - from).toFixed(0)} ms`).join(', ');
}

async function metrics(adminPort) {
  return admin.parseMetrics((await admin.get(adminPort, '/metrics')).body);
}

function start(toml) {
  return h.startWsbridge(toml, {env: h.smallQuarantineEnv()});
}

function config({port, adminPort, echo, handshakeTimeout = '10s', listenerExtra = '',
                 filters = ['size'], extra = ''}) {
  return h.relayConfig({port, endpoints: [echo], logLevel: 'info', listenerExtra,
                        routeExtra: `filters = ${JSON.stringify(filters)}\n`, extra: `
[filter.size]
type = "limits"
handshake_timeout = "${handshakeTimeout}"
${extra}
[admin]
address = "127.0.0.1:${adminPort}"
`});
}

raiseOwnFdLimit(20000);

h.test('slowloris: 2,000 connections sending a header byte a second each get 408 at ' +
       'handshake_timeout (2 s), while a normal client upgrades with p99 < 100 ms', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  // All 2,000 come from 127.0.0.1, like the normal client: a cap above them.
  const bridge = await start(config({port, adminPort, echo: echo.port,
                                     handshakeTimeout: '2s',
                                     listenerExtra: 'max_handshakes_per_ip = 4000\n'}));
  await leaks.echoOnce(port);
  const base = await leaks.baseline(bridge, adminPort);

  const drip = new Drip();
  let slowDone = false;
  const normal = upgradeLoop(port, () => slowDone);
  const started = performance.now();
  // 50 at a time: as fast overall as 200 at a time, but this process's event loop stays free, so
  // the figure measured is wsbridge's (200 at a time put 100+ ms of this loop into it).
  const slow = await openSlow(port, drip, 2000, 50);
  const opened = performance.now() - started;
  const ended = await h.withTimeout(Promise.all(slow.map((c) => c.ended)), 30000,
                                    'every slow connection closed');
  slowDone = true;
  const samples = await normal;
  const latencies = samples.map((x) => x.ms);
  drip.stop();

  const wrong = ended.filter((c) => c.received !== TIMEOUT_408);
  assert.equal(wrong.length, 0, `${wrong.length} of 2000 did not get exactly the 408: first got ` +
                                `${JSON.stringify(wrong[0]?.received)} (${wrong[0]?.error})`);
  const toClose = ended.map((c) => c.endedAt - c.connectedAt);
  t.log(`2000 opened in ${opened.toFixed(0)} ms; connect to 408 and close: ${summary(toClose)}`);
  const early = toClose.filter((ms) => ms < 2000 - 300);
  assert.equal(early.length, 0, `closed before handshake_timeout: ${early.slice(0, 5)} ms`);
  const late = toClose.filter((ms) => ms > 2000 + 10000);
  assert.equal(late.length, 0, `closed long after handshake_timeout: ${late.slice(0, 5)} ms`);

  const sorted = [...latencies].sort((a, b) => a - b);
  const p99 = percentile(sorted, 0.99);
  t.log(`normal client: ${latencies.length} upgrades meanwhile; ${summary(latencies)}; ` +
        `slowest ${slowest(samples, started)}`);
  assert.ok(latencies.length >= 20, `enough upgrades measured: ${latencies.length}`);
  assert.ok(p99 < P99_BOUND_MS, `upgrade p99 ${p99.toFixed(1)} ms (bound ${P99_BOUND_MS} ms)`);

  const m = await metrics(adminPort);
  assert.equal(m['wsbridge_handshakes_refused_total{status="408"}'], 2000);
  assert.equal(m['wsbridge_accept_errors_total{reason="handshakes_per_ip"}'], undefined);
  const after = await leaks.assertNoLeak(bridge, adminPort, base,
                                         {rssMargin: rssMargin(8 << 20),
                                          serve: () => leaks.echoOnce(port)});
  t.log(`leak check: ${JSON.stringify(after)}`);
}, {timeout: 90000});

h.test('2,000 upgraded connections that send half a frame and stop are closed by idle_timeout ' +
       '(close 1001 "idle timeout", the TCP connection dropped when no close reply comes)',
       async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  // The default max_handshakes_per_ip (128): upgrades 50 at a time from one address pass it.
  const bridge = await start(config({port, adminPort, echo: echo.port,
                                     filters: ['size', 'hb'], extra: `
[filter.hb]
type = "heartbeat"
ping_interval = "0s"
idle_timeout = "2s"
`}));
  await leaks.echoOnce(port);
  const base = await leaks.baseline(bridge, adminPort);

  const half = h.encodeFrame({opcode: h.OP.TEXT, payload: 'half of this frame', mask: true})
                   .subarray(0, 10);  // the header, the mask and 4 of 18 payload bytes
  const started = performance.now();
  const clients = [];
  for (let i = 0; i < 2000; i += 50) {
    const group = await Promise.all(Array.from({length: 50}, async () => {
      const client = await h.rawConnect(port);
      const res = await client.handshake('/');
      assert.equal(res.statusLine, 'HTTP/1.1 101 Switching Protocols');
      const c = {client, upgradedAt: performance.now()};
      client.write(half);
      c.done = (async () => {
        const close = await client.readClose(30000);
        c.closeAt = performance.now();
        c.code = close.code;
        c.reason = close.reason;
        await h.withTimeout(client.closed, 30000, 'the TCP close after the close frame');
        c.endedAt = performance.now();
        return c;
      })();
      return c;
    }));
    clients.push(...group);
  }
  const opened = performance.now() - started;
  const done = await h.withTimeout(Promise.all(clients.map((c) => c.done)), 60000,
                                   'every stalled connection closed');
  const wrong = done.filter((c) => c.code !== 1001 || c.reason !== 'idle timeout');
  assert.equal(wrong.length, 0, `${wrong.length} of 2000 closed otherwise: first ` +
                                `${wrong[0]?.code} ${JSON.stringify(wrong[0]?.reason)}`);
  const toClose = done.map((c) => c.closeAt - c.upgradedAt);
  const toEnd = done.map((c) => c.endedAt - c.closeAt);
  t.log(`2000 upgraded in ${opened.toFixed(0)} ms; 101 to close frame: ${summary(toClose)}; ` +
        `close frame to TCP close: ${summary(toEnd)}`);
  const early = toClose.filter((ms) => ms < 2000 - 300);
  assert.equal(early.length, 0, `closed before idle_timeout: ${early.slice(0, 5)} ms`);
  const late = toClose.filter((ms) => ms > 2000 + 10000);
  assert.equal(late.length, 0, `closed long after idle_timeout: ${late.slice(0, 5)} ms`);
  // No close reply: wsbridge drops the connection 5 s after its close frame.
  const dropped = toEnd.filter((ms) => ms < 5000 - 300 || ms > 5000 + 10000);
  assert.equal(dropped.length, 0,
               `TCP close not 5 s after the close frame: ${dropped.slice(0, 5)}`);

  const m = await metrics(adminPort);
  assert.equal(m['wsbridge_connections_closed_total{route="/",code="1001"}'], 2000);
  assert.equal(m['wsbridge_accept_errors_total{reason="handshakes_per_ip"}'], undefined);
  // 4,000 sockets' buffers raise the heap's high-water mark by about 8 MiB, which the allocator
  // keeps: measured 10.9 MiB before, 19.2 / 19.3 / 19.3 MiB after each of three such waves in a
  // row (a leak would climb by a wave each time). So the margin is 12 MiB here.
  const after = await leaks.assertNoLeak(bridge, adminPort, base,
                                         {rssMargin: rssMargin(12 << 20),
                                          serve: () => leaks.echoOnce(port)});
  t.log(`leak check: ${JSON.stringify(after)}`);
}, {timeout: 90000});

h.test('at a 512-descriptor limit, 3,000 slowloris connections from one address hold at most ' +
       'the default max_handshakes_per_ip (128): the rest get 429 at accept, counted and logged ' +
       'once a second, and a client from 127.0.0.2 upgrades within 1 s', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await start(config({port, adminPort, echo: echo.port,
                                     handshakeTimeout: '5s'}));
  execFileSync('prlimit', ['--pid', String(bridge.pid), '--nofile=512:512']);
  await leaks.echoOnce(port);
  const base = await leaks.baseline(bridge, adminPort);
  const logFrom = bridge.logs().length;

  // wsbridge's descriptors, sampled through the attack.
  let peakFds = 0;
  const sampler = setInterval(() => {
    peakFds = Math.max(peakFds, leaks.fdCount(bridge.pid));
  }, 20);
  h.defer(() => clearInterval(sampler));

  const drip = new Drip();
  let attackDone = false;
  const legit = upgradeLoop(port, () => attackDone, {localAddress: '127.0.0.2', echo: true});
  const started = performance.now();
  const attack = await openSlow(port, drip, 3000, 500);
  const opened = performance.now() - started;
  const ended = await h.withTimeout(Promise.all(attack.map((c) => c.ended)), 40000,
                                    'every attacking connection ended');
  attackDone = true;
  const samples = await legit;
  const latencies = samples.map((x) => x.ms);
  clearInterval(sampler);
  drip.stop();

  const timedOut = ended.filter((c) => c.received === TIMEOUT_408);
  const refused = ended.filter((c) => c.received === REFUSAL_429);
  const other = ended.filter((c) => c.received !== TIMEOUT_408 && c.received !== REFUSAL_429);
  t.log(`3000 opened in ${opened.toFixed(0)} ms: ${timedOut.length} held until 408, ` +
        `${refused.length} refused with 429; wsbridge peaked at ${peakFds} descriptors ` +
        `(baseline ${base.fds}, limit 512)`);
  assert.equal(other.length, 0, `${other.length} ended otherwise: first got ` +
                                `${JSON.stringify(other[0]?.received)} (${other[0]?.error})`);
  assert.ok(timedOut.length >= 128, `the cap's 128 were held: ${timedOut.length}`);
  assert.ok(refused.length >= 2000, `refused: ${refused.length}`);
  // The legitimate client's two sockets and an admin request or two besides the attacker's 128.
  assert.ok(peakFds <= base.fds + 128 + 8, `one source held ${peakFds - base.fds} descriptors`);

  t.log(`client from 127.0.0.2: ${latencies.length} upgrades and echoes meanwhile; ` +
        `${summary(latencies)}; slowest ${slowest(samples, started)}`);
  assert.ok(latencies.length >= 5, `upgrades measured: ${latencies.length}`);
  assert.ok(Math.max(...latencies) < 1000, `slowest upgrade ${Math.max(...latencies)} ms`);

  const m = await metrics(adminPort);
  assert.equal(m['wsbridge_accept_errors_total{reason="handshakes_per_ip"}'], refused.length);
  assert.equal(m['wsbridge_accept_errors_total{reason="no_descriptors"}'], undefined);
  // The refusals of a burst are logged when its second is up: wait for the line that owes them.
  const refusalLines = () => bridge.logs().slice(logFrom).split('\n')
      .filter((l) => l.includes('max_handshakes_per_ip'));
  const loggedCount = (lines) =>
    lines.reduce((n, l) => n + Number(/refused (\d+) connection/.exec(l)[1]), 0);
  await admin.until(() => loggedCount(refusalLines()) >= refused.length,
                    'the log lines to account for every refusal', 5000, 50);
  const lines = refusalLines();
  const logElapsed = (performance.now() - started) / 1000;
  t.log(`${lines.length} refusal log line(s) in ${logElapsed.toFixed(1)} s: ` +
        `${lines.map((l) => /refused (\d+)/.exec(l)[1]).join(', ')} refusals; first: ` +
        lines[0].replace(/^\[[^\]]*\] /, ''));
  assert.ok(lines.length <= Math.ceil(logElapsed) + 1,
            `one line a second at most: ${lines.length}`);
  assert.match(lines[0], new RegExp('listener public: refused \\d+ connection\\(s\\) at ' +
                                    'accept in the last second: .*max_handshakes_per_ip ' +
                                    '\\(128\\) .*last from 127\\.0\\.0\\.1'));
  assert.equal(loggedCount(lines), refused.length, 'the lines count every refusal once');

  // Every place was given back: 128 connections are held again, and the 129th is refused.
  // (Counted from the descriptors once the last legitimate connection is gone: the baseline may
  // include the warm-up client's, closing as it was taken.)
  await admin.until(() => leaks.fdCount(bridge.pid) <= base.fds, 'the attack gone', 10000, 20);
  const before = leaks.fdCount(bridge.pid);
  const drip2 = new Drip();
  const wave = await openSlow(port, drip2, 128, 128);
  await admin.until(() => leaks.fdCount(bridge.pid) >= before + 128,
                    'the 128 accepted', 10000, 20);
  const extra = slowConnection(port, drip2);
  const refusedAgain = await h.withTimeout(extra.ended, 5000, 'the 129th refused');
  assert.equal(refusedAgain.received, REFUSAL_429);
  const closedEarly = wave.filter((c) => c.endedAt !== null);
  assert.equal(closedEarly.length, 0, `${closedEarly.length} of the 128 refused: a place leaked`);
  wave.forEach((c) => c.socket.destroy());
  drip2.stop();

  const after = await leaks.assertNoLeak(bridge, adminPort, base,
                                         {rssMargin: rssMargin(8 << 20),
                                          serve: () => leaks.echoOnce(port)});
  t.log(`leak check: ${JSON.stringify(after)}`);
}, {timeout: 90000});

h.run();
