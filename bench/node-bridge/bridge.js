// A translate-up bridge the way a user would write it: a `ws` server for bare WebSocket clients
// and one socket.io-client per client toward the Socket.IO server, envelopes <-> events.
// Usage: node bridge.js LISTEN_PORT UPSTREAM_URL   (e.g. 8090 http://127.0.0.1:9001)
'use strict';
const { WebSocketServer } = require('ws');
const { io } = require('socket.io-client');

const port = Number(process.argv[2] || 8090);
const upstream = process.argv[3] || 'http://127.0.0.1:9001';

const wss = new WebSocketServer({ host: '127.0.0.1', port, backlog: 4096 });

wss.on('connection', (ws) => {
  // forceNew: one Engine.IO connection per client, not one shared by every client.
  const socket = io(upstream, { transports: ['websocket'], forceNew: true, reconnection: false });

  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let envelope;
    try {
      envelope = JSON.parse(data.toString());
    } catch {
      socket.emit('message', data.toString());
      return;
    }
    if (typeof envelope.event !== 'string') return;
    let args = [];
    if (Array.isArray(envelope.args)) args = envelope.args;
    else if ('data' in envelope) args = [envelope.data];
    socket.emit(envelope.event, ...args);  // emits before the connect are buffered by the client
  });

  socket.onAny((event, ...args) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(args.length === 1 ? { event, data: args[0] } : { event, args }));
  });
  socket.on('connect_error', (err) => ws.close(1011, String(err.message).slice(0, 100)));
  socket.on('disconnect', () => ws.close(1001));
  ws.on('close', () => socket.disconnect());
  ws.on('error', () => socket.disconnect());
});

wss.on('listening', () => {
  console.log(`node-bridge: listening on 127.0.0.1:${port} -> ${upstream}`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
