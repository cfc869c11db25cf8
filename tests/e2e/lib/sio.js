// Socket.IO helpers for the e2e tests: wsbridge configs for Socket.IO routes, socket.io-client
// connections that clean up after the case, awaiting events, and raw Engine.IO long-polling
// over node's http module.
//
//   const sio = require('./lib/sio');
//   const server = await h.startPeer('sio-server.js');
//   const port = await h.freePort();
//   await h.startWsbridge(sio.sioConfig({port, endpoints: [server.port]}));
//   const socket = await sio.connect(`http://127.0.0.1:${port}`, {transports: ['websocket']});
//   const events = sio.eventQueue(socket);
//   socket.emit('echo', 'hi');
//   h.assertDeepEqual(await events.next('echo'), ['hi']);
'use strict';

const http = require('node:http');
const {io, Manager} = require('socket.io-client');
const h = require('./harness');

// TOML for one listener and one Socket.IO cluster. downstream "socketio" is the pass-through,
// "websocket" the translate-up bridge. `routeExtra` / `clusterExtra` are appended verbatim to
// the route and the cluster tables; `extra` after everything (more routes, filters).
function sioConfig({
  port,
  endpoints,
  downstream = 'socketio',
  routePath = '/',
  clusterPath,
  sidKey,
  lb = 'round_robin',
  workers = 1,
  logLevel = 'debug',
  routeExtra = '',
  clusterExtra = '',
  extra = '',
}) {
  const eps = endpoints.map((e) => (typeof e === 'number' ? `127.0.0.1:${e}` : e));
  return `[runtime]
workers = ${workers}
log_level = "${logLevel}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"

[[route]]
path = "${routePath}"
downstream = "${downstream}"
cluster = "sio"
${sidKey !== undefined ? `sid_key = "${sidKey}"\n` : ''}${routeExtra}
[cluster.sio]
protocol = "socketio"
endpoints = [${eps.map((e) => `"${e}"`).join(', ')}]
lb = "${lb}"
connect_timeout = "1s"
${clusterPath ? `path = "${clusterPath}"\n` : ''}${clusterExtra}
${extra}`;
}

function cleanupSocket(socket) {
  h.defer(() => {
    socket.disconnect();
    socket.io.engine?.close();
  });
}

// A connected socket.io-client socket (no reconnection: a failure must surface, not be
// retried). Rejects with the connect_error. Closed at the end of the case.
async function connect(url, opts = {}, ms = 10000) {
  const socket = io(url, {forceNew: true, reconnection: false, timeout: ms, ...opts});
  cleanupSocket(socket);
  await waitConnected(socket, ms);
  return socket;
}

// Several namespace sockets over one Engine.IO session: manager.socket(nsp) for each.
function manager(url, opts = {}) {
  const m = new Manager(url, {reconnection: false, ...opts});
  h.defer(() => {
    for (const nsp of Object.keys(m.nsps)) m.nsps[nsp].disconnect();
    m.engine?.close();
  });
  return m;
}

function waitConnected(socket, ms = 10000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      done();
      reject(new Error(`socket ${socket.nsp}: not connected within ${ms} ms`));
    }, ms);
    const onConnect = () => {
      done();
      resolve(socket);
    };
    const onError = (err) => {
      done();
      reject(err);
    };
    const done = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

// Every event a socket receives, queued per name; next(name) resolves with its argument array
// (an ack callback the server asked for stays the last element).
function eventQueue(socket) {
  const queues = new Map();
  const waiters = new Map();
  socket.onAny((name, ...args) => {
    const w = waiters.get(name);
    if (w && w.length) {
      w.shift()(args);
      return;
    }
    if (!queues.has(name)) queues.set(name, []);
    queues.get(name).push(args);
  });
  return {
    next(name, ms = 10000) {
      const q = queues.get(name);
      if (q && q.length) return Promise.resolve(q.shift());
      return new Promise((resolve, reject) => {
        if (!waiters.has(name)) waiters.set(name, []);
        const list = waiters.get(name);
        const timer = setTimeout(() => {
          list.splice(list.indexOf(entry), 1);
          reject(new Error(`socket ${socket.nsp}: no '${name}' event within ${ms} ms`));
        }, ms);
        const entry = (args) => {
          clearTimeout(timer);
          resolve(args);
        };
        list.push(entry);
      });
    },
    pending(name) {
      return queues.get(name)?.length ?? 0;
    },
  };
}

// emit() with an ack; resolves with the ack's whole argument array.
function emitAck(socket, name, ...args) {
  return h.withTimeout(new Promise((resolve) => socket.emit(name, ...args, (...r) => resolve(r))),
                       10000, `ack for '${name}'`);
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP (Engine.IO long-polling by hand)

// One HTTP request; resolves {status, headers, body (string)}. A fresh connection by default.
function request(port, {method = 'GET', path = '/', headers = {}, body, agent = false} = {},
                 ms = 10000) {
  return h.withTimeout(new Promise((resolve, reject) => {
    const req = http.request({host: '127.0.0.1', port, method, path, headers, agent}, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers,
                                   body: Buffer.concat(chunks).toString('utf8')}));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  }), ms, `${method} ${path}`);
}

const RS = '\x1e';  // the Engine.IO v4 polling packet separator

// An Engine.IO v4 session by hand over polling; each call may go to a different port (wsbridge
// instance) of the same session.
class PollingSession {
  constructor(path = '/socket.io/') {
    this.path = path;
    this.sid = null;
    this.open = null;
  }
  url(extra = '') {
    return `${this.path}?EIO=4&transport=polling${this.sid ? `&sid=${this.sid}` : ''}${extra}`;
  }
  // GET without a sid: parses the OPEN packet; resolves the whole response with .open set.
  async handshake(port) {
    const res = await request(port, {path: this.url()});
    if (res.status !== 200 || res.body[0] !== '0') {
      throw new Error(`handshake: HTTP ${res.status} ${res.body}`);
    }
    const end = res.body.indexOf(RS);
    this.open = JSON.parse(res.body.slice(1, end < 0 ? undefined : end));
    this.sid = this.open.sid;
    res.open = this.open;
    return res;
  }
  post(port, packets) {
    const body = Array.isArray(packets) ? packets.join(RS) : packets;
    return request(port, {method: 'POST', path: this.url(),
                          headers: {'Content-Type': 'text/plain;charset=UTF-8'}, body});
  }
  get(port, ms = 10000) {
    return request(port, {path: this.url()}, ms);
  }
  // GETs until a packet satisfying `pred` arrives (pings are answered on the way via `pong`
  // port); resolves with that packet; other packets are collected in `seen`.
  async getUntil(port, pred, {pongPort = port, seen = [], ms = 10000} = {}) {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching packet within ${ms} ms; seen ${seen}`);
      const res = await this.get(port, left);
      if (res.status !== 200) throw new Error(`GET: HTTP ${res.status} ${res.body}`);
      for (const packet of res.body.split(RS)) {
        if (pred(packet)) return packet;
        seen.push(packet);
        if (packet === '2') {
          const pong = await this.post(pongPort, '3');
          if (pong.status !== 200) throw new Error(`pong: HTTP ${pong.status} ${pong.body}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Engine.IO by hand over a `ws` client (what a mini-program without a Socket.IO library does)

// Answers every ping `2` with `3` the moment it arrives (unless answerPings is false), records
// when pings came, and queues every other message in order: next() -> {text|null, data, isBinary}.
// `closed` resolves {code, reason, at} when the connection closes.
function eioClient(ws, {answerPings = true} = {}) {
  const items = [];
  const waiters = [];
  const pingWaiters = [];
  const pings = [];  // Date.now() of each ping
  let closed = null;
  let resolveClosed;
  const closedPromise = new Promise((resolve) => {
    resolveClosed = resolve;
  });
  const onMessage = (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const msg = {data: bytes, isBinary, text: isBinary ? null : bytes.toString('utf8')};
    if (msg.text === '2') {
      pings.push(Date.now());
      if (answerPings) ws.send('3');
      for (const w of pingWaiters.splice(0)) w();
      return;
    }
    if (waiters.length) waiters.shift().resolve(msg);
    else items.push(msg);
  };
  const onClose = (code, reason) => {
    closed = {code, reason: reason.toString(), at: Date.now()};
    for (const w of waiters.splice(0)) {
      w.reject(new Error(`closed (${code} ${reason}) while awaiting a message`));
    }
    for (const w of pingWaiters.splice(0)) w();
    resolveClosed(closed);
  };
  ws.on('message', onMessage);
  ws.on('close', onClose);
  // What arrived with the 101, before this client was attached (see harness.wsConnect).
  h.replayEarly(ws, onMessage, onClose);
  return {
    pings,
    closed: closedPromise,
    get pending() {
      return items.length;
    },
    next(ms = 10000) {
      if (items.length) return Promise.resolve(items.shift());
      if (closed) return Promise.reject(new Error(`closed (${closed.code} ${closed.reason})`));
      return new Promise((resolve, reject) => {
        const w = {};
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no Engine.IO message within ${ms} ms`));
        }, ms);
        w.resolve = (m) => {
          clearTimeout(timer);
          resolve(m);
        };
        w.reject = (e) => {
          clearTimeout(timer);
          reject(e);
        };
        waiters.push(w);
      });
    },
    async nextText(ms = 10000) {
      const m = await this.next(ms);
      if (m.isBinary) throw new Error(`expected a text message, got ${m.data.length} binary bytes`);
      return m.text;
    },
    // Resolves once `count` pings have arrived in all.
    async waitPings(count, ms = 10000) {
      const deadline = Date.now() + ms;
      while (pings.length < count) {
        if (closed) throw new Error(`closed (${closed.code}) after ${pings.length} ping(s)`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${pings.length} ping(s) within ${ms} ms, want ${count}`);
        let timer;
        await new Promise((resolve) => {
          pingWaiters.push(resolve);
          timer = setTimeout(resolve, left);
        });
        clearTimeout(timer);
      }
    },
  };
}

// The Engine.IO sid wsbridge hands out: <upstream sid>.<16 base64url chars>.
const SIGNED_SID = /^([A-Za-z0-9_-]{20})\.([A-Za-z0-9_-]{16})$/;

module.exports = {
  sioConfig,
  connect,
  manager,
  waitConnected,
  eventQueue,
  emitAck,
  request,
  PollingSession,
  eioClient,
  RS,
  SIGNED_SID,
};
