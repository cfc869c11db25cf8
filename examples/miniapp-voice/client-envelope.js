// The same voice app written against wsbridge's envelope: one JSON text message per event
// ({"event":"start","data":{...}}), audio as plain binary frames, acks as {"ack":N}. wsbridge's
// translate-up route is the Socket.IO client upstream (handshake, namespace, pings), and its
// auth.jwt filter checks the token in the query before the upgrade: a bad token is an HTTP 403
// (missing: 401) that never reaches the server. No Engine.IO code here at all.
//
//   node client-envelope.js [--base ws://127.0.0.1:8080] [--user alice] [--token JWT]
//                           [--chunks 8] [--drop-after 3] [--ack]
'use strict';
const {connectContainer} = require('./miniprogram');
const {runVoiceSession, parseArgs} = require('./voice-app');

const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 5000];

// Close codes after which trying again cannot help: 1000 the server ended the session, 1008
// policy (a token rejected after the upgrade). Anything else (1006 a dead network, 1011 the
// server went away, 1001 wsbridge restarting) is worth a reconnect.
const FINAL_CLOSE_CODES = new Set([1000, 1008]);

// An event socket over a SocketTask speaking the envelope; same interface as client-eio's.
class EnvelopeSocket {
  constructor({base, path = '/voice', token, wsOptions = {}, reconnect = true}) {
    this.base = base;
    this.path = token ? `${path}?token=${encodeURIComponent(token)}` : path;
    this.wsOptions = wsOptions;
    this.reconnect = reconnect;
    this.handlers = new Map();
    this.acks = new Map();
    this.nextAck = 1;
    this.connected = false;
    this.attempt = 0;
    this.stopped = false;
    this.refused = null;  // the HTTP status of a refused upgrade
    this.task = null;
    this.open();
  }
  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
  }
  fire(event, ...args) {
    for (const fn of this.handlers.get(event) || []) fn(...args);
  }

  async open() {
    const {socketTask} = await connectContainer({
      base: this.base,
      path: this.path,  // the route and its query, as connectContainer's `path`
      wsOptions: this.wsOptions,
    });
    this.task = socketTask;
    // wsbridge answers 101 only once the server accepted the namespace: open means connected.
    socketTask.onOpen(() => {
      this.connected = true;
      this.attempt = 0;
      this.fire('connect');
    });
    socketTask.onMessage(({data}) => this.onMessage(data));
    socketTask.onError((err) => {
      if (err.statusCode) this.refused = err.statusCode;
      this.fire('transport-error', err.errMsg);
    });
    socketTask.onClose(({code, reason}) => this.onClosed(code, reason));
  }

  onMessage(data) {
    if (typeof data !== 'string') {
      this.fire('audio', data);  // the server's binary_event comes as a binary frame
      return;
    }
    const msg = JSON.parse(data);
    if (msg.event !== undefined) {
      const args = msg.args ?? ('data' in msg ? [msg.data] : []);
      if (msg.ack !== undefined) {
        args.push((answer) => this.task.send({data: JSON.stringify({ack: msg.ack, data: answer})}));
      }
      this.fire(msg.event, ...args);
    } else if (msg.ack !== undefined) {
      const cb = this.acks.get(msg.ack);
      this.acks.delete(msg.ack);
      cb?.(...(msg.args ?? ('data' in msg ? [msg.data] : [])));
    }
  }

  onClosed(code, reason) {
    const was = this.connected;
    this.connected = false;
    this.acks.clear();
    if (was) this.fire('disconnect', `close ${code}${reason ? ` ${reason}` : ''}`);
    // A 401/403 will be refused again; a 502 (server down) is worth retrying.
    const hopeless = this.refused === 401 || this.refused === 403 || FINAL_CLOSE_CODES.has(code);
    this.refused = null;
    if (this.stopped || !this.reconnect || hopeless) {
      this.fire('give-up', `closed (${code})`);
      return;
    }
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.attempt++;
    this.fire('reconnecting', this.attempt);
    setTimeout(() => this.open(), delay);
  }

  emit(event, ...args) {
    if (!this.connected) return false;
    const msg = {event};
    if (typeof args[args.length - 1] === 'function') {
      msg.ack = this.nextAck++;
      this.acks.set(msg.ack, args.pop());
    }
    if (args.length === 1) msg.data = args[0];
    else if (args.length > 1) msg.args = args;
    this.task.send({data: JSON.stringify(msg)});
    return true;
  }
  sendAudio(chunk) {
    if (!this.connected) return false;
    this.task.send({data: chunk});  // a binary frame: the route's binary_event ("audio")
    return true;
  }
  close() {
    this.stopped = true;
    this.task?.close({code: 1000});
  }
  kill() {
    this.task.kill();
  }
}

module.exports = {EnvelopeSocket};

if (require.main === module) {
  const jwt = require('./jwt');
  const opts = parseArgs(process.argv.slice(2), {base: 'ws://127.0.0.1:8080', user: 'alice'});
  const token = opts.token ?? jwt.mint(opts.user);
  const socket = new EnvelopeSocket({base: opts.base, token});
  socket.on('transport-error', (msg) => console.log(`transport error: ${msg}`));
  // The token went in the query; `start` carries none.
  runVoiceSession(socket, {...opts, token: undefined}).then(
      () => console.log('done'),
      (err) => {
        console.log(`gave up: ${err.message}`);
        process.exitCode = 1;
      });
}
