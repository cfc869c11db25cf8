// The legacy IM server of the legacy-ws-im example, as such servers are written: a raw `ws` chat
// that broadcasts each message to the others, answers text "ping" with "pong", and sweeps every
// 30 s for sockets that did not answer its WebSocket ping. It also serves the browser page.
// It knows nothing of wsbridge or Socket.IO. One JSON line per thing it does on stdout, the first
// with its port.
//
//   connect ?user=NAME  -> {"event":"welcome","data":{"name","online":[...]}} to the newcomer,
//                          {"event":"join","data":{"name"}} to the others
//   "ping"              -> "pong" (counted: through wsbridge this never arrives)
//   {"event":"chat","data":{"text":"hi"}}, or any other text
//                       -> {"event":"chat","data":{"from":NAME,"text":"hi"}} to the others
//   close               -> {"event":"leave","data":{"name"}} to the others
//
// Env: PORT (default 9000; 0 picks a free one), SWEEP_MS (default 30000), WSBRIDGE_WS (where the
// page connects, default ws://127.0.0.1:8080/im).
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const {WebSocketServer} = require('ws');

const port = Number(process.env.PORT ?? 9000);
const sweepMs = Number(process.env.SWEEP_MS || 30000);
const page = fs.readFileSync(path.join(__dirname, 'index.html'), 'utf8')
                 .replace('{{WSBRIDGE_WS}}', process.env.WSBRIDGE_WS || 'ws://127.0.0.1:8080/im');

function log(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const server = http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'});
  res.end(page);
});
const wss = new WebSocketServer({server});
let guests = 0;
let textPings = 0;

const send = (ws, event, data) => ws.send(JSON.stringify({event, data}));
function toOthers(except, event, data) {
  for (const ws of wss.clients) {
    if (ws !== except && ws.readyState === ws.OPEN) send(ws, event, data);
  }
}

// The chat text of a message: the envelope's data.text, else the message itself.
function chatText(text) {
  try {
    const msg = JSON.parse(text);
    if (msg && msg.event === 'chat' && typeof msg.data?.text === 'string') return msg.data.text;
  } catch {
    // not JSON: plain text is chat too
  }
  return text;
}

wss.on('connection', (ws, req) => {
  const user = new URL(req.url, 'http://localhost').searchParams.get('user');
  ws.name = user || `guest-${++guests}`;
  ws.isAlive = true;
  ws.on('pong', () => (ws.isAlive = true));
  log({event: 'connection', name: ws.name, via: req.headers['x-forwarded-for'] ? 'wsbridge' :
                                                                                  'direct'});
  send(ws, 'welcome', {name: ws.name, online: [...wss.clients].map((c) => c.name).sort()});
  toOthers(ws, 'join', {name: ws.name});

  ws.on('message', (data, isBinary) => {
    ws.isAlive = true;
    if (isBinary) return;
    const text = data.toString();
    if (text === 'ping') {
      log({event: 'text-ping', name: ws.name, count: ++textPings});
      ws.send('pong');
      return;
    }
    const chat = chatText(text);
    log({event: 'chat', from: ws.name, text: chat});
    toOthers(ws, 'chat', {from: ws.name, text: chat});
  });

  ws.on('close', (code) => {
    log({event: 'close', name: ws.name, code});
    toOthers(ws, 'leave', {name: ws.name});
  });
});

// The classic liveness sweep: a socket that did not answer the last ping is dead.
const sweep = setInterval(() => {
  for (const ws of wss.clients) {
    if (!ws.isAlive) {
      log({event: 'sweep-terminate', name: ws.name});
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, sweepMs);
wss.on('close', () => clearInterval(sweep));

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  log({port: actual, msg: `legacy IM server on ws://127.0.0.1:${actual}/, page on ` +
                          `http://127.0.0.1:${actual}/`});
});
