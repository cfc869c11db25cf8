// One chat server process of the chat-rooms example: a socket.io 4.8 server whose rooms and
// private messages reach every process through @socket.io/redis-adapter. run.sh starts two of
// them behind one wsbridge. It prints one JSON line per thing it does, the first with its port.
//
//   login {avatar}          -> ack {user, server}; the user's sockets share the room user:<name>
//   private-message {to, text}  -> `private-message {from, text}` to every socket of `to`; ack {ok}
//   joinroom {room}         -> ack {room, seats}; `seat-update {room, seats}` to the room
//   group-message {room, text}  -> `group-message {room, from, text}` to the room; ack {ok}
//   avatar-updated {avatar} -> `avatar-updated {user, avatar}` to everyone else
//   leaving (disconnect)    -> `seat-update` to each room the user sat in
//
// What this server does NOT do, because wsbridge does it (wsbridge.toml): verify the JWT (there
// is no io.use() middleware; a CONNECT without a valid token never gets here) and limit users to
// 5 messages a second. It reads the user from the token's claims.
//
// Env: PORT (default 3001; 0 picks a free one), NAME (this process in logs and acks), REDIS_URL
// (default redis://127.0.0.1:6379), PAGE_ORIGIN (the page's origin, allowed to poll cross-origin).
'use strict';
const http = require('node:http');
const {Server} = require('socket.io');
const {createAdapter} = require('@socket.io/redis-adapter');
const {createClient} = require('redis');
const {claimsOf} = require('./jwt');

const port = Number(process.env.PORT ?? 3001);
const name = process.env.NAME || `server-${process.pid}`;

function log(obj) {
  process.stdout.write(JSON.stringify({server: name, ...obj}) + '\n');
}

// Everyone in a room, across both processes, as the sorted list of user names.
async function seatsOf(io, room) {
  const sockets = await io.in(`room:${room}`).fetchSockets();
  return [...new Set(sockets.map((s) => s.data.user))].sort();
}

async function main() {
  const pub = createClient({url: process.env.REDIS_URL || 'redis://127.0.0.1:6379'});
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);

  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    cors: process.env.PAGE_ORIGIN ? {origin: process.env.PAGE_ORIGIN} : undefined,
    adapter: createAdapter(pub, sub),
  });
  // A request for a session this process does not know ("Session ID unknown") would show here.
  io.engine.on('connection_error', (err) => {
    log({event: 'connection_error', code: err.code, message: err.message});
  });

  io.on('connection', (socket) => {
    const user = claimsOf(socket.handshake.auth?.token)?.sub;
    const transport = socket.conn.transport.name;
    socket.data.user = user;
    log({event: 'connection', user, transport});
    socket.conn.once('upgrade', () => log({event: 'upgrade', user, transport: 'websocket'}));
    let loggedIn = false;
    const rooms = new Set();  // what this socket sat in, for the seat updates when it leaves

    // Every event but login needs a login first; answers {error} on the ack when not.
    const needLogin = (ack) => {
      if (loggedIn) return true;
      if (typeof ack === 'function') ack({error: 'login first'});
      return false;
    };

    socket.on('login', (data, ack) => {
      loggedIn = true;
      socket.data.avatar = data?.avatar ?? null;
      socket.join(`user:${user}`);
      log({event: 'login', user});
      if (typeof ack === 'function') ack({user, server: name});
    });

    socket.on('private-message', (data, ack) => {
      if (!needLogin(ack)) return;
      log({event: 'private-message', from: user, to: data?.to});
      io.to(`user:${data?.to}`).emit('private-message', {from: user, text: data?.text});
      if (typeof ack === 'function') ack({ok: true});
    });

    socket.on('joinroom', async (data, ack) => {
      if (!needLogin(ack)) return;
      const room = String(data?.room);
      socket.join(`room:${room}`);
      rooms.add(room);
      const seats = await seatsOf(io, room);
      log({event: 'joinroom', user, room, seats});
      io.to(`room:${room}`).emit('seat-update', {room, seats});
      if (typeof ack === 'function') ack({room, seats});
    });

    socket.on('group-message', (data, ack) => {
      if (!needLogin(ack)) return;
      const room = String(data?.room);
      if (!rooms.has(room)) {
        if (typeof ack === 'function') ack({error: 'not in room'});
        return;
      }
      log({event: 'group-message', from: user, room, text: data?.text});
      io.to(`room:${room}`).emit('group-message', {room, from: user, text: data?.text});
      if (typeof ack === 'function') ack({ok: true});
    });

    socket.on('avatar-updated', (data) => {
      if (!needLogin()) return;
      socket.data.avatar = data?.avatar ?? null;
      log({event: 'avatar-updated', user});
      socket.broadcast.emit('avatar-updated', {user, avatar: socket.data.avatar});
    });

    socket.on('disconnect', async (reason) => {
      log({event: 'disconnect', user, reason});
      for (const room of rooms) {
        io.to(`room:${room}`).emit('seat-update', {room, seats: await seatsOf(io, room)});
      }
    });
  });

  httpServer.listen(port, '127.0.0.1', () => {
    const actual = httpServer.address().port;
    log({port: actual, msg: `chat server ${name} on 127.0.0.1:${actual}`});
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
