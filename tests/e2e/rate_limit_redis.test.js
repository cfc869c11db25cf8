// rate_limit with store = "redis": two wsbridge instances share one Redis-side bucket per client
// IP, so their combined rate honours the limit (within the documented lease slack); when Redis
// dies, redis_failure decides (here: deny) and the outage is logged once.
'use strict';
const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const h = require('./lib/harness');

const NOTICE = '{"event":"rate-limit-exceeded","data":{"message":"too many messages"}}';

async function startRedis() {
  const port = await h.freePort();
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

// Resolves once `bridge`'s log contains `text` (polled: the log is a captured stream).
async function logContains(bridge, text, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!bridge.logs().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in the wsbridge log within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Sends `count` messages at `perSecond` and resolves with what came back: one reply each.
async function sendPaced(ws, count, perSecond, tag) {
  const q = h.messageQueue(ws);
  let sent = 0;
  const timer = setInterval(() => {
    ws.send(`${tag}${sent++}`);
    if (sent === count) clearInterval(timer);
  }, 1000 / perSecond);
  const replies = [];
  for (let i = 0; i < count; i++) replies.push((await q.next(10000)).data.toString());
  return replies;
}

h.test('rate_limit redis: two instances share one 5/s bucket per IP; Redis down denies',
       async (t) => {
  const redis = await startRedis();
  const echo = await h.startPeer('ws-echo.js');
  const filter = `
[filter.limit]
type = "rate_limit"
key = "ip"
messages_per_second = 5
burst = 5
action = "notify"
store = "redis"
redis = "redis://127.0.0.1:${redis.port}/0"
redis_failure = "deny"
`;
  const bridges = [];
  for (let i = 0; i < 2; i++) {
    const port = await h.freePort();
    bridges.push(await h.startWsbridge(h.relayConfig({
      port, endpoints: [echo.port], routeExtra: 'filters = ["limit"]\n', extra: filter,
    })));
  }
  const a = await h.wsConnect(`ws://127.0.0.1:${bridges[0].port}/`);
  const b = await h.wsConnect(`ws://127.0.0.1:${bridges[1].port}/`);

  // 20 messages/s from each client for 2 s: 80 messages from one IP against 5/s, burst 5.
  const start = Date.now();
  const [ra, rb] = await Promise.all([sendPaced(a, 40, 20, 'a'), sendPaced(b, 40, 20, 'b')]);
  const seconds = (Date.now() - start) / 1000;
  const all = ra.concat(rb);
  const passed = all.filter((m) => m !== NOTICE);
  const notices = all.length - passed.length;
  t.log(`${passed.length} of 80 passed in ${seconds} s (a: ${ra.filter((m) => m !== NOTICE).length})`);
  assert.equal(all.length, 80);
  assert.ok(passed.every((m) => /^[ab]\d+$/.test(m)), `unexpected replies: ${passed}`);
  // The shared bucket allows 5 + 5/s; each of the two workers may be one lease (1) and one
  // message ahead. Two separate local buckets would pass about twice as many (30).
  const allowed = 5 + 5 * seconds;
  h.assert.ok(passed.length <= Math.ceil(allowed) + 4,
              `${passed.length} passed in ${seconds} s; at most ${Math.ceil(allowed) + 4}`);
  h.assert.ok(passed.length >= Math.floor(allowed) - 4,
              `${passed.length} passed in ${seconds} s; expected about ${allowed}`);
  assert.equal(notices, 80 - passed.length);
  // Both instances took part: neither was starved nor let everything through.
  assert.ok(ra.some((m) => m !== NOTICE) && rb.some((m) => m !== NOTICE));

  // Redis dies: redis_failure = "deny" refuses every message once each instance has noticed.
  process.kill(redis.proc.pid, 'SIGKILL');
  await redis.exited;
  for (const bridge of bridges) await logContains(bridge, 'unreachable');
  for (const [ws, tag] of [[a, 'x'], [b, 'y']]) {
    const q = h.messageQueue(ws);
    for (let i = 0; i < 5; i++) ws.send(`${tag}${i}`);
    for (let i = 0; i < 5; i++) assert.equal((await q.next(5000)).data.toString(), NOTICE);
  }
  // One warning per outage, however many reconnects fail meanwhile.
  for (const bridge of bridges) {
    assert.equal(bridge.logs().split('unreachable').length - 1, 1, bridge.logs(20));
  }
  a.close(1000);
  b.close(1000);
}, {timeout: 60000});
