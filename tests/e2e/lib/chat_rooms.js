// Starts examples/chat-rooms as run.sh does, on free loopback ports, for the e2e tests: a
// throwaway redis-server, the two chat server processes, the page's web server and wsbridge on
// the example's own wsbridge.toml. Everything is killed by PID when the case ends.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./harness');

const EXAMPLE = path.join(__dirname, '..', '..', '..', 'examples', 'chat-rooms');
// One secret for the servers, web.js, wsbridge and the tests' own tokens (before jwt.js reads it).
process.env.JWT_SECRET = 'e2e-chat-rooms-secret';

async function startRedis() {
  const port = await h.freePort();
  const proc = childProcess.spawn('redis-server', [
    '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no',
    '--loglevel', 'warning',
  ], {stdio: 'ignore'});
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  h.defer(async () => {
    proc.kill('SIGKILL');
    await exited;
  });
  await h.waitForTcp('127.0.0.1', port, 10000, exited);
  return {port, url: `redis://127.0.0.1:${port}`};
}

// Returns {base (wsbridge's http:// URL), servers: [a, b] peers, web (peer or null), bridge}.
async function startChatRooms({web = false} = {}) {
  const redis = await startRedis();
  const bridgePort = await h.freePort();
  const base = `http://127.0.0.1:${bridgePort}`;
  const page = web ? await h.startPeer(path.join(EXAMPLE, 'web.js'), [], {
    env: {PORT: '0', WSBRIDGE_URL: base},
  }) : null;
  const servers = await Promise.all(['a', 'b'].map((name) =>
    h.startPeer(path.join(EXAMPLE, 'server.js'), [], {env: {
      PORT: '0', NAME: name, REDIS_URL: redis.url,
      ...(page ? {PAGE_ORIGIN: `http://127.0.0.1:${page.port}`} : {}),
    }})));
  const toml = fs.readFileSync(path.join(EXAMPLE, 'wsbridge.toml'), 'utf8');
  const bridge = await h.startWsbridge(toml, {
    env: {
      WSBRIDGE_PORT: String(bridgePort),
      CHAT_PORT_A: String(servers[0].port),
      CHAT_PORT_B: String(servers[1].port),
    },
    waitFor: [{host: '127.0.0.1', port: bridgePort}],
  });
  return {base, servers, web: page, bridge, redis};
}

module.exports = {startChatRooms, startRedis, EXAMPLE};
