// A legacy raw-`ws` chat backend for the translate-down tests: broadcasts every text message to
// every client on the same path (sender included), answers text "ping" with "pong", answers
// envelope acks, obeys in-band commands, and reports what it sees as JSON lines on stdout.
//
// Behaviour per message from a client:
//   "ping"                                  -> "pong" to the sender only
//   {"event":"__cmd","data":{...}}          -> a command (below), not broadcast
//   JSON with "ack":N and an "event"        -> {"ack":N,"data":{"ok":true,"got":<data|args>}}
//                                              to the sender, and the message (without "ack")
//                                              broadcast
//   any other text                          -> broadcast unchanged
//   binary                                  -> echoed to the sender
// Commands ({"event":"__cmd","data":{"op":...}}):
//   {"op":"close","code":4000,"reason":"bye"}  close this connection
//   {"op":"send","text":"..."}                 send text to this connection
//   {"op":"binary","base64":"..."}             send binary to this connection
//   {"op":"stream","bytes":N,"chunk":65536}    send N bytes as binary messages, keeping a few
//                                              chunks queued here; reports progress
// Reports (one JSON object per line):
//   {"port":N}                                  first, once listening on 127.0.0.1
//   {"event":"connection","id":1,"path":"/","query":"a=1","headers":{...}}
//   {"event":"text","id":1,"text":"..."} / {"event":"binary","id":1,"base64":"..."}
//   {"event":"close","id":1,"code":1000,"reason":""}
//   {"event":"progress","id":1,"sent":N,"queued":N,"buffered":N,"total":N,"done":false}
//                                               every 100 ms while streaming, and once at the end
'use strict';

const http = require('node:http');
const {WebSocketServer} = require('ws');
const {report, streamBinary} = require('./lib/peer');

const server = http.createServer((req, res) => {
  res.writeHead(426, {'content-type': 'text/plain'});
  res.end('websocket only\n');
});
const wss = new WebSocketServer({server, perMessageDeflate: false});
let nextId = 1;
const clients = new Set();

wss.on('connection', (ws, req) => {
  const id = nextId++;
  const [path, query = ''] = req.url.split('?');
  const client = {ws, id, path};
  clients.add(client);
  report({event: 'connection', id, path, query, headers: req.headers});

  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      report({event: 'binary', id, base64: Buffer.from(data).toString('base64')});
      ws.send(data, {binary: true});
      return;
    }
    const text = data.toString('utf8');
    report({event: 'text', id, text});
    if (text === 'ping') {
      ws.send('pong');
      return;
    }
    let msg = null;
    try {
      msg = JSON.parse(text);
    } catch {
      // plain text: broadcast as is
    }
    if (msg && msg.event === '__cmd' && msg.data) {
      const cmd = msg.data;
      if (cmd.op === 'close') ws.close(cmd.code || 1000, cmd.reason || '');
      if (cmd.op === 'send') ws.send(cmd.text);
      if (cmd.op === 'binary') ws.send(Buffer.from(cmd.base64, 'base64'), {binary: true});
      if (cmd.op === 'stream') {
        // `sent` counts what the kernel accepted: it stalls when wsbridge stops reading.
        streamBinary(ws, {total: Number(cmd.bytes), chunk: Number(cmd.chunk ?? 65536),
                          progress: (p) => report({event: 'progress', id, ...p})});
      }
      return;
    }
    let out = text;
    if (msg && typeof msg === 'object' && msg.event !== undefined && msg.ack !== undefined) {
      ws.send(JSON.stringify({ack: msg.ack, data: {ok: true, got: msg.data ?? msg.args ?? null}}));
      const copy = {...msg};
      delete copy.ack;
      out = JSON.stringify(copy);
    }
    for (const c of clients) {
      if (c.path === path && c.ws.readyState === c.ws.OPEN) c.ws.send(out);
    }
  });
  ws.on('close', (code, reason) => {
    clients.delete(client);
    report({event: 'close', id, code, reason: reason.toString()});
  });
  ws.on('error', (err) => report({event: 'error', id, message: err.message}));
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
server.listen(0, '127.0.0.1', () => report({port: server.address().port}));
