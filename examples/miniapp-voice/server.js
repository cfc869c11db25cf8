// The voice backend a mini-program streams to: a socket.io 4.8 server whose `/realtime-voice`
// namespace runs a fake speech recogniser (it "hears" byte counts). It prints one JSON line per
// thing it does, the first with the port it listens on.
//
//   start {token, ...}  -> ready {user}, or error {message} and disconnect when the token is bad
//   audio <binary>      -> result {text, isFinal: false}
//   stop                -> result {text, isFinal: true}, stopped {chunks, bytes} (and the ack)
//
// Two ways in, both through wsbridge (see wsbridge.toml):
// * the Socket.IO pass-through: the client speaks Engine.IO itself and puts its JWT in `start`,
//   which this server checks;
// * translate up: wsbridge checked the JWT before the client got its WebSocket, and joins this
//   namespace with CONNECT auth {user, gateway}; a socket carrying the gateway key is trusted
//   with the user wsbridge verified, and its `start` needs no token.
//
// Env: PORT (default 3000; 0 picks a free one), JWT_SECRET, VOICE_GATEWAY_KEY, PING_INTERVAL_MS
// and PING_TIMEOUT_MS (Engine.IO heartbeat, default 25000 / 20000; the tests shorten them).
'use strict';
const http = require('node:http');
const crypto = require('node:crypto');
const {Server} = require('socket.io');
const jwt = require('./jwt');

const port = Number(process.env.PORT ?? 3000);
const gatewayKey = process.env.VOICE_GATEWAY_KEY || 'miniapp-voice-gateway-key';

function log(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function sameSecret(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  maxHttpBufferSize: 1e6,
  pingInterval: Number(process.env.PING_INTERVAL_MS || 25000),
  pingTimeout: Number(process.env.PING_TIMEOUT_MS || 20000),
});
const voice = io.of('/realtime-voice');

voice.use((socket, next) => {
  const auth = socket.handshake.auth || {};
  // Only wsbridge knows the gateway key, so only it can vouch for a user.
  if (auth.gateway !== undefined && sameSecret(auth.gateway, gatewayKey) && auth.user) {
    socket.data.user = String(auth.user);
  }
  next();
});

voice.on('connection', (socket) => {
  const via = socket.data.user ? 'wsbridge-auth' : 'app-auth';
  log({event: 'connection', sid: socket.id, via, user: socket.data.user ?? null});
  let session = null;  // {user, chunks, bytes} once `start` succeeded

  socket.on('start', (opts = {}) => {
    const user = socket.data.user ?? jwt.verify(opts && opts.token)?.sub;
    if (!user) {
      const message = opts && opts.token ? 'invalid token' : 'missing token';
      log({event: 'refused', sid: socket.id, message});
      socket.emit('error', {message});
      socket.disconnect(true);
      return;
    }
    session = {user, chunks: 0, bytes: 0};
    log({event: 'start', sid: socket.id, user});
    socket.emit('ready', {user});
  });

  socket.on('audio', (chunk) => {
    if (!session) {
      socket.emit('error', {message: 'audio before start'});
      return;
    }
    const n = Buffer.isBuffer(chunk) ? chunk.length : 0;
    session.chunks++;
    session.bytes += n;
    socket.emit('result', {text: `chunk ${session.chunks}: ${n} bytes`, isFinal: false});
  });

  socket.on('stop', (...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    const summary = session ? {chunks: session.chunks, bytes: session.bytes} :
                              {chunks: 0, bytes: 0};
    socket.emit('result', {text: `heard ${summary.bytes} bytes`, isFinal: true});
    socket.emit('stopped', summary);
    if (ack) ack(summary);
    log({event: 'stop', sid: socket.id, user: session?.user ?? null, ...summary});
    session = null;
  });

  socket.on('disconnect', (reason) => log({event: 'disconnect', sid: socket.id, reason}));
});

httpServer.listen(port, '127.0.0.1', () => {
  const actual = httpServer.address().port;
  log({port: actual, msg: `socket.io voice server on 127.0.0.1:${actual}, namespace ` +
                          '/realtime-voice'});
});
