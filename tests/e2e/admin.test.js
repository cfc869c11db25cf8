// The admin listener end to end: relay traffic through wsbridge to the ws-echo backend, then
// check that /healthz, /ready, /stats, /metrics and /config report exactly what the test did;
// and its guards: the bearer token, Host and Origin checks, secrets kept out of /config.
'use strict';

const {spawnSync} = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {get, getUntil, parseMetrics, request} = require('./lib/admin');
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

// Secrets the token cases configure; none may appear in any admin answer.
const TOKEN = 'e2e-admin-token-0123456789';
const SECRETS = {
  WSB_E2E_ADMIN_TOKEN: TOKEN,
  WSB_E2E_SID_KEY: 'e2e-sid-key-from-env',
  WSB_E2E_REDIS_PASS: 'e2e-redis-pass',
};
const LITERAL_SECRETS = ['e2e-jwt-secret-value', 'e2e-sid-key-value', 'e2e-upstream-auth-value'];

function tokenConfig({port, adminPort, echoPort, adminHost = '127.0.0.1'}) {
  return config({port, adminPort, endpoints: [echoPort], extra: `
[[route]]
path = "/sio"
downstream = "websocket"
cluster = "echo"
sid_key = "\${WSB_E2E_SID_KEY}"
upstream_auth = { token = "{query.token}", static = "e2e-upstream-auth-value" }

[filter.limit]
type = "rate_limit"
messages_per_second = 100
store = "redis"
redis = "redis://:\${WSB_E2E_REDIS_PASS}@127.0.0.1:6379/0"
`}).replace(`[admin]
address = "127.0.0.1:${adminPort}"`, `[admin]
address = "${adminHost}:${adminPort}"
token = "\${WSB_E2E_ADMIN_TOKEN}"`);
}

const bearer = (token) => ({authorization: `Bearer ${token}`});

h.test('with [admin] token every endpoint but /healthz and /ready answers 401 without it',
       async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  await h.startWsbridge(tokenConfig({port, adminPort, echoPort: echo.port}), {env: SECRETS});

  h.assertEqual((await get(adminPort, '/healthz')).body, 'ok\n');
  const ready = await getUntil(adminPort, '/ready', (r) => r.status === 200, 'ready');
  assert.deepEqual(JSON.parse(ready.body), {ready: true});

  const paths = ['/', '/index.html', '/stats', '/metrics', '/config', '/connections', '/nope'];
  for (const [method, p] of [...paths.map((p) => ['GET', p]), ['POST', '/drain'],
                             ['POST', '/reload']]) {
    for (const headers of [{}, bearer('wrong'), bearer(TOKEN + 'x'), {authorization: TOKEN},
                           {authorization: `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}`}]) {
      const r = await request(adminPort, method, p, 5000, headers);
      h.assertEqual(r.status, 401, `${method} ${p} ${JSON.stringify(headers)}`);
      h.assertEqual(r.headers['www-authenticate'], 'Bearer realm="wsbridge admin"');
      if (p === '/' || p === '/index.html') {
        // The page carries no figures; it asks for the token and sends it as a header.
        assert.match(r.body, /id="login"/);
      } else {
        h.assertEqual(r.body, '{"error":"unauthorized"}\n');
      }
    }
  }

  for (const p of ['/stats', '/metrics', '/connections', '/config', '/']) {
    const r = await get(adminPort, p, 5000, bearer(TOKEN));
    h.assertEqual(r.status, 200, p);
    for (const secret of [...Object.values(SECRETS), ...LITERAL_SECRETS]) {
      assert.ok(!r.body.includes(secret), `${p} shows ${secret}`);
    }
  }
  h.assertEqual((await get(adminPort, '/stats', 5000, {authorization: `bearer   ${TOKEN}`})).status,
                200);

  const cfg = await get(adminPort, '/config', 5000, bearer(TOKEN));
  assert.ok(cfg.body.includes('<redacted>'));
  const parsed = JSON.parse(cfg.body);
  h.assertEqual(parsed.admin.token, '<redacted>');
  h.assertEqual(parsed.routes[1].sid_key, '<redacted>');
  assert.deepEqual(parsed.routes[1].upstream_auth, {static: '<redacted>', token: '<redacted>'});
  h.assertEqual(parsed.filters.jwt.secret, '<redacted>');
  h.assertEqual(parsed.filters.limit.redis, 'redis://:<redacted>@127.0.0.1:6379/0');

  // /ready stays open for probes but names no cluster without the token.
  h.assertEqual((await get(adminPort, '/ready', 5000, bearer(TOKEN))).status, 200);
}, {timeout: 60000});

h.test('a foreign Origin or Host is refused 403 and a cross-site POST /drain drains nothing',
       async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  await h.startWsbridge(tokenConfig({port, adminPort, echoPort: echo.port}), {env: SECRETS});
  await getUntil(adminPort, '/ready', (r) => r.status === 200, 'ready');

  // A web page's simple POST: text/plain, its own Origin; with or without the token.
  for (const extra of [{}, bearer(TOKEN)]) {
    for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${adminPort}`,
                          `http://127.0.0.1:${adminPort + 1}`]) {
      const r = await request(adminPort, 'POST', '/drain', 5000,
                              {origin, 'content-type': 'text/plain', ...extra});
      h.assertEqual(r.status, 403, origin);
      h.assertEqual(r.body, '{"error":"cross-origin request refused"}\n');
    }
  }
  h.assertEqual((await get(adminPort, '/healthz', 5000, {origin: 'http://evil.example'})).status,
                403);
  // Still running, not draining: the relay works and /ready is 200.
  h.assertEqual((await get(adminPort, '/healthz')).status, 200);
  h.assertEqual((await get(adminPort, '/ready')).status, 200);
  const ws = await h.wsConnect(`ws://127.0.0.1:${port}/chat`);
  const q = h.messageQueue(ws);
  ws.send('still relaying');
  h.assertEqual((await q.next()).data.toString(), 'still relaying');
  ws.close(1000);

  // Its own origin, under each of its loopback names, is fine.
  for (const name of ['127.0.0.1', 'localhost']) {
    const r = await get(adminPort, '/stats', 5000,
                        {origin: `http://${name}:${adminPort}`, host: `${name}:${adminPort}`,
                         ...bearer(TOKEN)});
    h.assertEqual(r.status, 200, name);
  }

  // DNS rebinding: a name that resolves here but is not this listener's.
  for (const host of ['rebind.example', `rebind.example:${adminPort}`, `127.0.0.1:${adminPort + 1}`]) {
    for (const p of ['/healthz', '/stats']) {
      const r = await get(adminPort, p, 5000, {host, ...bearer(TOKEN)});
      h.assertEqual(r.status, 403, `${host} ${p}`);
      h.assertEqual(r.body, '{"error":"Host does not name this admin listener"}\n');
    }
  }
  h.assertEqual((await get(adminPort, '/healthz')).status, 200);
}, {timeout: 60000});

// `wsbridge check` and (unless run: false) `wsbridge run` on the same file: {file, check, run}.
function checkAndRun(toml, env = {}, {run = true} = {}) {
  if (h.direct) throw new h.Skip('needs wsbridge (WSBRIDGE_BIN unset or E2E_DIRECT=1)');
  const file = path.join(h.tmpDir(), 'wsbridge.toml');
  fs.writeFileSync(file, toml);
  const opts = {encoding: 'utf8', timeout: 10000, env: {...process.env, ...env}};
  return {
    file,
    check: spawnSync(h.WSBRIDGE_BIN, ['check', '-c', file], opts),
    run: run && spawnSync(h.WSBRIDGE_BIN, ['run', '-c', file], opts),
  };
}

h.test('check and run both refuse 0.0.0.0 without a token, with the same message', async () => {
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const toml = config({port, adminPort, endpoints: [1]}).replace(
      `address = "127.0.0.1:${adminPort}"`, `address = "0.0.0.0:${adminPort}"`);
  const {file, check, run} = checkAndRun(toml);
  const expected = `${file}:7:11: [admin] address 0.0.0.0:${adminPort} is not a loopback ` +
      'address; the admin listener exposes the configuration and can drain the proxy, so set ' +
      '[admin] token to serve it beyond this host\n';
  h.assertEqual(check.status, 1);
  h.assertEqual(check.stderr, expected);
  h.assertEqual(run.status, 1, `run: ${run.stdout}${run.stderr}`);
  h.assertEqual(run.stderr, expected);
}, {timeout: 30000});

h.test('with a token check accepts 0.0.0.0 and run serves it', async () => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  const toml = tokenConfig({port, adminPort, echoPort: echo.port, adminHost: '0.0.0.0'});
  const {check} = checkAndRun(toml, SECRETS, {run: false});
  h.assertEqual(check.stderr, '');
  h.assertEqual(check.stdout, 'ok\n');
  h.assertEqual(check.status, 0);

  await h.startWsbridge(toml, {env: SECRETS, waitFor: [{host: '127.0.0.1', port},
                                                       {host: '127.0.0.1', port: adminPort}]});
  // A wildcard bind has no name of its own: any Host, the token guards it.
  h.assertEqual((await get(adminPort, '/healthz', 5000, {host: `admin.internal:${adminPort}`})).status,
                200);
  h.assertEqual((await get(adminPort, '/stats')).status, 401);
  h.assertEqual((await get(adminPort, '/stats', 5000, bearer(TOKEN))).status, 200);
  const cross = await request(adminPort, 'POST', '/drain', 5000,
                              {host: `admin.internal:${adminPort}`, origin: 'http://evil.example',
                               ...bearer(TOKEN)});
  h.assertEqual(cross.status, 403);
  const same = await get(adminPort, '/stats', 5000,
                         {host: `admin.internal:${adminPort}`,
                          origin: `http://admin.internal:${adminPort}`, ...bearer(TOKEN)});
  h.assertEqual(same.status, 200);
}, {timeout: 30000});
