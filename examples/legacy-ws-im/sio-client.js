// A standard socket.io-client user of the legacy IM chat, through wsbridge's translate-down
// route: each line typed on stdin is sent as `chat`; what the others say is printed. The server
// it ends up on speaks raw `ws` and has never heard of Socket.IO.
//
//   node sio-client.js --url http://127.0.0.1:8080 --user carol
'use strict';
const readline = require('node:readline');
const {io} = require('socket.io-client');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const socket = io(arg('url', 'http://127.0.0.1:8080'), {query: {user: arg('user', 'carol')}});
socket.on('connect', () => console.log(`connected (${socket.io.engine.transport.name})`));
socket.on('welcome', (d) => console.log(`welcome ${d.name}; online: ${d.online.join(', ')}`));
socket.on('join', (d) => console.log(`${d.name} joined`));
socket.on('leave', (d) => console.log(`${d.name} left`));
socket.on('chat', (d) => console.log(`${d.from}: ${d.text}`));
socket.on('disconnect', (reason) => console.log(`disconnected: ${reason}`));

readline.createInterface({input: process.stdin})
    .on('line', (text) => socket.emit('chat', {text}))
    .on('close', () => socket.disconnect());
