// The leak check every fault case ends with: wsbridge's descriptors and live connections back to
// the baseline taken before the fault, its RSS back within a stated margin, and the process alive
// and serving a new client within 1 s.
'use strict';
const fs = require('node:fs');
const h = require('../../e2e/lib/harness');
const admin = require('../../e2e/lib/admin');

const {assert} = h;

function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

// Live connections as the admin listener counts them: the sum over routes of open connections
// (websocket sessions and Engine.IO sessions alike) and the /connections list.
async function liveCount(adminPort) {
  const stats = await admin.getJson(adminPort, '/stats');
  const list = await admin.getJson(adminPort, '/connections?limit=0');
  return {active: stats.connections.active, listed: list.total};
}

// {fds, active, listed, rss} of a running wsbridge. Take it once the bridge serves (after one
// warm-up client, so lazily made state such as the TLS context and pools is in the baseline).
async function baseline(bridge, adminPort) {
  const live = await liveCount(adminPort);
  return {fds: fdCount(bridge.pid), ...live, rss: h.readRss(bridge.pid)};
}

// Waits (up to `ms`, polled) until descriptors and live connections are back to `base`, then
// checks RSS is within `rssMargin` bytes of it and that `serve()` (a fresh client's round trip)
// completes within `serveMs`. Returns what it measured, for the case's log.
async function assertNoLeak(bridge, adminPort, base, {
  rssMargin = 8 << 20, ms = 30000, serve, serveMs = 1000, what = 'after the fault',
} = {}) {
  let now;
  try {
    await admin.until(async () => {
      now = {fds: fdCount(bridge.pid), ...(await liveCount(adminPort))};
      return now.fds <= base.fds && now.active <= base.active && now.listed <= base.listed;
    }, 'descriptors and live connections back to the baseline', ms, 100);
  } catch (err) {
    throw new Error(`${what}: leaked: baseline ${JSON.stringify(base)}, now ` +
                    `${JSON.stringify(now)} (${err.message})`);
  }
  const rss = h.readRss(bridge.pid);
  assert.ok(rss <= base.rss + rssMargin,
            `${what}: RSS ${(rss / 1048576).toFixed(1)} MiB, baseline ` +
                `${(base.rss / 1048576).toFixed(1)} MiB, margin ${(rssMargin / 1048576).toFixed(1)} MiB`);
  assert.equal(bridge.proc.exitCode, null, `${what}: wsbridge exited`);
  assert.equal(bridge.proc.signalCode, null, `${what}: wsbridge was killed`);
  if (serve) {
    const started = Date.now();
    await h.withTimeout(serve(), serveMs, `${what}: a new client served`);
    now.serveMs = Date.now() - started;
  }
  return {...now, rss};
}

// A websocket echo round trip through `port` (the relay): resolves once 'ping' comes back.
async function echoOnce(port, path = '/') {
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}${path}`);
  try {
    const queue = h.messageQueue(ws);
    ws.send('leak-check');
    assert.equal((await queue.next()).data.toString(), 'leak-check');
  } finally {
    ws.terminate();
  }
}

module.exports = {fdCount, liveCount, baseline, assertNoLeak, echoOnce};
