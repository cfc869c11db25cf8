// Upstreams that misbehave on purpose, written by hand on Node's net module so that every byte is
// the case's choice: a TCP server that accepts and never answers, a WebSocket server that
// completes the upgrade (a correct 101) and then does what the case says, and an HTTP server
// that answers the Engine.IO handshake and then holds every request. Each listens on 127.0.0.1
// on a h.freePort() port and is closed, with its connections, when the case ends.
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');
const h = require('../../e2e/lib/harness');

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function acceptKey(key) {
  return crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
}

// A server whose connections are tracked: `accepted` counts them, `spoke` those that sent a
// byte (wsbridge's admin thread probes endpoints with bare TCP connects every 2 s: those never
// do), `nextConnection()` resolves with the next one that spoke (or one that spoke before
// anybody asked), all are destroyed at the end.
async function listen(server) {
  const port = await h.freePort();
  const sockets = new Set();
  const waiting = [];
  const unclaimed = [];
  let accepted = 0;
  let spoke = 0;
  server.on('connection', (socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => {
      spoke++;
      if (waiting.length) waiting.shift()(socket);
      else unclaimed.push(socket);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  h.defer(() => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return {
    port,
    server,
    get accepted() {
      return accepted;
    },
    get spoke() {
      return spoke;
    },
    get open() {
      return sockets.size;
    },
    nextConnection(ms = 10000) {
      if (unclaimed.length) return Promise.resolve(unclaimed.shift());
      return h.withTimeout(new Promise((resolve) => waiting.push(resolve)), ms,
                           `a connection to the upstream on ${port}`);
    },
  };
}

// Accepts TCP and never sends a byte (it reads, so the request is taken off the wire).
async function stallingServer() {
  const server = net.createServer((socket) => socket.resume());
  return listen(server);
}

// A WebSocket server by hand: reads the upgrade request, answers 101 with the right
// Sec-WebSocket-Accept, then calls onUpgrade(socket, {head, path}) with the socket in its hands
// (bytes after the request head arrive as later 'data'). `frames(socket)` collects the frames it
// is sent (unmasked for it) in socket.frames.
async function rawWsServer(onUpgrade) {
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      const key = /^sec-websocket-key:\s*(\S+)/im.exec(head);
      const path = head.split(' ')[1];
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
                   'Connection: Upgrade\r\n' +
                   `Sec-WebSocket-Accept: ${acceptKey(key ? key[1] : '')}\r\n\r\n`);
      onUpgrade(socket, {head, path});
      if (rest.length) socket.emit('data', rest);
    };
    socket.on('data', onData);
  });
  return listen(server);
}

// Collects what a rawWsServer socket receives as frames: socket.frames, and `await next()`.
function frameReader(socket) {
  const decoder = new h.FrameDecoder();
  const frames = [];
  const waiters = [];
  socket.on('data', (d) => {
    decoder.push(d);
    for (let f; (f = decoder.next());) {
      if (waiters.length) waiters.shift()(f);
      else frames.push(f);
    }
  });
  return {
    next(ms = 10000) {
      if (frames.length) return Promise.resolve(frames.shift());
      return h.withTimeout(new Promise((resolve) => waiters.push(resolve)), ms,
                           'a frame at the upstream');
    },
    // The next close frame, skipping others: {code, reason, masked}.
    async close(ms = 10000) {
      for (;;) {
        const f = await this.next(ms);
        if (f.opcode === h.OP.CLOSE) return {...h.parseClose(f.payload), masked: f.masked};
      }
    },
  };
}

// A server->client frame (unmasked unless asked), any opcode, RSV bits or length.
function serverFrame(opts) {
  return h.encodeFrame({mask: false, ...opts});
}

// An Engine.IO v4 OPEN packet as a socket.io server sends it.
function openPacket({sid = 'AAAAAAAAAAAAAAAAAAAA', pingInterval = 25000, pingTimeout = 20000,
                     upgrades = []} = {}) {
  return '0' + JSON.stringify({sid, upgrades, pingInterval, pingTimeout, maxPayload: 1000000});
}

// An Engine.IO polling server that answers the handshake GET (no sid) with an OPEN and then
// holds every other request forever (a server that hangs mid-session). `requests` lists what
// it was asked ("GET sid", "POST sid").
async function stallingPollingServer(open = {}) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const sid = url.searchParams.get('sid');
    requests.push(`${req.method} ${sid ? 'sid' : 'handshake'}`);
    req.resume();
    if (sid) return;  // held
    const body = openPacket({upgrades: [], ...open});
    res.writeHead(200, {'Content-Type': 'text/plain; charset=UTF-8',
                        'Content-Length': Buffer.byteLength(body)});
    res.end(body);
  });
  const s = await listen(server);
  s.requests = requests;
  return s;
}

module.exports = {acceptKey, stallingServer, rawWsServer, frameReader, serverFrame, openPacket,
                  stallingPollingServer};
