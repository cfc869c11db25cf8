// The admin listener end to end: relay traffic through wsbridge to the ws-echo backend, then
// check that /healthz, /ready, /stats, /metrics and /config report exactly what the test did.
'use strict';

const {get, getUntil, parseMetrics} = require('./lib/admin');
const h = require('./lib/harness');

const {assert} = h;

function config({port, adminPort, endpoints, extra = ''}) {
  return `[runtime]
workers = 2
log_level = "info"
drain_timeout = "3s"

[admin]
address = "127.0.0.1:${adminPort}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/chat"
downstream = "websocket"
cluster = "echo"
sid_key = "e2e-sid-key-value"

[cluster.echo]
protocol = "websocket"
endpoints = [${endpoints.map((e) => `"127.0.0.1:${e}"`).join(', ')}]
connect_timeout = "1s"

[filter.jwt]
type = "auth.jwt"
secret = "e2e-jwt-secret-value"
algorithms = ["HS256"]
${extra}`;
}

async function start(endpoints, extra) {
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const bridge = await h.startWsbridge(config({port, adminPort, endpoints, extra}));
  return {port, adminPort, bridge};
}

h.test('stats and metrics equal the connections, messages and refusals the test made',
       async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port, adminPort} = await start([echo.port]);

  const health = await get(adminPort, '/healthz');
  h.assertEqual(health.status, 200);
  h.assertEqual(health.body, 'ok\n');
  const ready = await getUntil(adminPort, '/ready', (r) => r.status === 200, 'ready');
  assert.deepEqual(JSON.parse(ready.body), {ready: true});

  // Three clients close 1000, one 4001; every message is echoed before its client closes.
  let up = 0, down = 0, upBytes = 0, downBytes = 0;
  const codes = [1000, 1000, 1000, 4001];
  for (let c = 0; c < codes.length; c++) {
    const ws = await h.wsConnect(`ws://127.0.0.1:${port}/chat`);
    const q = h.messageQueue(ws);
    for (let i = 0; i <= c + 2; i++) {
      const text = `message ${c}.${i} ` + 'x'.repeat(i * 100);
      ws.send(text);
      up++;
      upBytes += Buffer.byteLength(text);
      const echoed = await q.next();
      h.assertEqual(echoed.data.toString(), text);
      down++;
      downBytes += echoed.data.length;
    }
    const bin = Buffer.alloc(1000 + c, c);
    ws.send(bin);
    up++;
    upBytes += bin.length;
    h.assertBytesEqual((await q.next()).data, bin);
    down++;
    downBytes += bin.length;
    ws.close(codes[c], 'bye');
    await h.once(ws, 'close');
  }
  // One handshake with no route.
  const raw = await h.rawConnect(port);
  const refused = await raw.handshake('/nowhere');
  h.assertEqual(refused.status, 404);

  const statsRes = await getUntil(adminPort, '/stats', (r) => {
    const s = JSON.parse(r.body);
    return s.routes['/chat'] && s.routes['/chat'].active === 0 && s.handshakes_refused['404'];
  }, 'every connection closed');
  h.assertEqual(statsRes.status, 200);
  assert.match(statsRes.headers['content-type'], /application\/json/);
  const stats = JSON.parse(statsRes.body);
  const chat = stats.routes['/chat'];
  h.assertEqual(chat.accepted, 4);
  assert.deepEqual(chat.closed, {'1000': 3, '4001': 1});
  assert.deepEqual(chat.messages, {to_upstream: up, to_client: down});
  assert.deepEqual(chat.bytes, {to_upstream: upBytes, to_client: downBytes});
  assert.deepEqual(stats.handshakes_refused, {'404': 1});
  h.assertEqual(stats.connections.accepted, 4);
  h.assertEqual(stats.connections.active, 0);
  // The harness's own readiness probes of the listener are TCP connections too.
  assert.ok(stats.connections.tcp_accepted >= 5, `tcp_accepted ${stats.connections.tcp_accepted}`);
  const upstream = stats.upstreams.echo[`127.0.0.1:${echo.port}`];
  h.assertEqual(upstream.connect_failures, 0);
  h.assertEqual(upstream.reachable, true);
  h.assertEqual(upstream.connect_ms.count, 4);  // one upstream connect per client
  assert.deepEqual(stats.clusters, {echo: {accepted: 4, active: 0, closed: {'1000': 3, '4001': 1}}});

  const metricsRes = await get(adminPort, '/metrics');
  h.assertEqual(metricsRes.status, 200);
  assert.match(metricsRes.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const m = parseMetrics(metricsRes.body);
  h.assertEqual(m['wsbridge_connections_accepted_total{route="/chat"}'], 4);
  h.assertEqual(m['wsbridge_connections_active{route="/chat"}'], 0);
  h.assertEqual(m['wsbridge_connections_closed_total{route="/chat",code="1000"}'], 3);
  h.assertEqual(m['wsbridge_connections_closed_total{route="/chat",code="4001"}'], 1);
  h.assertEqual(m['wsbridge_handshakes_refused_total{status="404"}'], 1);
  h.assertEqual(m['wsbridge_messages_total{route="/chat",direction="to_upstream"}'], up);
  h.assertEqual(m['wsbridge_messages_total{route="/chat",direction="to_client"}'], down);
  h.assertEqual(m['wsbridge_bytes_total{route="/chat",direction="to_upstream"}'], upBytes);
  h.assertEqual(m['wsbridge_bytes_total{route="/chat",direction="to_client"}'], downBytes);
  h.assertEqual(m[`wsbridge_upstream_up{cluster="echo",endpoint="127.0.0.1:${echo.port}"}`], 1);
  h.assertEqual(m[`wsbridge_upstream_connect_seconds_count{cluster="echo",endpoint="127.0.0.1:${echo.port}"}`], 4);
  h.assertEqual(m[`wsbridge_upstream_connect_seconds_bucket{cluster="echo",endpoint="127.0.0.1:${echo.port}",le="+Inf"}`], 4);
  h.assertEqual(m['wsbridge_cluster_connections_accepted_total{cluster="echo"}'], 4);
  h.assertEqual(m['wsbridge_cluster_connections_closed_total{cluster="echo",code="1000"}'], 3);

  const cfg = await get(adminPort, '/config');
  h.assertEqual(cfg.status, 200);
  const parsed = JSON.parse(cfg.body);
  h.assertEqual(parsed.filters.jwt.secret, '<redacted>');
  h.assertEqual(parsed.routes[0].sid_key, '<redacted>');
  h.assertEqual(parsed.routes[0].path, '/chat');
  assert.ok(!cfg.body.includes('e2e-jwt-secret-value'), 'jwt secret leaked');
  assert.ok(!cfg.body.includes('e2e-sid-key-value'), 'sid_key leaked');

  h.assertEqual((await get(adminPort, '/nope')).status, 404);
}, {timeout: 60000});

h.test('upstream connect failures are counted per endpoint and make /ready 503', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const dead = await h.freePort();  // nothing listens here
  const {port, adminPort} = await start([dead, echo.port], `
[[route]]
path = "/dead"
cluster = "dead"

[cluster.dead]
endpoints = ["127.0.0.1:${dead}"]
connect_timeout = "1s"
`);
  // The listener takes TCP connections into its backlog a moment before the workers run.
  const ready = await getUntil(adminPort, '/ready', (r) => r.body.includes('no endpoint') &&
                               !r.body.includes('not accepting'), 'the dead cluster probed');
  h.assertEqual(ready.status, 503);
  assert.deepEqual(JSON.parse(ready.body),
                   {ready: false, reasons: ["cluster 'dead': no endpoint reachable"]});

  // Round robin tries the dead endpoint of "echo" first on one of the two connects.
  for (let i = 0; i < 2; i++) {
    const ws = await h.wsConnect(`ws://127.0.0.1:${port}/chat`);
    ws.close(1000);
    await h.once(ws, 'close');
  }
  const raw = await h.rawConnect(port);
  h.assertEqual((await raw.handshake('/dead')).status, 502);

  const m = parseMetrics((await getUntil(adminPort, '/metrics',
                                         (r) => r.body.includes('status="502"'), '502')).body);
  h.assertEqual(m['wsbridge_handshakes_refused_total{status="502"}'], 1);
  const failures = m[`wsbridge_upstream_connect_failures_total{cluster="echo",endpoint="127.0.0.1:${dead}"}`] || 0;
  assert.ok(failures >= 1 && failures <= 2, `echo failures ${failures}`);
  h.assertEqual(m[`wsbridge_upstream_connect_failures_total{cluster="dead",endpoint="127.0.0.1:${dead}"}`], 1);
  h.assertEqual(m[`wsbridge_upstream_up{cluster="dead",endpoint="127.0.0.1:${dead}"}`], 0);
}, {timeout: 60000});

h.test('/ready answers 503 from the first moment of a drain', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const {port, adminPort, bridge} = await start([echo.port]);
  await getUntil(adminPort, '/ready', (r) => r.status === 200, 'ready');
  // A client that never answers the close keeps the drain going until drain_timeout.
  const raw = await h.rawConnect(port);
  h.assertEqual((await raw.handshake('/chat')).status, 101);
  const stopped = bridge.stop();
  const draining = await getUntil(adminPort, '/ready', (r) => r.status === 503, 'drain', 3000);
  assert.deepEqual(JSON.parse(draining.body), {ready: false, reasons: ['draining']});
  h.assertEqual((await get(adminPort, '/healthz')).status, 200);
  await stopped;
}, {timeout: 30000});

h.test('a non-loopback admin address is refused at startup', async () => {
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const toml = config({port, adminPort, endpoints: [1]}).replace(
      `address = "127.0.0.1:${adminPort}"`, `address = "0.0.0.0:${adminPort}"`);
  await assert.rejects(h.startWsbridge(toml, {waitFor: [{host: '127.0.0.1', port: adminPort}]}),
                       /is not a loopback address.*allow_remote = true/);
}, {timeout: 30000});
