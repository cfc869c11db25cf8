// The chat-rooms page and its demo login service, on their own origin like a real web app:
//
//   GET /                        the page (public/index.html, told where wsbridge is)
//   GET /vendor/socket.io.min.js the standard socket.io client, from node_modules (no CDN)
//   GET /token?user=NAME         {"token": JWT for NAME}: stands in for the app's login service
//
// Env: PORT (default 8000; 0 picks a free one), WSBRIDGE_URL (default http://127.0.0.1:8080),
// JWT_SECRET (shared with wsbridge, which verifies the tokens). Prints {"port":N} first.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const jwt = require('./jwt');

const port = Number(process.env.PORT ?? 8000);
const bridge = process.env.WSBRIDGE_URL || 'http://127.0.0.1:8080';
const page = fs.readFileSync(path.join(__dirname, 'public', 'index.html'), 'utf8')
                 .replace('{{WSBRIDGE_URL}}', bridge);
// The package's exports hide dist/, so find it next to the package's main file.
const clientDir = path.join(path.dirname(require.resolve('socket.io-client')), '..', '..', 'dist');
const client = fs.readFileSync(path.join(clientDir, 'socket.io.min.js'));

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const send = (status, type, body) => {
    res.writeHead(status, {'Content-Type': type});
    res.end(body);
  };
  if (url.pathname === '/') return send(200, 'text/html; charset=utf-8', page);
  if (url.pathname === '/vendor/socket.io.min.js') {
    return send(200, 'application/javascript', client);
  }
  if (url.pathname === '/token') {
    const user = url.searchParams.get('user');
    if (!user || !/^[\w.-]{1,32}$/.test(user)) {
      return send(400, 'application/json', '{"error":"user: 1-32 letters, digits, . _ -"}');
    }
    return send(200, 'application/json', JSON.stringify({token: jwt.mint(user)}));
  }
  send(404, 'text/plain', 'not found');
});

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  process.stdout.write(JSON.stringify({port: actual, msg: `page on http://127.0.0.1:${actual}/`}) +
                       '\n');
});
