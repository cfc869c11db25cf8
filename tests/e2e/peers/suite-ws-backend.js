// The Socket.IO protocol suite's reference app, as a raw-`ws` backend behind a translate-down
// route: what the suite's socket.io server does, in envelope messages.
//
//   connection on / or /custom   -> {"event":"auth","data":{...query}}: the CONNECT auth object
//                                   reaches a translate-down upstream as query parameters
//   any other path               -> HTTP 404 (the namespace does not exist)
//   {"event":"message",...}      -> {"event":"message-back","args":[...the same args]}
//   {"event":"message-with-ack","ack":N,...} -> {"ack":N,"args":[...the same args]}
// Reports: {"port":N} first, then {"event":"connection","path":"/custom","query":"token=abc"}.
'use strict';

const http = require('node:http');
const {WebSocketServer} = require('ws');

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const NAMESPACES = new Set(['/', '/custom']);

const server = http.createServer((req, res) => {
  res.writeHead(426, {'content-type': 'text/plain'});
  res.end('websocket only\n');
});
const wss = new WebSocketServer({noServer: true, perMessageDeflate: false});
server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  if (!NAMESPACES.has(path)) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

// An envelope's arguments: "args" when there are several, "data" for one, none otherwise.
function argsOf(msg) {
  if (Array.isArray(msg.args)) return msg.args;
  return msg.data === undefined ? [] : [msg.data];
}

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://backend');
  report({event: 'connection', path: url.pathname, query: url.search.slice(1)});
  ws.send(JSON.stringify({event: 'auth', data: Object.fromEntries(url.searchParams)}));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return;  // the suite sends no plain text
    }
    if (msg.event === 'message') {
      ws.send(JSON.stringify({event: 'message-back', args: argsOf(msg)}));
    } else if (msg.event === 'message-with-ack' && msg.ack !== undefined) {
      ws.send(JSON.stringify({ack: msg.ack, args: argsOf(msg)}));
    }
  });
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
server.listen(0, '127.0.0.1', () => report({port: server.address().port}));
