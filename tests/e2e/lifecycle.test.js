// Process lifecycle through signals: wsbridge must obey SIGTERM/SIGHUP from the moment it accepts.
'use strict';

const h = require('./lib/harness');

// The harness signals as soon as the listener accepts TCP; a handler installed only after the
// workers start listening loses the race and the default action kills the process.
h.test('SIGTERM right after the listener accepts drains and exits 0 (20 starts)', async () => {
  for (let i = 0; i < 20; i++) {
    const port = await h.freePort();
    const bridge = await h.startWsbridge(h.relayConfig({port, endpoints: [1], logLevel: 'info'}));
    const r = await bridge.stop({signal: 'SIGTERM', timeout: 10000});
    h.assertDeepEqual({code: r.code, signal: r.signal}, {code: 0, signal: null}, `start ${i}`);
  }
});

h.test('SIGHUP right after the listener accepts does not kill the process (20 starts)',
       async () => {
  for (let i = 0; i < 20; i++) {
    const port = await h.freePort();
    const bridge = await h.startWsbridge(h.relayConfig({port, endpoints: [1], logLevel: 'info'}));
    bridge.proc.kill('SIGHUP');
    // Still serving afterwards: a fresh TCP connect succeeds and the process is alive.
    await h.waitForTcp('127.0.0.1', port, 5000, bridge.exited);
    h.assert.equal(bridge.proc.exitCode, null, `start ${i}: exited after SIGHUP`);
    h.assert.equal(bridge.proc.signalCode, null, `start ${i}: killed by ${bridge.proc.signalCode}`);
    await bridge.stop();
  }
});
