// wsbridge set-ups for the upstream fault cases: the routes under test plus a healthy relay route
// (`/healthy/`, to a real ws-echo peer) through which the leak check's new client is served, and
// the admin listener the leak check reads. Upstream timers are short (connect 500 ms, handshake
// 300 ms) so that stalls end quickly; cases wait for them generously.
'use strict';
const h = require('../../e2e/lib/harness');
const leaks = require('./leaks');

const CONNECT_MS = 500;
const HANDSHAKE_MS = 300;

// routes: [{path, downstream, cluster, protocol, endpoints: [port], extra, clusterExtra}]
function faultConfig({port, admin, healthy, routes, logLevel = 'info'}) {
  let toml = `[runtime]
workers = 1
log_level = "${logLevel}"

[admin]
address = "127.0.0.1:${admin}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/healthy/"
downstream = "websocket"
cluster = "healthy"

[cluster.healthy]
protocol = "websocket"
endpoints = ["127.0.0.1:${healthy}"]
path = "/"
`;
  for (const r of routes) {
    toml += `
[[route]]
path = "${r.path ?? '/'}"
downstream = "${r.downstream}"
cluster = "${r.cluster}"
${r.extra ?? ''}
`;
  }
  const clusters = new Map();
  for (const r of routes) {
    if (clusters.has(r.cluster)) continue;
    clusters.set(r.cluster, true);
    toml += `
[cluster.${r.cluster}]
protocol = "${r.protocol}"
endpoints = [${r.endpoints.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
connect_timeout = "${CONNECT_MS}ms"
handshake_timeout = "${HANDSHAKE_MS}ms"
${r.clusterExtra ?? ''}
`;
  }
  return toml;
}

// Starts the healthy peer and wsbridge, serves one warm-up client (so lazily made state is in
// the baseline) and takes the leak baseline. Returns {bridge, port, admin, base, noLeak(what)}.
async function startFaultBridge(routes, opts = {}) {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const admin = await h.freePort();
  const bridge = await h.startWsbridge(faultConfig({port, admin, healthy: echo.port, routes,
                                                    ...opts}));
  await leaks.echoOnce(port, '/healthy/');
  const base = await leaks.baseline(bridge, admin);
  return {
    bridge,
    port,
    admin,
    base,
    // The leak check every case ends with; returns what it measured for the case's log.
    noLeak: (what) => leaks.assertNoLeak(bridge, admin, base, {
      what, serve: () => leaks.echoOnce(port, '/healthy/'),
    }),
  };
}

// The first log line of `bridge` that matches `re`, waited for: a line may reach this process
// after what the client was sent.
async function logLine(bridge, re, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = bridge.logs().split('\n').find((l) => re.test(l));
    if (line) return line;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`no log line matching ${re} within ${ms} ms; log tail:\n${bridge.logs(20)}`);
    }
    await new Promise((resolve) => {
      const timer = setTimeout(done, left);
      function done() {
        clearTimeout(timer);
        bridge.proc.stderr.off('data', done);
        bridge.proc.stdout.off('data', done);
        resolve();
      }
      bridge.proc.stderr.on('data', done);
      bridge.proc.stdout.on('data', done);
    });
  }
}

module.exports = {CONNECT_MS, HANDSHAKE_MS, faultConfig, startFaultBridge, logLine};
