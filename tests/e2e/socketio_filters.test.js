// Filters on Socket.IO pass-through with real socket.io 4.8 peers: the JWT from the CONNECT auth
// payload on every transport, event ACL refusals acked with the error, rate-limit notices
// delivered as Socket.IO events.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./lib/harness');
const sio = require('./lib/sio');

const SECRET = 'sio-e2e-secret';

function jwt(payload, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({alg: 'HS256', typ: 'JWT'})}.${b64(payload)}`;
  return `${body}.${crypto.createHmac('sha256', secret).update(body).digest('base64url')}`;
}

async function passthrough(filterToml, names) {
  const server = await h.startPeer('sio-server.js');
  const port = await h.freePort();
  await h.startWsbridge(sio.sioConfig({
    port,
    endpoints: [server.port],
    routeExtra: `filters = [${names.map((n) => `"${n}"`).join(', ')}]\n`,
    extra: filterToml,
  }));
  return {server, port};
}

function connectOutcome(url, opts) {
  const {io} = require('socket.io-client');
  const socket = io(url, {forceNew: true, reconnection: false, ...opts});
  h.defer(() => socket.disconnect());
  return new Promise((resolve) => {
    socket.on('connect', () => resolve({connected: true, socket}));
    socket.on('connect_error', (err) => resolve({connected: false, message: err.message}));
  });
}

const JWT = `
[filter.jwt]
type = "auth.jwt"
secret = "${SECRET}"
algorithms = ["HS256"]
token_from = ["socketio_auth:token"]
`;

for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
  h.test(`auth.jwt from the CONNECT auth payload over ${transports.join('+')}: valid connects, ` +
         'bad and missing get connect_error "unauthorized"', async () => {
    if (h.direct) throw new h.Skip('needs wsbridge');
    const {server, port} = await passthrough(JWT, ['jwt']);
    const url = `http://127.0.0.1:${port}`;
    const ok = await connectOutcome(url, {transports, auth: {token: jwt({sub: 'ann'})}});
    assert.equal(ok.connected, true);
    const who = await sio.emitAck(ok.socket, 'whoami');
    assert.equal(who[0].auth.token.split('.').length, 3, 'the server got the auth payload as sent');
    for (const auth of [{token: jwt({sub: 'ann'}, 'wrong')}, {}]) {
      const refused = await connectOutcome(url, {transports, auth});
      assert.deepEqual(refused, {connected: false, message: 'unauthorized'});
    }
    // The server saw only the admitted client's namespace connection.
    const conns = server.lines.filter((o) => o.event === 'connection');
    assert.equal(conns.length, 1);
  });
}

h.test('event_acl: a denied event is dropped and acked with {"error":"forbidden"}', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const {server, port} = await passthrough(`
[filter.acl]
type = "event_acl"
deny_in = ["whoami"]
`, ['acl']);
  const socket = await sio.connect(`http://127.0.0.1:${port}`, {transports: ['websocket']});
  assert.deepEqual(await sio.emitAck(socket, 'whoami'), [{error: 'forbidden'}]);
  assert.deepEqual(await sio.emitAck(socket, 'echo', 'allowed'), ['allowed']);
  // The report travels on another pipe than the ack: wait for it, then check nothing else came.
  await server.waitFor((o) => o.event === 'received' && o.name === 'echo', 5000, 'the report');
  const received = server.lines.filter((o) => o.event === 'received').map((o) => o.name);
  assert.deepEqual(received, ['echo']);
});

h.test('rate_limit notify on Socket.IO: 10 events against burst 3 give 3 acks and 7 ' +
       'rate-limit-exceeded events', async () => {
  if (h.direct) throw new h.Skip('needs wsbridge');
  const {port} = await passthrough(`
[filter.limit]
type = "rate_limit"
messages_per_second = 1
burst = 3
action = "notify"
`, ['limit']);
  const socket = await sio.connect(`http://127.0.0.1:${port}`, {transports: ['websocket']});
  let notices = 0;
  const noticeData = [];
  socket.on('rate-limit-exceeded', (d) => {
    notices++;
    noticeData.push(d);
  });
  const acks = [];
  for (let i = 0; i < 10; i++) socket.emit('echo', i, (v) => acks.push(v));
  await h.withTimeout((async () => {
    while (acks.length + notices < 10) await new Promise((r) => setTimeout(r, 20));
  })(), 10000, '10 answers');
  assert.deepEqual(acks, [0, 1, 2]);
  assert.equal(notices, 7);
  assert.deepEqual(noticeData[0], {message: 'too many messages'});
});

for (const transports of [['polling'], ['polling', 'websocket']]) {
  h.test(`rate_limit keyed on jwt.sub over ${transports.join('+')}: each user has a bucket of ` +
         'their own though all come from one IP and the token came in an earlier request',
         async () => {
    if (h.direct) throw new h.Skip('needs wsbridge');
    const {port} = await passthrough(`${JWT}
[filter.limit]
type = "rate_limit"
key = "jwt.sub"
messages_per_second = 1
burst = 3
action = "notify"
`, ['jwt', 'limit']);
    const url = `http://127.0.0.1:${port}`;
    // Events arrive on later requests than the CONNECT did (polling POSTs, the upgraded socket).
    const users = await Promise.all(['ann', 'ben'].map((sub) =>
      sio.connect(url, {transports, auth: {token: jwt({sub})}})));
    if (transports.length === 2) {
      await Promise.all(users.map((s) => (s.io.engine.transport.name === 'websocket' ? null :
                                          h.once(s.io.engine, 'upgrade'))));
    }
    const answers = await Promise.all(users.map(async (socket) => {
      const got = [];
      socket.on('rate-limit-exceeded', () => got.push('notice'));
      for (let i = 0; i < 5; i++) socket.emit('echo', i, (v) => got.push(v));
      await h.withTimeout((async () => {
        while (got.length < 5) await new Promise((r) => setTimeout(r, 20));
      })(), 10000, '5 answers');
      return got.sort();
    }));
    // Keyed by IP, ben would have found ann's bucket empty.
    assert.deepEqual(answers, [[0, 1, 2, 'notice', 'notice'], [0, 1, 2, 'notice', 'notice']]);
  });
}
