// A real socket.io 4.8 server for the e2e tests: echoes events with and without acks, asks the
// client questions with acks, broadcasts to rooms, counts streamed binary audio, and reports
// what it sees as JSON lines on stdout.
//
// Args: --port N                             listen there (default: a free port)
//       --ping-interval MS --ping-timeout MS   Engine.IO heartbeat (defaults 25000 / 20000)
//       --transports polling,websocket         the server's transports (default both)
//       --max-http-buffer-size N               maxPayload (default 1e6)
//       --auth-nsp /secure --auth-token T      a namespace (it may be `/` or `/admin` too) whose
//                                              middleware admits only auth {token: T}; others
//                                              are refused with Error("invalid token")
//       --suite                                the public protocol suites' reference servers
//                                              too: namespace /custom, connectTimeout 1000,
//                                              on connect emit("auth", auth), message ->
//                                              emit("message-back", ...args),
//                                              message-with-ack -> ack(...args); and an
//                                              Engine.IO server at /engine.io/ that echoes
//                                              every message (the Engine.IO suite's)
//       --report-requests                      report every HTTP request and upgrade it gets
// Namespaces: `/`, `/admin`, `/realtime-voice` (and the auth namespace); every one runs the same
// handlers, by event name (the ack, if the client asked for one, is the last argument):
//   echo ...args         ack(...args) if asked, else emit("echo", ...args)
//   ask ...args          emit("question", ...args, cb); the answer is reported and then sent
//                        back as emit("answered", ...answer)
//   join room            socket.join(room); ack("joined", room)
//   broadcast room ...a  nsp.to(room).emit("broadcast", ...a); ack("sent")
//   emit name ...args    emit(name, ...args), where {"_bin":"<base64>"} args become Buffers
//   whoami               ack({pid, nsp, sid, engineSid, transport, auth, query})
//   audio buf            counts the bytes and hashes them in order (not reported one by one)
//   audio-end            ack({chunks, bytes, sha256}) for this socket's audio so far
//   start x / stop x     emit("started", x) / emit("stopped", x)
//   disconnect-me [all]  socket.disconnect(all === true)
// Reports (one JSON object per line; `at` is Date.now()):
//   {"port":N,"pid":P}                                first line, once listening on 127.0.0.1
//   {"event":"http-request","method":"GET","url":"/socket.io/?...","headers":{},"upgrade":false}
//                                                    with --report-requests, before socket.io
//   {"event":"engine-connection","engineSid":S,"transport":"polling","at":T}
//   {"event":"engine-upgrade","engineSid":S,"transport":"websocket","at":T}
//   {"event":"engine-close","engineSid":S,"reason":"ping timeout","at":T}
//   {"event":"engine-error","code":1,"message":"Session ID unknown","url":"..."}
//   {"event":"connection","nsp":"/admin","sid":S,"engineSid":S,"transport":"...","auth":{},
//    "query":{},"pid":P,"at":T}
//   {"event":"refused","nsp":"/secure","auth":{...}}  the auth middleware said no
//   {"event":"received","nsp":"/","sid":S,"name":"echo","args":[...],"ack":true}
//                                                    Buffers appear as {"_bin":"<base64>"}
//   {"event":"answer","nsp":"/","sid":S,"args":[...]}
//   {"event":"audio-summary","nsp":"/","sid":S,"chunks":N,"bytes":N,"sha256":"hex"}
//   {"event":"disconnect","nsp":"/","sid":S,"reason":"client namespace disconnect","at":T}
'use strict';

const crypto = require('node:crypto');
const http = require('node:http');
const {Server} = require('socket.io');
const {parseArgs, report} = require('./lib/peer');

const suite = process.argv.includes('--suite');  // flags without a value
const reportRequests = process.argv.includes('--report-requests');
const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--suite' &&
                                                           a !== '--report-requests'));


// Buffers as {"_bin": base64}, so reports stay JSON and tests can compare bytes.
function describe(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return {_bin: Buffer.from(value.buffer ? value.buffer : value, value.byteOffset ?? 0,
                              value.byteLength).toString('base64')};
  }
  if (Array.isArray(value)) return value.map(describe);
  if (value && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = describe(v);
    return out;
  }
  return value;
}

// The reverse of describe(): what a test asks the server to send as binary.
function revive(value) {
  if (Buffer.isBuffer(value)) return value;  // sent as binary already
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '_bin') return Buffer.from(value._bin, 'base64');
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = revive(v);
    return out;
  }
  return value;
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  pingInterval: Number(args['ping-interval'] ?? 25000),
  pingTimeout: Number(args['ping-timeout'] ?? 20000),
  maxHttpBufferSize: Number(args['max-http-buffer-size'] ?? 1e6),
  transports: (args.transports ?? 'polling,websocket').split(',').filter(Boolean),
  serveClient: false,
  ...(suite ? {connectTimeout: 1000} : {}),
});

if (suite) {
  const engine = require('engine.io').attach(httpServer, {
    path: '/engine.io',
    pingInterval: Number(args['ping-interval'] ?? 25000),
    pingTimeout: Number(args['ping-timeout'] ?? 20000),
    maxHttpBufferSize: Number(args['max-http-buffer-size'] ?? 1e6),
  });
  engine.on('connection', (socket) => {
    socket.on('data', (data) => socket.send(data));
    socket.on('upgrade', (transport) => {
      report({event: 'engine-upgrade', engineSid: socket.id, transport: transport.name,
              path: '/engine.io/', at: Date.now()});
    });
    socket.on('close', (reason) => {
      report({event: 'engine-close', engineSid: socket.id, reason, path: '/engine.io/',
              at: Date.now()});
    });
  });
}

io.engine.on('connection', (conn) => {
  report({event: 'engine-connection', engineSid: conn.id, transport: conn.transport.name,
          at: Date.now()});
  conn.on('upgrade', (transport) => {
    report({event: 'engine-upgrade', engineSid: conn.id, transport: transport.name,
            at: Date.now()});
  });
  conn.on('close', (reason) => {
    report({event: 'engine-close', engineSid: conn.id, reason, at: Date.now()});
  });
});
io.engine.on('connection_error', (err) => {
  report({event: 'engine-error', code: err.code, message: err.message, url: err.req?.url});
});

function serve(nsp) {
  nsp.on('connection', (socket) => {
    const name = nsp.name;
    const audio = {chunks: 0, bytes: 0, hash: crypto.createHash('sha256')};
    report({
      event: 'connection',
      nsp: name,
      sid: socket.id,
      engineSid: socket.conn.id,
      transport: socket.conn.transport.name,
      auth: socket.handshake.auth,
      query: socket.handshake.query,
      pid: process.pid,
      at: Date.now(),
    });
    if (suite) socket.emit('auth', socket.handshake.auth);
    socket.on('disconnect', (reason) => {
      report({event: 'disconnect', nsp: name, sid: socket.id, reason, at: Date.now()});
    });
    socket.onAny((event, ...rest) => {
      const ack = typeof rest[rest.length - 1] === 'function' ? rest.pop() : null;
      if (event === 'audio') {
        const chunk = Buffer.from(rest[0] ?? []);
        audio.chunks++;
        audio.bytes += chunk.length;
        audio.hash.update(chunk);
        return;
      }
      report({event: 'received', nsp: name, sid: socket.id, name: event, args: describe(rest),
              ack: ack !== null});
      switch (event) {
        case 'echo':
          if (ack) ack(...rest);
          else socket.emit('echo', ...rest);
          break;
        case 'ask':
          socket.emit('question', ...rest, (...answer) => {
            report({event: 'answer', nsp: name, sid: socket.id, args: describe(answer)});
            socket.emit('answered', ...answer);
          });
          break;
        case 'join':
          socket.join(String(rest[0]));
          ack?.('joined', String(rest[0]));
          break;
        case 'broadcast':
          nsp.to(String(rest[0])).emit('broadcast', ...rest.slice(1));
          ack?.('sent');
          break;
        case 'emit':
          socket.emit(String(rest[0]), ...revive(rest.slice(1)));
          ack?.('emitted');
          break;
        case 'whoami':
          ack?.({
            pid: process.pid,
            nsp: name,
            sid: socket.id,
            engineSid: socket.conn.id,
            transport: socket.conn.transport.name,
            auth: socket.handshake.auth,
            query: socket.handshake.query,
          });
          break;
        case 'audio-end': {
          const summary = {chunks: audio.chunks, bytes: audio.bytes,
                           sha256: audio.hash.copy().digest('hex')};
          report({event: 'audio-summary', nsp: name, sid: socket.id, ...summary});
          ack?.(summary);
          break;
        }
        case 'start':
          socket.emit('started', ...rest);
          break;
        case 'stop':
          socket.emit('stopped', ...rest);
          break;
        case 'message':
          if (suite) socket.emit('message-back', ...rest);
          break;
        case 'message-with-ack':
          if (suite) ack?.(...rest);
          break;
        case 'disconnect-me':
          socket.disconnect(rest[0] === true);
          break;
        default:
          break;
      }
    });
  });
}

const names = new Set(['/', '/admin', '/realtime-voice']);
if (args['auth-nsp']) names.add(args['auth-nsp']);
if (suite) names.add('/custom');
for (const name of names) {
  const nsp = io.of(name);
  if (name === args['auth-nsp']) {
    nsp.use((socket, next) => {
      if (socket.handshake.auth?.token === args['auth-token']) return next();
      report({event: 'refused', nsp: name, auth: socket.handshake.auth});
      next(new Error('invalid token'));
    });
  }
  serve(nsp);
}

if (reportRequests) {
  // Ahead of socket.io's own listeners: what each request carried, as the proxy sent it.
  for (const kind of ['request', 'upgrade']) {
    httpServer.prependListener(kind, (req) => {
      report({event: 'http-request', method: req.method, url: req.url, headers: req.headers,
              upgrade: kind === 'upgrade'});
    });
  }
}

httpServer.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  report({port: httpServer.address().port, pid: process.pid});
});

// The harness owns our stdin: when it goes away, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
