// What the e2e peers share: their command line, their JSON-line reports, and a binary stream
// that measures how much the proxy lets through.
'use strict';

// `--name value` pairs -> {name: value}.
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(.+)$/.exec(argv[i]);
    if (!m) continue;
    out[m[1]] = argv[i + 1];
    i++;
  }
  return out;
}

// One JSON object per stdout line: what the tests wait for.
function report(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Sends `total` bytes over `ws` in `chunk`-sized binary messages, keeping at most `highWater`
// bytes queued in this process: `sent` counts what the kernel accepted (the send callback
// fired), so it stalls when the proxy stops reading. `progress({sent, queued, buffered, total,
// done})` runs every 100 ms and once at the end. Returns a function that stops the stream; it
// stops by itself when done or when the socket closes.
function streamBinary(ws, {total, chunk, highWater = chunk * 4, progress}) {
  const payload = Buffer.alloc(chunk, 0x61);
  let queued = 0;
  let sent = 0;
  let active = true;
  const tell = (done) => progress({sent, queued, buffered: ws.bufferedAmount, total, done});
  const timer = setInterval(() => tell(false), 100);
  const stop = () => {
    active = false;
    clearInterval(timer);
  };
  ws.on('close', stop);
  const pump = () => {
    while (active && queued < total && ws.readyState === ws.OPEN && ws.bufferedAmount < highWater) {
      const n = Math.min(chunk, total - queued);
      queued += n;
      ws.send(n === chunk ? payload : payload.subarray(0, n), {binary: true}, (err) => {
        if (err) return;
        sent += n;
        if (sent === total) {
          tell(true);
          stop();
        } else {
          pump();
        }
      });
    }
  };
  pump();
  return stop;
}

module.exports = {parseArgs, report, streamBinary};
