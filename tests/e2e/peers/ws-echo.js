// A `ws` echo backend for the e2e tests: echoes every message with its type, obeys JSON text
// commands, and reports what it sees as JSON lines on stdout.
//
// Args: --protocols a,b   subprotocols it accepts; picks the first the client offers that is
//                         in this list (none offered/matching: no protocol)
//       --max-payload N   ws maxPayload (messages above it close 1009); default 100 MiB
//       --tls-cert F --tls-key F   serve wss
// Commands (a text message starting with {"cmd": that parses as JSON):
//   {"cmd":"close","code":4000,"reason":"bye"}   close with that code and reason
//   {"cmd":"stream","bytes":N,"chunk":65536}      send N bytes as binary messages of `chunk`
//                                                 bytes, only as fast as the socket drains
//   {"cmd":"send","text":"..."} / {"cmd":"send","base64":"..."}  send one text/binary message
//   {"cmd":"terminate"}                           drop the TCP connection without a close frame
// Reports (one JSON object per line):
//   {"port":N}                                    first line, once listening on 127.0.0.1
//   {"event":"connection","id":1,"path":"/x","protocol":"chat","offered":"a, chat","headers":{}}
//   {"event":"progress","id":1,"sent":N,"queued":N,"buffered":N,"done":false}  every 100 ms
//                                                 while streaming, and once at the end
//   {"event":"close","id":1,"code":4000,"reason":"bye"}   every close (1006: no close frame)
//   {"event":"error","id":1,"message":"..."}
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const {WebSocketServer} = require('ws');
const {parseArgs, report, streamBinary} = require('./lib/peer');

const args = parseArgs(process.argv.slice(2));
const protocols = args.protocols ? args.protocols.split(',').filter(Boolean) : [];
const maxPayload = args['max-payload'] ? Number(args['max-payload']) : 100 << 20;


const server = args['tls-cert'] ?
    https.createServer({cert: fs.readFileSync(args['tls-cert']),
                        key: fs.readFileSync(args['tls-key'])}) :
    http.createServer();
server.on('request', (req, res) => {
  res.writeHead(426, {'content-type': 'text/plain'});
  res.end('websocket only\n');
});

const wss = new WebSocketServer({
  server,
  maxPayload,
  perMessageDeflate: false,
  handleProtocols: (offered) => {
    for (const p of offered) {
      if (protocols.includes(p)) return p;
    }
    return false;
  },
});

let nextId = 1;
wss.on('connection', (ws, req) => {
  const id = nextId++;
  report({
    event: 'connection',
    id,
    path: req.url,
    protocol: ws.protocol,
    offered: req.headers['sec-websocket-protocol'] ?? null,
    headers: req.headers,
  });

  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length > 8 && data.subarray(0, 7).toString() === '{"cmd":') {
      let cmd = null;
      try {
        cmd = JSON.parse(data.toString('utf8'));
      } catch {
        // not a command after all: echo it
      }
      if (cmd) return runCommand(ws, id, cmd);
    }
    ws.send(data, {binary: isBinary});
  });
  ws.on('close', (code, reason) => {
    report({event: 'close', id, code, reason: reason.toString('utf8')});
  });
  ws.on('error', (err) => report({event: 'error', id, message: err.message}));
});

function runCommand(ws, id, cmd) {
  switch (cmd.cmd) {
    case 'close':
      ws.close(cmd.code, cmd.reason ?? '');
      break;
    case 'stream':
      // `sent` counts what the kernel accepted: it stalls when wsbridge stops reading.
      streamBinary(ws, {
        total: Number(cmd.bytes),
        chunk: Number(cmd.chunk ?? 65536),
        highWater: cmd.high_water === undefined ? undefined : Number(cmd.high_water),
        progress: (p) => report({event: 'progress', id, ...p}),
      });
      break;
    case 'send':
      if (cmd.base64 !== undefined) ws.send(Buffer.from(cmd.base64, 'base64'), {binary: true});
      else ws.send(String(cmd.text ?? ''));
      break;
    case 'terminate':
      ws.terminate();
      break;
    default:
      report({event: 'error', id, message: `unknown command ${cmd.cmd}`});
  }
}

server.listen(0, '127.0.0.1', () => report({port: server.address().port}));

// The harness owns our stdin: when it goes away, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
