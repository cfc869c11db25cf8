// The quickstart backend: a `ws` chat server on 127.0.0.1:9000 that echoes each message to its
// sender and broadcasts it to everyone else, plus the page at http://127.0.0.1:9000/ whose
// browser client talks to it *through wsbridge* at ws://127.0.0.1:8080/.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 9000);
const page = fs.readFileSync(path.join(__dirname, 'index.html'));

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(page);
});
const wss = new WebSocketServer({ server });
let next = 1;
wss.on('connection', (ws, req) => {
  const name = `guest-${next++}`;
  const from = req.headers['x-forwarded-for'] || req.socket.remoteAddress;
  console.log(`${name} connected (client ${from})`);
  ws.send(JSON.stringify({ event: 'welcome', data: { name } }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) return ws.send(data, { binary: true });  // binary: echo only
    const text = data.toString();
    for (const peer of wss.clients) {
      if (peer.readyState === peer.OPEN) peer.send(JSON.stringify({ event: 'chat', data: { from: name, text } }));
    }
  });
  ws.on('close', (code, reason) => console.log(`${name} closed ${code} ${reason}`));
});
server.listen(port, '127.0.0.1', () => {
  console.log(`backend: ws://127.0.0.1:${port}/ and the page http://127.0.0.1:${port}/`);
});
