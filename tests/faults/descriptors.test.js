// Running out of file descriptors: a client that holds every descriptor wsbridge may open must
// not make the accept loop spin or flood the log, and wsbridge serves again once they close.
'use strict';
const net = require('node:net');
const {execFileSync} = require('node:child_process');
const h = require('../e2e/lib/harness');
const sio = require('../e2e/lib/sio');

const {assert} = h;

function openIdle(port, count) {
  return Promise.all(Array.from({length: count}, () => new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.once('connect', () => resolve(socket));
    socket.once('close', () => resolve(socket));
  })));
}

h.test('EMFILE: 400 idle connections past a 128-descriptor limit: the listener pauses (no ' +
       'spin, a log line a second at most, counted in /metrics), then serves again', async (t) => {
  const echo = await h.startPeer('ws-echo.js');
  const port = await h.freePort();
  const admin = await h.freePort();
  // All 400 come from 127.0.0.1: no per-address cap, the descriptor limit is what is tested.
  const bridge = await h.startWsbridge(h.relayConfig({port, endpoints: [echo.port],
                                                      logLevel: 'info',
                                                      listenerExtra: 'max_handshakes_per_ip = 0\n',
                                                      extra: `
[admin]
address = "127.0.0.1:${admin}"
`}));
  execFileSync('prlimit', ['--pid', String(bridge.pid), '--nofile=128:128']);
  const logBefore = bridge.logs().split('\n').length;
  const cpuBefore = h.readCpuSeconds(bridge.pid);
  const started = Date.now();
  const idle = await openIdle(port, 400);
  h.defer(() => idle.forEach((s) => s.destroy()));
  // Hold them for two seconds: a spinning accept loop burns a core meanwhile.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const cpu = h.readCpuSeconds(bridge.pid) - cpuBefore;
  const elapsed = (Date.now() - started) / 1000;
  const lines = bridge.logs().split('\n').slice(logBefore)
      .filter((l) => l.includes('accept() failed'));
  t.log(`${cpu.toFixed(2)} s CPU in ${elapsed.toFixed(1)} s; ${lines.length} log line(s)`);
  assert.ok(lines.length >= 1, 'the exhaustion is logged');
  assert.ok(lines.length <= Math.ceil(elapsed) + 1, `at most one line a second: ${lines.length}`);
  assert.ok(cpu < 0.5 * elapsed, `no accept spin: ${cpu} s CPU in ${elapsed} s`);
  idle.forEach((s) => s.destroy());

  // Descriptors free again: a client is served (the pause is 100 ms).
  const deadline = Date.now() + 10000;
  for (;;) {
    try {
      const ws = await h.wsConnect(`ws://127.0.0.1:${port}/`);
      const queue = h.messageQueue(ws);
      ws.send('after');
      assert.equal((await queue.next()).data.toString(), 'after');
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const metrics = (await sio.request(admin, {path: '/metrics'})).body;
  const line = metrics.split('\n').find((l) =>
    l.startsWith('wsbridge_accept_errors_total{reason="no_descriptors"}'));
  assert.ok(line && Number(line.split(' ').pop()) > 0, `counted: ${line}`);
}, {timeout: 60000});

h.run();
