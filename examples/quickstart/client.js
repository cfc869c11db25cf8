// A terminal client for the quickstart: connects through wsbridge, sends a line per stdin line.
// Usage: node examples/quickstart/client.js [ws://127.0.0.1:8080/]
'use strict';
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[2] || 'ws://127.0.0.1:8080/');
ws.on('open', () => {
  console.log('connected through wsbridge; type a message and press enter');
  process.stdin.on('data', (line) => ws.send(line.toString().trim()));
  process.stdin.on('end', () => ws.close(1000, 'bye'));
});
ws.on('message', (data) => console.log('<', data.toString()));
ws.on('close', (code, reason) => { console.log(`closed ${code} ${reason}`); process.exit(0); });
ws.on('error', (err) => { console.error(err.message); process.exit(1); });
