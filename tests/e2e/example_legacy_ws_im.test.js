// examples/legacy-ws-im end to end: the example's raw `ws` IM server and wsbridge on its own
// wsbridge.toml. Raw WebSocket users (relay route, text pings answered by wsbridge: the server
// counts none) and standard socket.io-client users (translate-down route) chat both ways; every
// message, event and close code each side sees is asserted, with drops and reconnects on both
// kinds of client, and the server's liveness sweep.
'use strict';

const h = require('./lib/harness');
const {startLegacyIm} = require('./lib/legacy_ws_im');
const {io} = require('socket.io-client');

const {assert} = h;

// A raw WebSocket user: every message it receives, JSON parsed ("pong" stays a string).
class RawUser {
  static async connect(url, name, opts = {}) {
    const u = new RawUser(name);
    // Listening before the open: the welcome may come in the same read as the 101.
    u.ws = new h.WebSocket(`${url}?user=${name}`, [], {perMessageDeflate: false, ...opts});
    h.defer(() => u.ws.terminate());
    u.ws.on('message', (data) => {
      const text = data.toString();
      u.record(text.startsWith('{') ? JSON.parse(text) : text);
    });
    u.closed = new Promise((resolve) => u.ws.on('close', (code) => resolve(code)));
    await u.waitFor('welcome');
    return u;
  }
  constructor(name) {
    this.name = name;
    this.events = [];
    this.waiters = new Set();
  }
  record(entry) {
    this.events.push(entry);
    for (const w of [...this.waiters]) w();
  }
  // Resolves once `count` messages match `what` (an event name, or the text "pong").
  waitFor(what, count = 1, ms = 10000) {
    const have = () => this.events.filter((e) => e === what || e.event === what).length >= count;
    if (have()) return Promise.resolve();
    return h.withTimeout(new Promise((resolve) => {
      const check = () => {
        if (!have()) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
    }), ms, `${this.name}: ${count} x ${what} (got ${JSON.stringify(this.events)})`);
  }
  chat(text) {
    this.ws.send(JSON.stringify({event: 'chat', data: {text}}));
  }
  take() {
    return this.events.splice(0);
  }
}

// A socket.io-client user; records events as {event, data} like the raw users see them.
class SioUser extends RawUser {
  static async connect(base, name, opts = {}) {
    const u = new SioUser(name);
    u.socket = io(base, {forceNew: true, query: {user: name}, ...opts});
    h.defer(() => u.socket.disconnect());
    u.socket.onAny((event, data) => u.record({event, data}));
    u.socket.on('disconnect', (reason) => u.record({event: 'disconnect', data: reason}));
    await u.waitFor('welcome');
    return u;
  }
  chat(text) {
    this.socket.emit('chat', {text});
  }
}

const ev = (event, data) => ({event, data});

// ---------------------------------------------------------------------------------------------

h.test('raw ws and socket.io users chat both ways; wsbridge answers the text pings and the ' +
           'server never sees one; leaving closes upstream with 1000', async () => {
  const {server, im, base} = await startLegacyIm();
  const alice = await RawUser.connect(im, 'alice');
  const carol = await SioUser.connect(base, 'carol');  // polling first, then websocket
  await alice.waitFor('join');
  for (let i = 0; i < 3; i++) alice.ws.send('ping');
  await alice.waitFor('pong', 3);
  alice.chat('hi carol');
  await carol.waitFor('chat');
  carol.chat('hi alice');
  await alice.waitFor('chat');
  const bob = await RawUser.connect(im, 'bob');
  await Promise.all([alice.waitFor('join', 2), carol.waitFor('join')]);
  bob.ws.send('plain text is chat too');
  await Promise.all([alice.waitFor('chat', 2), carol.waitFor('chat', 2)]);

  assert.deepEqual(alice.take(), [
    ev('welcome', {name: 'alice', online: ['alice']}),
    ev('join', {name: 'carol'}),
    'pong', 'pong', 'pong',
    ev('chat', {from: 'carol', text: 'hi alice'}),
    ev('join', {name: 'bob'}),
    ev('chat', {from: 'bob', text: 'plain text is chat too'}),
  ]);
  assert.deepEqual(carol.take(), [
    ev('welcome', {name: 'carol', online: ['alice', 'carol']}),
    ev('chat', {from: 'alice', text: 'hi carol'}),
    ev('join', {name: 'bob'}),
    ev('chat', {from: 'bob', text: 'plain text is chat too'}),
  ]);
  assert.deepEqual(bob.take(), [ev('welcome', {name: 'bob', online: ['alice', 'bob', 'carol']})]);
  // Not one text ping reached the server; it saw the chat in order.
  await server.waitFor((o) => o.event === 'chat' && o.from === 'bob');
  assert.deepEqual(server.lines.filter((o) => o.event === 'text-ping'), []);
  assert.deepEqual(server.lines.filter((o) => o.event === 'chat').map((o) => [o.from, o.text]),
                   [['alice', 'hi carol'], ['carol', 'hi alice'], ['bob', 'plain text is chat too']]);

  // Leaving: a raw close 1000 is relayed as is; socket.io's disconnect closes upstream with 1000.
  alice.ws.close(1000);
  assert.equal(await alice.closed, 1000);
  await Promise.all([bob.waitFor('leave'), carol.waitFor('leave')]);
  carol.socket.disconnect();
  await bob.waitFor('leave', 2);
  assert.deepEqual(bob.take(), [ev('leave', {name: 'alice'}), ev('leave', {name: 'carol'})]);
  assert.deepEqual(carol.take(), [ev('leave', {name: 'alice'}),
                                  ev('disconnect', 'io client disconnect')]);
  await server.waitFor((o) => o.event === 'close' && o.name === 'carol');
  const closes = server.lines.filter((o) => o.event === 'close').map((o) => [o.name, o.code]);
  assert.deepEqual(closes, [['alice', 1000], ['carol', 1000]]);

  // The counter is real: straight to the server (no wsbridge), the text ping is its to answer.
  const direct = await RawUser.connect(`ws://127.0.0.1:${server.port}/`, 'direct');
  direct.ws.send('ping');
  await direct.waitFor('pong');
  await server.waitFor((o) => o.event === 'text-ping');  // its log line may trail the pong
  assert.deepEqual(server.lines.filter((o) => o.event === 'text-ping'),
                   [{event: 'text-ping', name: 'direct', count: 1}]);
}, {timeout: 30000});

h.test('dropped connections: a raw user and a socket.io user lose the network and reconnect; ' +
           'the others see them leave and come back', async () => {
  const {server, im, base} = await startLegacyIm();
  const alice = await RawUser.connect(im, 'alice');
  const bob = await RawUser.connect(im, 'bob');
  const dave = await SioUser.connect(base, 'dave', {transports: ['websocket']});
  await alice.waitFor('join', 2);
  alice.take();

  // Bob's TCP connection vanishes (no close frame): wsbridge closes his upstream with 1001.
  bob.ws._socket.destroy();
  await alice.waitFor('leave');
  const bob2 = await RawUser.connect(im, 'bob');
  await alice.waitFor('join');
  bob2.chat('bob is back');
  await Promise.all([alice.waitFor('chat'), dave.waitFor('chat')]);
  // Dave's transport drops; socket.io-client reconnects by itself and the chat goes on.
  dave.socket.io.engine.transport.ws._socket.destroy();
  await alice.waitFor('leave', 2);
  await dave.waitFor('welcome', 2);
  await alice.waitFor('join', 2);
  dave.chat('dave is back');
  await alice.waitFor('chat', 2);

  assert.deepEqual(alice.take(), [
    ev('leave', {name: 'bob'}), ev('join', {name: 'bob'}),
    ev('chat', {from: 'bob', text: 'bob is back'}),
    ev('leave', {name: 'dave'}), ev('join', {name: 'dave'}),
    ev('chat', {from: 'dave', text: 'dave is back'}),
  ]);
  assert.deepEqual(dave.take(), [
    ev('welcome', {name: 'dave', online: ['alice', 'bob', 'dave']}),
    ev('leave', {name: 'bob'}), ev('join', {name: 'bob'}),
    ev('chat', {from: 'bob', text: 'bob is back'}),
    ev('disconnect', 'transport close'),
    ev('welcome', {name: 'dave', online: ['alice', 'bob', 'dave']}),
  ]);
  await server.waitFor((o) => o.event === 'close' && o.name === 'dave');
  const closes = server.lines.filter((o) => o.event === 'close').map((o) => [o.name, o.code]);
  assert.deepEqual(closes, [['bob', 1001], ['dave', 1000]]);
}, {timeout: 30000});

h.test("the server's liveness sweep: users behind wsbridge stay (wsbridge answers its pings), " +
           'a dead direct socket is terminated', async () => {
  const {server, im, base} = await startLegacyIm({sweepMs: 200});
  const alice = await RawUser.connect(im, 'alice');
  const carol = await SioUser.connect(base, 'carol');
  // A client that never answers pings, straight to the server: two sweeps and it is gone.
  const dead = await RawUser.connect(`ws://127.0.0.1:${server.port}/`, 'dead', {autoPong: false});
  await server.waitFor((o) => o.event === 'sweep-terminate');
  assert.equal(await dead.closed, 1006);
  await Promise.all([alice.waitFor('leave'), carol.waitFor('leave')]);
  // Those sweeps pinged alice and carol's upstreams too; both are still in the chat.
  alice.chat('still here');
  await carol.waitFor('chat');
  assert.deepEqual(server.lines.filter((o) => o.event === 'sweep-terminate'),
                   [{event: 'sweep-terminate', name: 'dead'}]);
  assert.deepEqual(carol.events.filter((e) => e.event === 'chat'),
                   [ev('chat', {from: 'alice', text: 'still here'})]);
}, {timeout: 30000});
