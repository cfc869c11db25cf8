// Starts examples/legacy-ws-im as run.sh does, on free loopback ports: the raw `ws` IM server
// (which serves the page) and wsbridge on the example's own wsbridge.toml.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');

const EXAMPLE = path.join(__dirname, '..', '..', '..', 'examples', 'legacy-ws-im');

// opts: {sweepMs, port (wsbridge's, to restart it on the same one)}. Returns {server, bridge,
// port, start(): another wsbridge on the same port, im (ws:// URL of the relay route), base}.
async function startLegacyIm({sweepMs = 30000, port} = {}) {
  port ??= await h.freePort();
  const server = await h.startPeer(path.join(EXAMPLE, 'server.js'), [], {env: {
    PORT: '0', SWEEP_MS: String(sweepMs), WSBRIDGE_WS: `ws://127.0.0.1:${port}/im`,
  }});
  const toml = fs.readFileSync(path.join(EXAMPLE, 'wsbridge.toml'), 'utf8');
  const start = () => h.startWsbridge(toml, {
    env: {WSBRIDGE_PORT: String(port), IM_SERVER_PORT: String(server.port)},
    waitFor: [{host: '127.0.0.1', port}],
  });
  const bridge = await start();
  return {server, bridge, port, start, im: `ws://127.0.0.1:${port}/im`,
          base: `http://127.0.0.1:${port}`};
}

module.exports = {startLegacyIm, EXAMPLE};
