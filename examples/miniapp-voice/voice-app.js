// The mini-program page's voice logic, the same for both clients: start a session, stream
// microphone chunks, print what the recogniser says, stop; after a reconnect, start again and
// carry on from the next unsent chunk. Only the socket underneath differs (client-eio.js speaks
// Engine.IO/Socket.IO by hand, client-envelope.js speaks wsbridge's JSON envelope).
//
// The socket: on(event, fn) for 'connect', 'disconnect' (reason), 'reconnecting' (attempt) and
// the server's events; emit(event, data, [ack]); sendAudio(buffer); connected; close(); kill().
'use strict';

// Fake microphone: chunk i is `bytes` of 16-bit PCM silence with the index in its first bytes.
function micChunk(i, bytes) {
  const b = Buffer.alloc(bytes);
  b.writeUInt32BE(i, 0);
  return b;
}

// Resolves with the `stopped` summary. print(line) gets one line per thing the app receives.
// dropAfter = K > 0: after the server's result for chunk K, drop the network once (kill()).
function runVoiceSession(socket, {token, chunks = 8, chunkBytes = 3200, intervalMs = 40,
                                  dropAfter = 0, useAck = false, print = console.log}) {
  return new Promise((resolve, reject) => {
    let next = 0;          // the next chunk to send, across reconnects
    let sentHere = 0;      // chunks sent in this server session (the server counts per socket)
    let dropPending = dropAfter > 0;
    let timer = null;
    let stopping = false;

    const pump = () => {
      timer = null;
      if (!socket.connected || stopping) return;
      if (dropPending && sentHere === dropAfter) return;  // wait for its result, then drop
      if (next === chunks) {
        stopping = true;
        const onAck = (summary) => {
          print(`ack stop ${JSON.stringify(summary)}`);
          finish(summary);
        };
        socket.emit('stop', {}, ...(useAck ? [onAck] : []));
        return;
      }
      socket.sendAudio(micChunk(next, chunkBytes));
      next++;
      sentHere++;
      timer = setTimeout(pump, intervalMs);
    };

    socket.on('connect', () => {
      print('connected');
      sentHere = 0;
      stopping = false;
      socket.emit('start', {...(token ? {token} : {}), format: 'pcm', sampleRate: 16000});
    });
    socket.on('ready', (data) => {
      print(`ready ${JSON.stringify(data)}`);
      pump();
    });
    socket.on('result', (data) => {
      print(`result ${JSON.stringify(data)}`);
      if (dropPending && !data.isFinal && data.text.startsWith(`chunk ${dropAfter}:`)) {
        dropPending = false;
        print('network lost (demo: the socket is dropped without a close)');
        socket.kill();
      }
    });
    // With an ack the session ends on the ack, which the server sends after `stopped`.
    const finish = (summary) => {
      socket.close();
      resolve(summary);
    };
    socket.on('stopped', (data) => {
      print(`stopped ${JSON.stringify(data)}`);
      if (!useAck) finish(data);
    });
    socket.on('error', (data) => {
      print(`error ${JSON.stringify(data)}`);
    });
    socket.on('disconnect', (reason) => {
      print(`disconnected (${reason})`);
      if (timer) clearTimeout(timer);
      timer = null;
    });
    socket.on('reconnecting', (attempt) => print(`reconnecting (attempt ${attempt})`));
    socket.on('give-up', (why) => reject(new Error(why)));
  });
}

// The command line both clients share: --base URL --user NAME --token T --chunks N
// --drop-after K --ack.
function parseArgs(argv, defaults) {
  const out = {...defaults};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (m, c) => c.toUpperCase());
    if (key === 'ack') {
      out.useAck = true;
      continue;
    }
    const value = argv[++i];
    out[key] = ['chunks', 'dropAfter', 'chunkBytes', 'intervalMs'].includes(key) ? Number(value) :
                                                                                  value;
  }
  return out;
}

module.exports = {runVoiceSession, micChunk, parseArgs};
