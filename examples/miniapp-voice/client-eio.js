// The voice client as mini-programs carry it today: Engine.IO v4 / Socket.IO v5 written by hand
// over the bare WebSocket of connectContainer (40/42/451- packets, answering ping 2 with pong 3,
// a liveness deadline, reconnecting), through wsbridge's Socket.IO pass-through route to the
// unchanged socket.io server. The JWT travels in `start` and the server checks it.
//
//   node client-eio.js [--base ws://127.0.0.1:8080] [--user alice] [--token JWT]
//                      [--chunks 8] [--drop-after 3]
//
// Compare client-envelope.js: the same app with none of this protocol code.
'use strict';
const {connectContainer} = require('./miniprogram');
const {runVoiceSession, parseArgs} = require('./voice-app');

const RECONNECT_DELAYS_MS = [250, 500, 1000, 2000, 5000];

// A Socket.IO socket in one namespace over a SocketTask; emits 'connect', 'disconnect',
// 'reconnecting', 'connect_error', 'give-up' and the server's events.
class EioSocket {
  constructor({base, nsp = '/realtime-voice', wsOptions = {}, reconnect = true}) {
    this.base = base;
    this.nsp = nsp;
    this.prefix = nsp === '/' ? '' : `${nsp},`;
    this.wsOptions = wsOptions;
    this.reconnect = reconnect;
    this.handlers = new Map();
    this.acks = new Map();
    this.nextAck = 1;
    this.connected = false;
    this.attempt = 0;
    this.stopped = false;  // closed by us or kicked by the server: no more reconnects
    this.kicked = false;   // the server sent DISCONNECT or CONNECT_ERROR
    this.liveness = null;
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
      path: '/socket.io/?EIO=4&transport=websocket',
      wsOptions: this.wsOptions,
    });
    this.task = socketTask;
    socketTask.onMessage(({data}) => {
      if (typeof data === 'string') this.onPacket(data);
    });
    socketTask.onError(({errMsg}) => this.fire('transport-error', errMsg));
    socketTask.onClose(({code}) => this.onClosed(code));
  }

  // Engine.IO packet types: 0 open, 1 close, 2 ping, 3 pong, 4 message (a Socket.IO packet).
  onPacket(text) {
    switch (text[0]) {
      case '0': {
        const {pingInterval, pingTimeout} = JSON.parse(text.slice(1));
        this.deadlineMs = pingInterval + pingTimeout;
        this.armLiveness();
        this.send(`40${this.prefix}`);
        break;
      }
      case '2':
        this.send('3');
        this.armLiveness();
        break;
      case '1':
        this.task.close();
        break;
      case '4':
        this.onSocketIoPacket(text.slice(1));
        break;
      default:
        break;
    }
  }

  // Socket.IO packet types: 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR.
  onSocketIoPacket(text) {
    const type = text[0];
    let rest = text.slice(1);
    if (this.prefix && rest.startsWith(this.prefix)) rest = rest.slice(this.prefix.length);
    const idDigits = /^\d*/.exec(rest)[0];
    const body = rest.slice(idDigits.length);
    if (type === '0') {
      this.connected = true;
      this.attempt = 0;
      this.fire('connect');
    } else if (type === '1') {
      this.stopped = this.kicked = true;  // reconnecting would be refused again
      // socket.io closes the connection itself right after; closing too would race its close
      // frame (1000 or 1005, whichever wins). Close only if it does not.
      const task = this.task;
      setTimeout(() => task.close(), 1000).unref();
    } else if (type === '2') {
      const [name, ...args] = JSON.parse(body);
      if (idDigits) args.push((...answer) => this.send(`43${this.prefix}${idDigits}` +
                                                       JSON.stringify(answer)));
      this.fire(name, ...args);
    } else if (type === '3') {
      const cb = this.acks.get(Number(idDigits));
      this.acks.delete(Number(idDigits));
      cb?.(...JSON.parse(body));
    } else if (type === '4') {
      this.stopped = this.kicked = true;
      this.fire('connect_error', JSON.parse(body || '{}'));
      this.task.close();
    }
  }

  // No ping from the server within pingInterval + pingTimeout: the link is dead though TCP has
  // not noticed (a phone changing networks); drop it and reconnect.
  armLiveness() {
    clearTimeout(this.liveness);
    this.liveness = setTimeout(() => this.task.kill(), this.deadlineMs);
  }

  onClosed(code) {
    clearTimeout(this.liveness);
    const was = this.connected;
    this.connected = false;
    this.acks.clear();
    if (was) {
      const reason = this.kicked ? 'io server disconnect' :
          this.stopped ? 'io client disconnect' : `transport close ${code}`;
      this.fire('disconnect', reason);
    }
    if (this.stopped || !this.reconnect) {
      this.fire('give-up', `closed (${code})`);
      return;
    }
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.attempt++;
    this.fire('reconnecting', this.attempt);
    setTimeout(() => this.open(), delay);
  }

  send(text) {
    this.task.send({data: text});
  }
  emit(event, ...args) {
    if (!this.connected) return false;
    let id = '';
    if (typeof args[args.length - 1] === 'function') {
      id = String(this.nextAck++);
      this.acks.set(Number(id), args.pop());
    }
    this.send(`42${this.prefix}${id}${JSON.stringify([event, ...args])}`);
    return true;
  }
  // A binary event: the header with a placeholder, then the attachment as a binary frame.
  sendAudio(chunk) {
    if (!this.connected) return false;
    this.send(`451-${this.prefix}["audio",{"_placeholder":true,"num":0}]`);
    this.task.send({data: chunk});
    return true;
  }
  close() {
    this.stopped = true;
    if (this.connected) this.send(`41${this.prefix}`);
    this.task?.close({code: 1000});
  }
  kill() {
    this.task.kill();
  }
}

module.exports = {EioSocket};

if (require.main === module) {
  const jwt = require('./jwt');
  const opts = parseArgs(process.argv.slice(2), {base: 'ws://127.0.0.1:8080', user: 'alice'});
  const token = opts.token ?? jwt.mint(opts.user);
  const socket = new EioSocket({base: opts.base});
  socket.on('connect_error', (err) => console.log(`connect_error ${JSON.stringify(err)}`));
  socket.on('transport-error', (msg) => console.log(`transport error: ${msg}`));
  runVoiceSession(socket, {...opts, token}).then(
      () => console.log('done'),
      (err) => {
        console.log(`gave up: ${err.message}`);
        process.exitCode = 1;
      });
}
