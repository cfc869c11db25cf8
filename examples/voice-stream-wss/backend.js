// The streaming backend: a plain `ws` server at /api/realtime-voice/stream on loopback that
// "recognises" audio by counting bytes. It does no TLS and no token checks: wsbridge in front
// terminates wss:// and verifies the JWT, and tells it who the user is in `X-User-Id`.
//
//   client text {"type":"start",...}  -> {"type":"ready","user":U}
//   client binary chunk              -> {"type":"partial","text":"chunk N: B bytes"}
//   client text {"type":"stop"}       -> {"type":"final","text":...,"chunks":N,"bytes":B},
//                                        then close 1000 "done"
//
// Env: PORT (default 9300; 0 picks a free one). Prints one JSON line per event, the first with
// the port.
'use strict';
const http = require('node:http');
const {WebSocketServer} = require('ws');

const PATH = '/api/realtime-voice/stream';
const port = Number(process.env.PORT ?? 9300);

function log(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const server = http.createServer((req, res) => {
  res.writeHead(404, {'Content-Type': 'application/json'});
  res.end('{"error":"not found"}');
});
const wss = new WebSocketServer({
  server,
  path: PATH,
  // Only wsbridge sets X-User-Id (from the verified token; a client's own is never forwarded),
  // so a request without it did not come through wsbridge.
  verifyClient: ({req}, done) => done(Boolean(req.headers['x-user-id']), 401, 'Unauthorized'),
});

wss.on('connection', (ws, req) => {
  const user = req.headers['x-user-id'];
  log({event: 'connection', user, proto: req.headers['x-forwarded-proto'] ?? null});
  let session = null;
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      if (!session) return ws.close(1008, 'audio before start');
      session.chunks++;
      session.bytes += data.length;
      const text = `chunk ${session.chunks}: ${data.length} bytes`;
      ws.send(JSON.stringify({type: 'partial', text}));
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return ws.close(1007, 'not JSON');
    }
    if (msg.type === 'start') {
      session = {chunks: 0, bytes: 0};
      ws.send(JSON.stringify({type: 'ready', user}));
    } else if (msg.type === 'stop' && session) {
      const {chunks, bytes} = session;
      ws.send(JSON.stringify({type: 'final', text: `heard ${bytes} bytes`, chunks, bytes}));
      log({event: 'stop', user, chunks, bytes});
      ws.close(1000, 'done');
    }
  });
  ws.on('close', (code) => log({event: 'close', user, code}));
});

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  log({port: actual, msg: `voice backend on ws://127.0.0.1:${actual}${PATH} (plain, loopback)`});
});
