// The shared rate-limit store's Redis fails: one that accepts and never replies, one killed
// mid-traffic and started again. The filter follows redis_failure within redis_timeout, the
// outage is logged once and its end once, other clients' round trips keep flowing meanwhile (the
// worker never waits for Redis), and the shared limit is enforced again once Redis is back.
'use strict';
const childProcess = require('node:child_process');
const net = require('node:net');
const h = require('../e2e/lib/harness');
const admin = require('../e2e/lib/admin');
const leaks = require('./lib/leaks');

const {assert} = h;

const NOTICE = '{"event":"rate-limit-exceeded","data":{"message":"too many messages"}}';
const TIMEOUT_MS = 300;  // redis_timeout in every case
const OUTAGE = 'unreachable';
const RECOVERY = 'connected again';

// A TCP server that accepts and reads but never answers: a Redis that hangs.
async function startSilentRedis() {
  const port = await h.freePort();
  const sockets = new Set();
  const state = {port, accepted: 0, received: '', sockets};
  const server = net.createServer((socket) => {
    state.accepted++;
    sockets.add(socket);
    socket.on('data', (d) => {
      if (state.received.length < 65536) state.received += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  state.stop = () => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  h.defer(state.stop);
  return state;
}

// redis-server on 127.0.0.1:`port` (a free one by default), stopped by PID.
async function startRedis(port) {
  port ??= await h.freePort();
  const proc = childProcess.spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  ], {stdio: ['ignore', 'ignore', 'pipe']});
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  h.defer(() => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL');
  });
  await h.waitForTcp('127.0.0.1', port, 10000, exited);
  return {port, proc, exited};
}

function occurrences(text, what) {
  return text.split(what).length - 1;
}

// Resolves once `bridge`'s log holds `text` `count` times, checked on each chunk of output.
function logReaches(bridge, text, count = 1, ms = 10000) {
  return h.withTimeout(new Promise((resolve) => {
    const check = () => {
      if (occurrences(bridge.logs(), text) < count) return false;
      bridge.proc.stdout.off('data', check);
      bridge.proc.stderr.off('data', check);
      resolve();
      return true;
    };
    if (check()) return;
    bridge.proc.stdout.on('data', check);
    bridge.proc.stderr.on('data', check);
  }), ms, `"${text}" x${count} in the wsbridge log`);
}

// The relay with `filterToml`, the limited route "/" (filter "limit"), an unlimited route
// "/free" on the same worker, and an admin listener.
async function startBridge(echoPort, filterToml, routes = '') {
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await h.startWsbridge(h.relayConfig({
    port, endpoints: [echoPort], logLevel: 'info', routeExtra: 'filters = ["limit"]\n', extra: `
[[route]]
path = "/free"
downstream = "websocket"
cluster = "echo"
${routes}
[admin]
address = "127.0.0.1:${adminPort}"
${filterToml}`,
  }));
  return {bridge, port, adminPort};
}

function limitFilter(name, redisPort, failure, action = 'notify') {
  return `
[filter.${name}]
type = "rate_limit"
key = "ip"
messages_per_second = 5
burst = 5
action = "${action}"
store = "redis"
redis = "redis://127.0.0.1:${redisPort}/0"
redis_failure = "${failure}"
redis_timeout = "${TIMEOUT_MS}ms"
`;
}

// Echo round trips on `path`, one after another (20 ms apart), until stop(); stop() resolves
// with the latencies in ms. A worker that waited for Redis would hold these up.
async function probeLatency(port, path) {
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}${path}`);
  const queue = h.messageQueue(ws);
  const latencies = [];
  let running = true;
  let failure = null;  // kept for stop(): the case may end (and close the socket) first
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const started = process.hrtime.bigint();
      ws.send(`probe${i}`);
      assert.equal((await queue.next(10000)).data.toString(), `probe${i}`);
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      await new Promise((resolve) => setTimeout(resolve, 20));  // pacing, not synchronisation
    }
  })().catch((err) => {
    failure = err;
  });
  h.defer(() => {
    running = false;
  });
  return {
    async stop() {
      running = false;
      await loop;
      if (failure) throw failure;
      ws.close(1000);
      return latencies;
    },
  };
}

function summary(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    median: sorted[Math.floor(sorted.length / 2)],
    max: sorted[sorted.length - 1],
  };
}

function assertFlowing(latencies, what) {
  const s = summary(latencies);
  assert.ok(s.count >= 20, `${what}: only ${s.count} round trips`);
  const limit = `redis_timeout ${TIMEOUT_MS} ms`;
  assert.ok(s.median < TIMEOUT_MS / 4,
            `${what}: median round trip ${s.median.toFixed(1)} ms (${limit})`);
  assert.ok(s.max < 2 * TIMEOUT_MS,
            `${what}: slowest round trip ${s.max.toFixed(1)} ms (${limit})`);
  return `${s.count} round trips, median ${s.median.toFixed(1)} ms, max ${s.max.toFixed(1)} ms`;
}

// Sends `count` messages on `ws`, `perSecond`, and resolves with [{sentAt, reply}] in order
// (the echo or the notice: one reply each).
async function sendPaced(ws, count, perSecond, tag) {
  const queue = h.messageQueue(ws);
  const sentAt = [];
  let sent = 0;
  const timer = setInterval(() => {
    sentAt.push(Date.now());
    ws.send(`${tag}${sent++}`);
    if (sent === count) clearInterval(timer);
  }, 1000 / perSecond);
  h.defer(() => clearInterval(timer));
  const out = [];
  for (let i = 0; i < count; i++) {
    const reply = (await queue.next(10000)).data.toString();
    out.push({sentAt: sentAt[i], reply, echo: reply === `${tag}${i}`});
    assert.ok(out[i].echo || reply === NOTICE, `message ${i}: unexpected reply ${reply}`);
  }
  return out;
}

// `replies` (from sendPaced) were limited by the shared 5/s, burst 5 bucket: some refused, and
// no more passed than the burst, the rate over the time taken, and this worker's slack (one
// message ahead, the lease of one it is asking for, and one it may hold from before an outage).
function assertLimited(replies, what) {
  const passed = replies.filter((r) => r.echo).length;
  const seconds = (replies[replies.length - 1].sentAt - replies[0].sentAt) / 1000;
  const most = Math.ceil(5 + 5 * seconds) + 3;
  assert.ok(passed < replies.length, `${what}: no limit hit (${passed} of ${replies.length})`);
  assert.ok(passed <= most, `${what}: ${passed} of ${replies.length} passed in ${seconds} s; ` +
                                `at most ${most}`);
}

async function redisErrors(adminPort, port, reason) {
  const metrics = admin.parseMetrics((await admin.get(adminPort, '/metrics')).body);
  const labels = `{redis="127.0.0.1:${port}/0",reason="${reason}"}`;
  return metrics[`wsbridge_redis_errors_total${labels}`] ?? 0;
}

// Warm-up (the lazily made Redis store included) and the baseline the case ends compared with.
async function warmUp(bridge, port, adminPort) {
  await leaks.echoOnce(port, '/free');
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  ws.terminate();
  return leaks.baseline(bridge, adminPort);
}

h.test('silent Redis, redis_failure = "allow": a lease left unanswered gives way within ' +
       'redis_timeout, every message then passes, logged once, other clients unaffected',
       async (t) => {
  const silent = await startSilentRedis();
  const echo = await h.startPeer('ws-echo.js');
  const {bridge, port, adminPort} = await startBridge(echo.port,
                                                      limitFilter('limit', silent.port, 'allow'));
  const base = await leaks.baseline(bridge, adminPort);  // before the store connects to Redis

  const probe = await probeLatency(port, '/free');
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  // 20/s for 3 s against 5/s: with Redis answering, about 20 of 60 would pass.
  const replies = await sendPaced(ws, 60, 20, 'm');
  const latencies = await probe.stop();

  const first = replies[0].sentAt;
  const refused = replies.filter((r) => !r.echo);
  const lastRefused = refused.length ? refused[refused.length - 1].sentAt - first : 0;
  t.log(`${refused.length} of 60 refused, the last ${lastRefused} ms after the first message; ` +
        `${silent.accepted} connection(s) to the silent Redis`);
  assert.ok(replies[0].echo, 'the first message of a key passes without waiting for Redis');
  // Refusals end once the lease has waited redis_timeout (plus a generous margin for the loaded
  // machine); after that every message passes, as redis_failure = "allow" says.
  assert.ok(lastRefused <= TIMEOUT_MS + 1000,
            `refused until ${lastRefused} ms after the first message`);
  const late = replies.filter((r) => r.sentAt - first > TIMEOUT_MS + 1000);
  assert.ok(late.length >= 30 && late.every((r) => r.echo),
            `${late.filter((r) => !r.echo).length} of ${late.length} late messages refused`);
  assert.ok(silent.received.includes('EVALSHA'), 'the lease was asked of the silent Redis');

  await logReaches(bridge, OUTAGE);
  const line = bridge.logs().split('\n').find((l) => l.includes(OUTAGE));
  assert.match(line, new RegExp(`no reply within ${TIMEOUT_MS} ms`));
  // The reconnects meet the same silence: counted, not logged again, never "connected".
  await admin.until(async () => (await redisErrors(adminPort, silent.port, 'timeout')) >= 2,
                    'a reconnect timing out too', 10000, 50);
  assert.ok(silent.accepted >= 2, `reconnected: ${silent.accepted} connection(s)`);
  assert.equal(occurrences(bridge.logs(), OUTAGE), 1, bridge.logs(20));
  assert.equal(occurrences(bridge.logs(), RECOVERY), 0, bridge.logs(20));
  t.log(`other client: ${assertFlowing(latencies, 'the unlimited route')}`);

  ws.close(1000);
  await silent.stop();  // wsbridge's Redis socket goes with it (reconnects are then refused)
  const after = await leaks.assertNoLeak(bridge, adminPort, base,
                                         {serve: () => leaks.echoOnce(port, '/free')});
  t.log(`leak check: ${JSON.stringify(after)}`);
}, {timeout: 60000});

h.test('silent Redis, redis_failure = "deny": messages past the first are refused (notice; ' +
       'close 1008 with action = "close"), logged once, other clients unaffected', async (t) => {
  const silent = await startSilentRedis();
  const echo = await h.startPeer('ws-echo.js');
  const filters = limitFilter('limit', silent.port, 'deny') +
      limitFilter('strict', silent.port, 'deny', 'close');
  const {bridge, port, adminPort} = await startBridge(
      echo.port, filters,
      '\n[[route]]\npath = "/strict"\ndownstream = "websocket"\ncluster = "echo"\n' +
          'filters = ["strict"]\n');
  const base = await leaks.baseline(bridge, adminPort);

  const probe = await probeLatency(port, '/free');
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
  const replies = await sendPaced(ws, 40, 20, 'm');
  await logReaches(bridge, OUTAGE);
  // Redis down and redis_failure = "deny": a new key's first message is refused as well; with
  // action = "close" that is the close 1008 the filter sends.
  const strict = await h.wsConnect(`ws://127.0.0.1:${port}/strict`);
  const closed = h.once(strict, 'close');
  const strictQueue = h.messageQueue(strict);
  strict.send('strict0');
  const [code, reason] = await closed;
  const latencies = await probe.stop();

  assert.ok(replies[0].echo, 'the first message of a key passes without waiting for Redis');
  assert.ok(replies.slice(1).every((r) => r.reply === NOTICE),
            `passed: ${replies.slice(1).filter((r) => r.echo).map((r) => r.reply)}`);
  assert.equal(code, 1008);
  assert.equal(reason.toString(), 'rate limit exceeded');
  assert.equal(strictQueue.length, 0, 'nothing echoed on the closed connection');
  assert.match(bridge.logs().split('\n').find((l) => l.includes(OUTAGE)),
               new RegExp(`no reply within ${TIMEOUT_MS} ms`));
  assert.equal(occurrences(bridge.logs(), OUTAGE), 1, bridge.logs(20));
  assert.equal(occurrences(bridge.logs(), RECOVERY), 0, bridge.logs(20));
  assert.ok((await redisErrors(adminPort, silent.port, 'timeout')) >= 1);
  t.log(`other client: ${assertFlowing(latencies, 'the unlimited route')}`);

  ws.close(1000);
  await silent.stop();
  const after = await leaks.assertNoLeak(bridge, adminPort, base,
                                         {serve: () => leaks.echoOnce(port, '/free')});
  t.log(`leak check: ${JSON.stringify(after)}`);
}, {timeout: 60000});

h.test('redis-server killed mid-traffic, redis_failure = "allow": every message passes, logged ' +
       'once; started again on its port: the shared limit applies again, recovery logged once',
       async (t) => {
  const redis = await startRedis();
  const echo = await h.startPeer('ws-echo.js');
  const {bridge, port, adminPort} = await startBridge(echo.port,
                                                      limitFilter('limit', redis.port, 'allow'));
  const base = await warmUp(bridge, port, adminPort);
  const probe = await probeLatency(port, '/free');
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);

  // Redis up: 40/s against 5/s, burst 5: the limit is hit.
  assertLimited(await sendPaced(ws, 20, 40, 'a'), 'with Redis up');

  // Killed mid-traffic: the outage is noticed at once (the connection closes) and, with
  // redis_failure = "allow", everything sent once it is logged passes.
  const during = sendPaced(ws, 60, 20, 'b');
  during.catch(() => {});  // awaited below; a failure meanwhile must not go unhandled
  await new Promise((resolve) => setTimeout(resolve, 500));  // mid-traffic, not a synchronisation
  process.kill(redis.proc.pid, 'SIGKILL');
  await redis.exited;
  const killedAt = Date.now();
  await logReaches(bridge, OUTAGE);
  const noticedAt = Date.now();
  const replies = await during;
  const afterOutage = replies.filter((r) => r.sentAt > noticedAt);
  t.log(`outage noticed ${noticedAt - killedAt} ms after the kill; ` +
        `${afterOutage.length} messages sent after it`);
  assert.ok(afterOutage.length >= 20 && afterOutage.every((r) => r.echo),
            `${afterOutage.filter((r) => !r.echo).length} of ${afterOutage.length} refused`);

  // Back on the same port: recovery is logged and the shared limit applies again.
  await startRedis(redis.port);
  const restartedAt = Date.now();
  await logReaches(bridge, RECOVERY, 1, 15000);
  t.log(`recovered ${Date.now() - restartedAt} ms after redis-server accepted connections`);
  assertLimited(await sendPaced(ws, 20, 40, 'c'), 'once Redis is back');
  const latencies = await probe.stop();

  assert.equal(occurrences(bridge.logs(), OUTAGE), 1, bridge.logs(20));
  assert.equal(occurrences(bridge.logs(), RECOVERY), 1, bridge.logs(20));
  assert.ok((await redisErrors(adminPort, redis.port, 'closed')) >= 1);
  t.log(`other client: ${assertFlowing(latencies, 'the unlimited route')}`);

  ws.close(1000);
  const after = await leaks.assertNoLeak(bridge, adminPort, base,
                                         {serve: () => leaks.echoOnce(port, '/free')});
  t.log(`leak check: ${JSON.stringify(after)}`);
}, {timeout: 90000});

h.run();
