// A voice streaming client over wss://: connects with its token in the query, sends `start`,
// streams microphone chunks as binary frames, prints every message and close, stops; after a
// dropped connection it reconnects and carries on with the next unsent chunk.
//
//   node client.js --url wss://localhost:8443/api/realtime-voice/stream --ca .certs/ca.pem
//                  [--user alice] [--token JWT] [--chunks 8] [--drop-after 3]
'use strict';
const fs = require('node:fs');
const WebSocket = require('ws');

const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 5000];

// Closes after which trying again cannot help: 1000 the session is done, 1008 policy, and
// refused upgrades 401 / 403 (the token will be refused again).
const FINAL_CLOSE_CODES = new Set([1000, 1008]);

function micChunk(i, bytes) {
  const b = Buffer.alloc(bytes);
  b.writeUInt32BE(i, 0);
  return b;
}

// Resolves with the `final` message, rejects when it gives up. print(line) gets one line per
// thing the client sees. dropAfter = K > 0: after chunk K's partial, drop the network once.
function streamVoice({url, token, ca, chunks = 8, chunkBytes = 3200, intervalMs = 40,
                      dropAfter = 0, print = console.log}) {
  return new Promise((resolve, reject) => {
    let next = 0;
    let attempt = 0;
    let dropPending = dropAfter > 0;
    let final = null;
    const full = token ? `${url}?token=${encodeURIComponent(token)}` : url;

    const connect = () => {
      const ws = new WebSocket(full, {perMessageDeflate: false, ...(ca ? {ca} : {})});
      let sentHere = 0;
      let refused = null;
      let timer = null;
      const pump = () => {
        timer = null;
        if (ws.readyState !== WebSocket.OPEN) return;
        if (dropPending && sentHere === dropAfter) return;  // wait for its partial, then drop
        if (next === chunks) {
          ws.send(JSON.stringify({type: 'stop'}));
          return;
        }
        ws.send(micChunk(next, chunkBytes));
        next++;
        sentHere++;
        timer = setTimeout(pump, intervalMs);
      };
      ws.on('open', () => {
        attempt = 0;
        print('open');
        ws.send(JSON.stringify({type: 'start', format: 'pcm', sampleRate: 16000}));
      });
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString());
        print(`${msg.type} ${JSON.stringify(msg)}`);
        if (msg.type === 'ready') pump();
        if (msg.type === 'final') final = msg;
        if (msg.type === 'partial' && dropPending && msg.text.startsWith(`chunk ${dropAfter}:`)) {
          dropPending = false;
          print('network lost (demo: the socket is dropped without a close)');
          ws.terminate();
        }
      });
      let gone = false;
      // Once per connection: from 'close', or from a refused upgrade (which emits no close).
      const onGone = (code, reason) => {
        if (gone) return;
        gone = true;
        if (timer) clearTimeout(timer);
        if (!refused) print(`closed ${code}${reason.length ? ` ${reason}` : ''}`);
        if (final) return resolve(final);
        if (refused === 401 || refused === 403 || FINAL_CLOSE_CODES.has(code)) {
          return reject(new Error(refused ? `refused (HTTP ${refused})` : `closed (${code})`));
        }
        // A certificate the client does not trust will not be trusted next time either.
        if (tlsFailure) return reject(new Error('TLS handshake failed'));
        attempt++;
        if (attempt > 3) return reject(new Error('no connection after 3 attempts'));
        print(`reconnecting (attempt ${attempt})`);
        const delay = RECONNECT_DELAYS_MS[Math.min(attempt - 1, RECONNECT_DELAYS_MS.length - 1)];
        setTimeout(connect, delay);
      };
      let tlsFailure = false;
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          refused = res.statusCode;
          print(`refused: HTTP ${res.statusCode} ${body}`);
          req.destroy();
          onGone(1006, '');
        });
      });
      ws.on('error', (err) => {
        if (/certificate|SSL|TLS|EPROTO/i.test(`${err.code} ${err.message}`)) tlsFailure = true;
        print(`error: ${err.code ? `${err.code} ` : ''}${err.message}`);
      });
      ws.on('close', (code, reason) => onGone(code, reason));
    };
    connect();
  });
}

module.exports = {streamVoice};

if (require.main === module) {
  const args = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    args[argv[i].replace(/^--/, '').replace(/-([a-z])/g, (m, c) => c.toUpperCase())] = argv[i + 1];
  }
  const jwt = require('./jwt');
  streamVoice({
    url: args.url || 'wss://localhost:8443/api/realtime-voice/stream',
    token: args.token ?? jwt.mint(args.user || 'alice'),
    ca: args.ca ? fs.readFileSync(args.ca) : undefined,
    chunks: Number(args.chunks || 8),
    dropAfter: Number(args.dropAfter || 0),
  }).then(() => console.log('done'), (err) => {
    console.log(`gave up: ${err.message}`);
    process.exitCode = 1;
  });
}
