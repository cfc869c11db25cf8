// The admin dashboard in headless Chromium: while the test drives WebSocket and Socket.IO traffic,
// the page's figures change and match /stats, and a screenshot is saved in the build directory.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const {io} = require('socket.io-client');
const {getJson, until} = require('./lib/admin');
const h = require('./lib/harness');

const {assert} = h;
const CHROMIUM = '/usr/bin/chromium';

h.test('the dashboard shows live figures that match /stats', async (t) => {
  if (!fs.existsSync(CHROMIUM)) t.skip(`${CHROMIUM} is not installed`);
  const {chromium} = require('playwright-core');

  const echo = await h.startPeer('ws-echo.js');
  const sio = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  await h.startWsbridge(`[runtime]
workers = 2
drain_timeout = "2s"

[admin]
address = "127.0.0.1:${adminPort}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "/chat"
cluster = "echo"

[[route]]
path = "/feed"
cluster = "echo"

[[route]]
path = "/socket.io/"
downstream = "socketio"
cluster = "sio"
sid_key = "dashboard-sid-key"

[cluster.echo]
endpoints = ["127.0.0.1:${echo.port}"]

[cluster.sio]
protocol = "socketio"
endpoints = ["127.0.0.1:${sio.port}"]
`, {waitFor: [{host: '127.0.0.1', port}, {host: '127.0.0.1', port: adminPort}]});

  // Traffic: WebSocket clients on two routes and Socket.IO clients emitting events, until stopped.
  let running = true;
  const loops = [];
  const wsClients = async (route, count, every) => {
    for (let i = 0; i < count; i++) {
      const ws = await h.wsConnect(`ws://127.0.0.1:${port}${route}`);
      const q = h.messageQueue(ws);
      loops.push((async () => {
        while (running) {
          ws.send(`tick ${i}`);
          await q.next();
          await new Promise((resolve) => setTimeout(resolve, every));
        }
      })());
    }
  };
  await wsClients('/chat', 12, 20);
  await wsClients('/feed', 4, 50);
  for (let i = 0; i < 3; i++) {
    const socket = io(`http://127.0.0.1:${port}`, {transports: ['websocket'], forceNew: true,
                                                   reconnection: false});
    t.defer(() => socket.close());
    await h.withTimeout(h.once(socket, 'connect'), 5000, 'socket.io connect');
    loops.push((async () => {
      for (let n = 0; running; n++) {
        await socket.emitWithAck('echo', n);
        socket.emit(n % 3 ? 'start' : 'stop', n);
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })());
  }
  for (let i = 0; i < 2; i++) {
    const raw = await h.rawConnect(port);
    h.assertEqual((await raw.handshake('/nowhere')).status, 404);
  }

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  t.defer(() => browser.close());
  const page = await browser.newPage({viewport: {width: 1280, height: 900}});
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`http://127.0.0.1:${adminPort}/`);
  h.assertEqual(await page.title(), 'wsbridge');
  const read = () => page.evaluate(() => {
    const text = (sel) => document.querySelector(sel)?.textContent ?? null;
    return {
      polls: Number(document.body.dataset.polls || 0),
      state: text('#state'),
      active: Number(text('#active-total')),
      accepted: Number(text('#accepted-total')),
      refused: Number(text('#refused-total')),
      inRate: Number(text('#msgs-in-rate')),
      outRate: Number(text('#msgs-out-rate')),
      chatActive: Number(text('tr[data-route="/chat"] .active')),
      chatIn: Number(text('tr[data-route="/chat"] .messages-in')),
      refusal404: text('#refusals tr[data-status="404"] td.n'),
      events: [...document.querySelectorAll('#events tbody tr')].map((r) => r.textContent),
      upstreams: [...document.querySelectorAll('#upstreams tbody tr')].map((r) => r.innerHTML),
    };
  });

  // Live: rates above zero, the connection figures those of /stats (they are steady now).
  const live = await until(async () => {
    const v = await read();
    return v.polls >= 3 && v.inRate > 0 && v.outRate > 0 && v.active === 19 && v;
  }, 'live figures', 15000, 100);
  h.assertEqual(live.state, 'ready');
  h.assertEqual(live.chatActive, 12);
  h.assertEqual(live.refused, 2);
  h.assertEqual(live.refusal404, '2');
  const stats = await getJson(adminPort, '/stats');
  h.assertEqual(stats.connections.active, live.active);
  h.assertEqual(stats.connections.accepted, live.accepted);
  h.assertEqual(stats.routes['/chat'].active, live.chatActive);
  assert.ok(live.events.some((e) => e.includes('/socket.io/') && e.includes('echo')),
            `events table: ${live.events}`);
  assert.ok(live.upstreams.some((u) => u.includes('dot up') && u.includes(`${echo.port}`)),
            `upstreams table: ${live.upstreams}`);

  // The message counters move on the page from one poll to the next.
  const first = await read();
  const later = await until(async () => {
    const v = await read();
    return v.polls >= first.polls + 2 && v.chatIn > first.chatIn && v;
  }, 'the /chat message count to grow', 15000, 100);
  assert.ok(later.chatIn > first.chatIn);

  const shot = path.join(process.env.WSB_BUILD_DIR || h.tmpDir('wsb-dashboard-'), 'dashboard.png');
  await page.screenshot({path: shot, fullPage: true});
  t.log(`screenshot: ${shot}`);
  assert.ok(fs.statSync(shot).size > 10000);

  // Traffic stops: once the page has polled again its totals equal those of /stats exactly.
  running = false;
  await Promise.all(loops);
  const settled = await getJson(adminPort, '/stats');
  const shown = await read();
  const after = await until(async () => {
    const v = await read();
    return v.polls > shown.polls + 1 && v;
  }, 'a poll after the traffic stopped', 15000, 100);
  h.assertEqual(after.chatIn, settled.routes['/chat'].messages.to_upstream);
  h.assertEqual(after.accepted, settled.connections.accepted);
  h.assertEqual(after.inRate, 0);
  assert.deepEqual(pageErrors, []);
}, {timeout: 90000});

h.test('with [admin] token the dashboard asks for it and sends it only as a header', async (t) => {
  if (!fs.existsSync(CHROMIUM)) t.skip(`${CHROMIUM} is not installed`);
  const {chromium} = require('playwright-core');
  const token = 'dashboard-admin-token-42';
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const adminPort = await h.freePort();
  await h.startWsbridge(`[admin]
address = "127.0.0.1:${adminPort}"
token = "${token}"

[[listener]]
address = "127.0.0.1:${port}"

[[route]]
cluster = "echo"

[cluster.echo]
endpoints = ["127.0.0.1:${echo.port}"]
`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  t.defer(() => browser.close());
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  const requests = [];
  page.on('request', (r) => requests.push({url: r.url(), auth: r.headers().authorization}));
  const response = await page.goto(`http://127.0.0.1:${adminPort}/`);
  h.assertEqual(response.status(), 401);
  await page.waitForSelector('#login:not([hidden])', {timeout: 10000});
  h.assertEqual(await page.textContent('#state'), 'token needed');

  await page.fill('#token', 'not-the-token');
  await page.click('#login button');
  await page.waitForFunction(() => document.querySelector('#state').textContent === 'wrong token',
                             null, {timeout: 10000});
  await page.fill('#token', token);
  await page.click('#login button');
  await page.waitForFunction(() => Number(document.body.dataset.polls || 0) >= 2, null,
                             {timeout: 15000});
  assert.ok(await page.isHidden('#login'));
  assert.ok(requests.some((r) => r.url.endsWith('/stats') && r.auth === `Bearer ${token}`),
            JSON.stringify(requests));
  for (const r of requests) assert.ok(!r.url.includes(token), `token in a URL: ${r.url}`);
  assert.deepEqual(pageErrors, []);
}, {timeout: 60000});
