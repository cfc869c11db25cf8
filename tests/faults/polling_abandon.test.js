// Abandoned Engine.IO polling sessions: 5,000 clients each do the polling handshake and then
// nothing (no GET, no POST, no pong). Every session must be reaped once its heartbeat expires
// (pingInterval + pingTimeout), wherever it lives: in wsbridge (translate down, where wsbridge is
// the Engine.IO server; the v3 adapter on pass-through, which also holds one websocket upstream
// per session) or only in the upstream Socket.IO server (v4 pass-through, where wsbridge keeps
// nothing between requests). Then wsbridge's descriptors, live connections and memory are back
// to the baseline.
//
// Memory: freed sessions do not give wsbridge's RSS back to the kernel at once. glibc keeps the
// freed heap for reuse, fragmented (malloc_stats shows the bytes in use back to the baseline
// within 100 KiB, while the worker's arena stays resident): on translate down about 17 MiB (v4)
// to 23 MiB (v3) after the first 5,000 sessions, reused by the next ones, a plateau a round or
// two later. So each case runs ROUNDS rounds, 15,000 sessions, and RSS after every round must
// stay within a stated bound over the cold baseline: the plateau measured for that bridge plus
// margin. A leak adds to the plateau with every round: 15,000 sessions leaking 650 bytes each
// would exceed the bound on every bridge.
//
// The client stays light: raw HTTP GETs over a keep-alive agent with a bounded socket pool, so
// 5,000 handshakes take POOL TCP connections.
'use strict';

const http = require('node:http');
const h = require('../e2e/lib/harness');
const admin = require('../e2e/lib/admin');
const sio = require('../e2e/lib/sio');
const leaks = require('./lib/leaks');

const {assert} = h;

const SESSIONS = 5000;
const POOL = 50;  // keep-alive sockets (and requests in flight) of the client
// The heartbeat everywhere: wsbridge's routes and the upstream Socket.IO server.
const PING_INTERVAL = 500;
const PING_TIMEOUT = 500;
const EXPIRY = PING_INTERVAL + PING_TIMEOUT;
// Reaping is awaited (polled) up to this long after the last handshake: 10x the expiry, for a
// loaded 2-core machine where the timers of thousands of sessions fire in one burst.
const REAP_WAIT = 10 * EXPIRY;
const ROUNDS = 3;
// RETAIN_NOTE: how many sessions are live at once depends on the machine: where 5,000 handshakes
// take longer than the expiry, the first are reaped before the last are made. The RSS bounds are
// therefore set from the plateau measured with every session live at once (pingInterval raised
// to 10 s for the measurement), the most a fast machine can reach, plus margin.
// The CI's sanitizer run (ASAN_OPTIONS set): wsbridge gets a 1 MiB quarantine (the default
// 256 MiB would keep every freed session resident), and ASan's redzones and shadow memory about
// double a session's footprint, so the bounds are doubled plus the allocator's own growth.
const retainBound = (release) => (h.SANITIZED ? 2 * release + (16 << 20) : release);

function passThroughConfig({port, adminPort, endpoint}) {
  return sio.sioConfig({port, endpoints: [endpoint], logLevel: 'warn', routePath: '/socket.io/',
                        routeExtra: `allow_eio3 = true
ping_interval = "${PING_INTERVAL}ms"
ping_timeout = "${PING_TIMEOUT}ms"
`,
                        extra: `[admin]
address = "127.0.0.1:${adminPort}"
`});
}

// The v3 sessions of translate down join the default namespace unasked: each opens a websocket
// to the legacy server. 5,000 of them in a burst queue at a Node server, hence the generous
// upstream timeouts: the heartbeat, not a connect timeout, must end these sessions.
function translateDownConfig({port, adminPort, endpoint}) {
  return `[runtime]
workers = 1
log_level = "warn"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/socket.io/"
downstream = "socketio"
cluster = "legacy"
allow_eio3 = true
ping_interval = "${PING_INTERVAL}ms"
ping_timeout = "${PING_TIMEOUT}ms"

[cluster.legacy]
protocol = "websocket"
endpoints = ["127.0.0.1:${endpoint}"]
connect_timeout = "10s"
handshake_timeout = "10s"

[admin]
address = "127.0.0.1:${adminPort}"
`;
}

// One polling handshake on `agent`; resolves the sid the OPEN packet carries. v4 bodies are
// `0{...}`, v3 bodies length-prefixed text or binary: the sid is read from the JSON either way.
function handshake(port, eio, agent) {
  return h.withTimeout(new Promise((resolve, reject) => {
    const path = `/socket.io/?EIO=${eio}&transport=polling`;
    const req = http.request({host: '127.0.0.1', port, path, agent}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('latin1');
        const m = /"sid":"([^"]+)"/.exec(body);
        if (res.statusCode !== 200 || !m) {
          reject(new Error(`EIO=${eio} handshake: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
        } else {
          resolve(m[1]);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), 10000, `EIO=${eio} handshake`);
}

// SESSIONS handshakes, POOL at a time over POOL keep-alive sockets, then the client leaves (its
// sockets close; only the sessions remain). Resolves {sids (distinct), ms}.
async function abandonSessions(port, eio) {
  const agent = new http.Agent({keepAlive: true, maxSockets: POOL});
  h.defer(() => agent.destroy());
  const sids = new Set();
  let next = 0;
  const started = Date.now();
  await Promise.all(Array.from({length: POOL}, async () => {
    while (next < SESSIONS) {
      next++;
      sids.add(await handshake(port, eio, agent));
    }
  }));
  const ms = Date.now() - started;
  agent.destroy();
  assert.equal(sids.size, SESSIONS, 'distinct sids');
  return {sids, ms};
}

// A new session through `port` on its own connection (the leak check's "served").
async function oneSession(port, eio) {
  const agent = new http.Agent({keepAlive: false});
  try {
    await handshake(port, eio, agent);
  } finally {
    agent.destroy();
  }
}

// Opened / closed counts of an upstream peer's sessions, from its reports: `open` and `close`
// name its report events, `reasons` counts what the closes said.
function upstreamCounter(peer, open, close, reasonOf = (r) => r.reason) {
  const state = {opened: 0, closed: 0, reasons: {}};
  peer.watch((r) => {
    if (r.event === open) state.opened++;
    if (r.event === close) {
      state.closed++;
      const why = String(reasonOf(r));
      state.reasons[why] = (state.reasons[why] ?? 0) + 1;
    }
  });
  return state;
}

async function stats(adminPort) {
  return (await admin.getJson(adminPort, '/stats')).connections;
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

// One round: SESSIONS abandoned sessions, then every one reaped. `reaped()` says when the
// sessions are gone (in wsbridge and upstream); `expectLive` whether wsbridge itself holds them
// (its admin counts them as connections). Returns figures for the log.
async function round(c, {expectLive, reaped, perSession}) {
  const before = await stats(c.adminPort);
  const openedBefore = c.upstream.opened;
  const {ms} = await abandonSessions(c.port, c.eio);
  const peakRss = h.readRss(c.bridge.pid);
  const atEnd = await leaks.liveCount(c.adminPort);
  const lastHandshake = Date.now();
  if (expectLive) {
    // Every session was a live connection to the admin (the first ones may have expired
    // before the last were opened: handshakes take longer than the heartbeat).
    const now = await stats(c.adminPort);
    assert.equal(now.accepted - before.accepted, SESSIONS, 'sessions counted as accepted');
    assert.ok(atEnd.listed > 0 && atEnd.active > 0,
              `sessions live after the handshakes: ${JSON.stringify(atEnd)}`);
  } else {
    assert.deepEqual(atEnd, {active: 0, listed: 0}, 'wsbridge holds no polling session');
  }
  await allReaped(c, reaped, `all ${SESSIONS} sessions reaped`);
  const reapMs = Date.now() - lastHandshake;
  const upstream = c.upstream.opened - openedBefore;
  if (perSession !== undefined) {
    assert.equal(upstream, perSession * SESSIONS, 'upstream sessions opened in the round');
  }
  return {ms, peakRss, live: atEnd.listed, reapMs, upstream};
}

// Waits until wsbridge lists no live connection and `reaped()` (the upstream's count) holds.
async function allReaped(c, reaped, what) {
  try {
    await admin.until(async () => {
      const now = await leaks.liveCount(c.adminPort);
      return now.listed === 0 && now.active === 0 && (await reaped());
    }, what, REAP_WAIT, 50);
  } catch (err) {
    throw new Error(`${err.message}: live ${JSON.stringify(await leaks.liveCount(c.adminPort))}` +
                    `, upstream ${JSON.stringify(c.upstream)}`);
  }
}

// Runs ROUNDS rounds on a started case `c` ({bridge, port, adminPort, eio, upstream}), each
// ending with the leak check against the cold baseline with `opts.retain` as the RSS margin.
// Logs the figures.
async function rounds(t, c, opts) {
  await oneSession(c.port, c.eio);  // lazily made state (pools, the upstream's first session)
  await allReaped(c, opts.reaped, 'the warm-up session reaped');
  const cold = await leaks.baseline(c.bridge, c.adminPort);
  const figures = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await round(c, opts);
    r.after = await leaks.assertNoLeak(c.bridge, c.adminPort, cold, {
      rssMargin: retainBound(opts.retain), what: `after round ${i + 1}`,
      serve: i === ROUNDS - 1 ? () => oneSession(c.port, c.eio) : undefined,
    });
    figures.push(r);
  }
  figures.forEach((r, i) => {
    t.log(`round ${i + 1}: ${SESSIONS} handshakes in ${r.ms} ms, ${r.live} live in wsbridge at ` +
          `their end, ${r.upstream} upstream, all reaped ${r.reapMs} ms after the last (expiry ` +
          `${EXPIRY} ms); RSS peak ${mib(r.peakRss)}, after ${mib(r.after.rss)}; fds ` +
          `${r.after.fds}`);
  });
  t.log(`RSS cold ${mib(cold.rss)} (fds ${cold.fds}), bound ${mib(retainBound(opts.retain))} ` +
        `over it; upstream closes by reason ${JSON.stringify(c.upstream.reasons)}`);
}

async function startCase(eio, makeConfig, peer) {
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await h.startWsbridge(makeConfig({port, adminPort, endpoint: peer.port}),
                                       {env: h.smallQuarantineEnv()});
  return {bridge, port, adminPort, eio};
}

// ---- translate down: wsbridge is the Engine.IO server --------------------------------------

for (const eio of [4, 3]) {
  h.test(`translate down, EIO=${eio}: ${SESSIONS} abandoned polling sessions (3 rounds) are all ` +
         'reaped after pingInterval + pingTimeout, nothing leaks', async (t) => {
    const legacy = await h.startPeer('legacy-ws-server.js');
    const c = await startCase(eio, translateDownConfig, legacy);
    // v3 sessions each open one upstream websocket (the default namespace); v4 sessions none.
    c.upstream = upstreamCounter(legacy, 'connection', 'close', (r) => r.code);
    // A v3 session may be reaped before its upstream websocket is open: that one is never
    // seen upstream, so only v4's count (none) is exact.
    await rounds(t, c, {
      expectLive: true,
      reaped: async () => c.upstream.closed === c.upstream.opened,
      perSession: eio === 4 ? 0 : undefined,
      // Measured plateaus with all 5,000 live at once (the worst case, see RETAIN_NOTE):
      // 17 MiB (v4), 23.4 MiB (v3).
      retain: (eio === 4 ? 24 : 32) << 20,
    });
    if (eio === 3) assert.ok(c.upstream.opened > 0, 'the default namespace opened upstream');
  }, {timeout: 90000});
}

// ---- pass-through ----------------------------------------------------------------------------

h.test(`pass-through, EIO=4: ${SESSIONS} abandoned polling sessions (3 rounds) are reaped by the ` +
       'upstream after pingInterval + pingTimeout; wsbridge holds nothing for them', async (t) => {
  const server = await h.startPeer('sio-server.js', ['--ping-interval', PING_INTERVAL,
                                                     '--ping-timeout', PING_TIMEOUT]);
  const c = await startCase(4, passThroughConfig, server);
  c.upstream = upstreamCounter(server, 'engine-connection', 'engine-close');
  await rounds(t, c, {
    expectLive: false,
    reaped: async () => c.upstream.opened > 0 && c.upstream.closed === c.upstream.opened,
    perSession: 1,
    retain: 4 << 20,  // measured: 0.4 MiB
  });
  assert.deepEqual(Object.keys(c.upstream.reasons), ['ping timeout'],
                   'the upstream reaped them all by its heartbeat');
}, {timeout: 90000});

h.test(`pass-through, EIO=3 (the v3 adapter): ${SESSIONS} abandoned polling sessions (3 rounds) ` +
       'and their upstream websockets are reaped after pingInterval + pingTimeout', async (t) => {
  const server = await h.startPeer('sio-server.js', ['--ping-interval', PING_INTERVAL,
                                                     '--ping-timeout', PING_TIMEOUT]);
  const c = await startCase(3, passThroughConfig, server);
  c.upstream = upstreamCounter(server, 'engine-connection', 'engine-close');
  await rounds(t, c, {
    expectLive: true,
    reaped: async () => c.upstream.opened > 0 && c.upstream.closed === c.upstream.opened,
    perSession: 1,
    // Measured plateau with all 5,000 live at once: 22.4 MiB (a session plus its upstream
    // websocket); 8-12 MiB where handshakes outlast the expiry (see RETAIN_NOTE).
    retain: 30 << 20,
  });
}, {timeout: 90000});

h.run();
