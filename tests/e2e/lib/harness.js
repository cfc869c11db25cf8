// The end-to-end harness: starts wsbridge and Node peers as real processes on free loopback
// ports, runs test cases in order, and gives tests raw-socket and frame-level tools.
//
// Usage (a whole test file):
//
//   const h = require('./lib/harness');
//   h.test('text echoes through the relay', async (t) => {
//     const echo = await h.startPeer('ws-echo.js', ['--protocols', 'chat']);   // peers/ws-echo.js
//     const port = await h.freePort();
//     const bridge = await h.startWsbridge(h.relayConfig({port, endpoints: [echo.port]}));
//     const ws = await h.wsConnect(`ws://127.0.0.1:${bridge.port}/`);
//     const q = h.messageQueue(ws);
//     ws.send('hi');
//     h.assertEqual((await q.next()).data.toString(), 'hi');
//   }, {timeout: 30000});
//   h.run();   // optional: cases start on the next tick anyway; exits non-zero on any failure
//
// Runner: test(name, async fn(t), {timeout}) cases run one after another in file order.
//   Everything started inside a case (wsbridge, peers, ws clients, raw sockets) is stopped when
//   the case ends, pass or fail; t.defer(fn) adds more cleanup; t.skip(reason) skips; t.log(...)
//   prints an indented note (e.g. throughput). Each case prints `ok`, `skip` or `FAIL` (with the
//   wsbridge log tail). Exit code 1 if any case failed. `node x.test.js <substring>` or
//   E2E_ONLY=<substring> runs only matching cases; E2E_VERBOSE=1 streams process output live.
// Processes: startWsbridge(toml, opts) writes the config to a temp dir, spawns $WSBRIDGE_BIN
//   `run -c FILE` and resolves once every `address = "host:port"` in the config accepts TCP
//   (or rejects with the captured log if it exits). It returns {pid, port, ports, proc, logs(),
//   stop(), exited}. A wsbridge that dies by itself during a case, or exits non-zero / late on
//   SIGTERM, fails the case. startPeer(script, args) spawns node tests/e2e/peers/<script>; the
//   peer prints JSON lines on stdout, the first one carrying {"port":N}; it returns {pid, port,
//   lines, waitFor(pred, ms), watch(fn), kill(sig), stop()}. All children are SIGKILLed when
//   this process exits however it exits; peers also exit when their stdin closes.
//   E2E_DIRECT=1 (or no WSBRIDGE_BIN) marks a run without the proxy: `direct` is true and
//   startWsbridge() skips the case, so test files can target the backend directly to check
//   themselves before the proxy exists.
// Await helpers: once(emitter, event, ms) -> args array (rejects on 'error' or timeout);
//   withTimeout(promise, ms, what); wsConnect(url, protocols, opts) -> open `ws` client;
//   messageQueue(ws).next(ms) -> {data: Buffer, isBinary}.
// Raw WebSocket: rawConnect(port, {tls}) -> RawClient with handshake(path, headers) ->
//   {status, statusLine, headers, body}, request(text) for any HTTP, readFrame(ms),
//   readMessage(ms) (reassembles fragments; control frames interleaved are returned in .control),
//   readClose(ms) -> {code, reason, raw, masked}, sendFrame({opcode, payload, fin, mask, rsv,
//   lengthBytes}), sendText, sendClose, write(bytes), pause()/resume() (a client that stops
//   reading), destroy()/reset(), closed (promise).
//   encodeFrame()/FrameDecoder build and parse frames, including invalid ones on purpose;
//   closePayload(code, reason) / parseClose(payload).
// Misc: readRss(pid) -> bytes (VmRSS), readCpuSeconds(pid), makeCert(dir) -> {cert, key, pem,
//   fingerprint256} via the openssl CLI, tmpDir(), relayConfig({...}) -> TOML for a websocket
//   relay (listenerExtra: lines for its [[listener]] table), assert helpers (assertBytesEqual
//   shows the first differing offset).
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const WebSocket = require('ws');

const PEERS_DIR = path.join(__dirname, '..', 'peers');
const WSBRIDGE_BIN = process.env.WSBRIDGE_BIN || '';
const direct = process.env.E2E_DIRECT === '1' || !WSBRIDGE_BIN;
const verbose = process.env.E2E_VERBOSE === '1';
const LOG_KEEP_BYTES = 4 << 20;  // the log tail kept per process; debug logs can be large

// ---------------------------------------------------------------------------------------------
// Child processes and cleanup

const children = new Set();  // every live child, killed on exit whatever happens

function killAllChildren() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
}
process.on('exit', killAllChildren);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAllChildren();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  // A stray error from a socket nobody awaits must not kill the run silently: report, fail.
  console.error('uncaught exception:', err);
  killAllChildren();
  process.exit(1);
});

// Captures a bounded tail of a stream's output.
class LogTail {
  constructor(prefix) {
    this.prefix = prefix;
    this.chunks = [];
    this.size = 0;
  }
  add(chunk) {
    if (verbose) process.stderr.write(`[${this.prefix}] ${chunk}`);
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > LOG_KEEP_BYTES && this.chunks.length > 1) {
      this.size -= this.chunks.shift().length;
    }
  }
  text() {
    return Buffer.concat(this.chunks).toString('utf8');
  }
  tail(lines = 40) {
    return this.text().split('\n').slice(-lines - 1).join('\n');
  }
}

function spawnTracked(cmd, args, opts) {
  const proc = childProcess.spawn(cmd, args, {stdio: ['pipe', 'pipe', 'pipe'], ...opts});
  children.add(proc);
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({code, signal});
    });
    proc.on('error', (err) => {
      children.delete(proc);
      resolve({code: null, signal: null, error: err});
    });
  });
  proc.stdin.on('error', () => {});
  return {proc, exited};
}

// Waits for a child to exit after `signal`; SIGKILL after `ms`. Resolves {code, signal, late}.
async function terminate(proc, exited, signal, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return {...(await exited), late: false};
  try {
    proc.kill(signal);
  } catch {
    // gone meanwhile
  }
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  const result = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (result) return {...result, late: false};
  try {
    proc.kill('SIGKILL');
  } catch {
    // gone meanwhile
  }
  return {...(await exited), late: true};
}

// ---------------------------------------------------------------------------------------------
// Test runner

const cases = [];
let current = null;  // the running case's context, owner of what is started
let scheduled = false;

class Skip extends Error {}

function test(name, fn, opts = {}) {
  cases.push({name, fn, timeout: opts.timeout ?? 60000});
  if (!scheduled) {
    scheduled = true;
    setImmediate(run);
  }
}

let running = false;
async function run() {
  if (running) return;
  running = true;
  const only = process.argv[2] || process.env.E2E_ONLY || '';
  const selected = cases.filter((c) => c.name.includes(only));
  const file = path.basename(process.argv[1] || 'e2e');
  console.log(`# ${file}: ${selected.length} case(s)${direct ? ' [direct: no proxy]' : ''}`);
  let failed = 0;
  let skipped = 0;
  for (let i = 0; i < selected.length; i++) {
    const c = selected[i];
    const ctx = new CaseContext(c.name);
    current = ctx;
    const started = process.hrtime.bigint();
    let error = null;
    let timer;
    try {
      await Promise.race([
        Promise.resolve().then(() => c.fn(ctx)),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${c.timeout} ms`)),
                             c.timeout);
        }),
      ]);
    } catch (err) {
      error = err;
    }
    clearTimeout(timer);
    current = null;
    const cleanupError = await ctx.cleanup();
    if (!error && cleanupError) error = cleanupError;
    const ms = Number((process.hrtime.bigint() - started) / 1000000n);
    if (error instanceof Skip) {
      skipped++;
      console.log(`skip ${i + 1} - ${c.name} (${error.message})`);
    } else if (error) {
      failed++;
      console.log(`FAIL ${i + 1} - ${c.name} (${ms} ms)`);
      console.log(indent(error.stack || String(error)));
      for (const b of ctx.bridges) {
        const state = b.crashed ? ` (${b.crashed})` : '';
        console.log(indent(`--- wsbridge pid ${b.pid}${state} log tail ---\n${b.logs(60)}`));
      }
      for (const p of ctx.peers) {
        const tail = p.stderrTail();
        if (tail.trim()) console.log(indent(`--- peer ${p.script} stderr ---\n${tail}`));
      }
    } else {
      console.log(`ok ${i + 1} - ${c.name} (${ms} ms)`);
    }
    for (const note of ctx.notes) console.log(indent(note));
  }
  const passed = selected.length - failed - skipped;
  console.log(`# ${passed} passed, ${failed} failed, ${skipped} skipped`);
  killAllChildren();
  process.exitCode = failed ? 1 : 0;
  // Sockets a failed case left behind must not keep the process alive.
  setImmediate(() => process.exit(process.exitCode));
}

function indent(text) {
  return String(text).split('\n').map((l) => `    ${l}`).join('\n');
}

class CaseContext {
  constructor(name) {
    this.name = name;
    this.cleanups = [];
    this.bridges = [];
    this.peers = [];
    this.notes = [];
  }
  defer(fn) {
    this.cleanups.push(fn);
  }
  skip(reason) {
    throw new Skip(reason);
  }
  log(...args) {
    this.notes.push(args.join(' '));
  }
  // Runs cleanups last-in first-out; returns the first error (a crashed wsbridge, say).
  async cleanup() {
    let first = null;
    while (this.cleanups.length) {
      const fn = this.cleanups.pop();
      try {
        await fn();
      } catch (err) {
        first ??= err;
      }
    }
    return first;
  }
}

function defer(fn) {
  if (current) current.defer(fn);
}

// ---------------------------------------------------------------------------------------------
// Ports, files, processes

// A port nothing listens on now. The kernel may hand the same port out again at once, so two
// calls in a row (a listener and an admin port) could collide: a port is never returned twice
// by one process.
const handedOut = new Set();
async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const {port: p} = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

function tmpDir(prefix = 'wsb-e2e-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  defer(() => fs.rmSync(dir, {recursive: true, force: true}));
  return dir;
}

// Resolves when host:port accepts a TCP connection; polls on refusal, no fixed sleeps beyond a
// short back-off between refused attempts. Rejects when `gate` resolves first (process exited).
async function waitForTcp(host, port, timeoutMs, gate) {
  const deadline = Date.now() + timeoutMs;
  let gone = null;
  gate?.then((v) => {
    gone = v;
  });
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (gone) throw new Error(`process exited before ${host}:${port} accepted connections`);
    const ok = await new Promise((resolve) => {
      const s = net.connect({host, port});
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) {
      throw new Error(`${host}:${port} not accepting after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));  // back-off between refusals
  }
}

function listenAddresses(toml) {
  const out = [];
  const re = /^\s*address\s*=\s*"([^"]+):(\d+)"/gm;
  let m;
  while ((m = re.exec(toml))) {
    out.push({host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2])});
  }
  return out;
}

// Starts wsbridge with `toml`; opts: {args, env, waitFor: [{host, port}], startTimeout}.
async function startWsbridge(toml, opts = {}) {
  if (direct) throw new Skip('needs wsbridge (WSBRIDGE_BIN unset or E2E_DIRECT=1)');
  const dir = tmpDir('wsb-e2e-bridge-');
  const file = path.join(dir, 'wsbridge.toml');
  fs.writeFileSync(file, toml);
  const log = new LogTail('wsbridge');
  const {proc, exited} = spawnTracked(WSBRIDGE_BIN, ['run', '-c', file, ...(opts.args || [])], {
    cwd: dir,
    env: {...process.env, ...(opts.env || {})},
  });
  proc.stdout.on('data', (d) => log.add(d));
  proc.stderr.on('data', (d) => log.add(d));
  let stopping = false;
  const bridge = {
    pid: proc.pid,
    proc,
    dir,
    configPath: file,
    exited,
    logs: (lines) => (lines ? log.tail(lines) : log.text()),
    // SIGTERM, then SIGKILL after `timeout`; throws if it crashed, exited non-zero or late.
    async stop({signal = 'SIGTERM', timeout = 10000} = {}) {
      if (stopping) return exited;
      const already = proc.exitCode !== null || proc.signalCode !== null;
      stopping = true;
      const r = await terminate(proc, exited, signal, timeout);
      if (already) {
        bridge.crashed = `exited during the case (code ${r.code}, signal ${r.signal})`;
        throw new Error(`wsbridge exited during the case (code ${r.code}, signal ${r.signal})`);
      }
      if (r.late) throw new Error(`wsbridge did not exit within ${timeout} ms of ${signal}`);
      if (r.signal && r.signal !== signal) {
        throw new Error(`wsbridge was killed by ${r.signal} (stop sent ${signal})`);
      }
      if (signal === 'SIGTERM' && (r.code !== 0 || r.signal)) {
        throw new Error(`wsbridge did not exit cleanly on SIGTERM: code ${r.code}, signal ` +
                        `${r.signal} (no handler installed yet?)`);
      }
      return r;
    },
  };
  current?.bridges.push(bridge);
  defer(() => bridge.stop());
  const addrs = opts.waitFor || listenAddresses(toml);
  bridge.ports = addrs.map((a) => a.port);
  bridge.port = bridge.ports[0];
  try {
    await Promise.all(
        addrs.map((a) => waitForTcp(a.host, a.port, opts.startTimeout ?? 10000, exited)));
  } catch (err) {
    await new Promise((resolve) => setImmediate(resolve));  // let the last output arrive
    const r = proc.exitCode !== null || proc.signalCode !== null ?
        ` (exit code ${proc.exitCode}, signal ${proc.signalCode})` :
        '';
    stopping = true;
    await terminate(proc, exited, 'SIGKILL', 1000);
    throw new Error(`wsbridge did not start${r}: ${err.message}\n${log.tail(60)}`);
  }
  return bridge;
}

// Starts node peers/<script> args...; resolves after its first stdout JSON line with a port.
async function startPeer(script, args = [], opts = {}) {
  const file = path.isAbsolute(script) ? script : path.join(PEERS_DIR, script);
  const {proc, exited} = spawnTracked(process.execPath, [file, ...args.map(String)], {
    cwd: path.dirname(file),
    env: {...process.env, ...(opts.env || {})},
  });
  const stderr = new LogTail(path.basename(script));
  proc.stderr.on('data', (d) => stderr.add(d));
  const lines = [];
  const waiters = new Set();
  let pending = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => {
    if (verbose) process.stderr.write(`[${path.basename(script)}] ${chunk}`);
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      let obj;
      try {
        obj = JSON.parse(line);
      } catch {
        obj = {text: line};
      }
      lines.push(obj);
      for (const w of [...waiters]) w(obj);
    }
  });
  const peer = {
    script: path.basename(script),
    pid: proc.pid,
    proc,
    exited,
    lines,
    stderrTail: () => stderr.tail(30),
    // First report (past or future) matching `pred`; a throwing `pred` rejects the wait.
    waitFor(pred, ms = 10000, what = 'a matching report') {
      let hit;
      try {
        hit = lines.find(pred);
      } catch (err) {
        return Promise.reject(err);
      }
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const onLine = (obj) => {
          let match;
          try {
            match = pred(obj);
          } catch (err) {
            done();
            reject(err);
            return;
          }
          if (!match) return;
          done();
          resolve(obj);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`peer ${peer.script}: no ${what} within ${ms} ms; reports: ` +
                           JSON.stringify(lines.slice(-10))));
        }, ms);
        const onExit = () => {
          done();
          reject(new Error(`peer ${peer.script} exited while waiting for ${what}`));
        };
        const done = () => {
          clearTimeout(timer);
          waiters.delete(onLine);
          proc.off('exit', onExit);
        };
        waiters.add(onLine);
        proc.once('exit', onExit);
      });
    },
    // Calls fn(report) for every future report; returns the function that stops it.
    watch(fn) {
      waiters.add(fn);
      return () => waiters.delete(fn);
    },
    kill(signal = 'SIGKILL') {
      try {
        proc.kill(signal);
      } catch {
        // gone
      }
      return exited;
    },
    stop: () => terminate(proc, exited, 'SIGKILL', 2000),
  };
  current?.peers.push(peer);
  defer(() => peer.stop());
  const first = await peer.waitFor((o) => typeof o.port === 'number', opts.startTimeout ?? 10000,
                                   'port report');
  peer.port = first.port;
  peer.info = first;
  return peer;
}

// ---------------------------------------------------------------------------------------------
// Await helpers

function withTimeout(promise, ms, what = 'operation') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Resolves with the event's argument array; rejects on 'error' (unless awaited) or timeout.
function once(emitter, event, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      done();
      resolve(args);
    };
    const onError = (err) => {
      done();
      reject(err);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (event !== 'error') emitter.off('error', onError);
    };
    emitter.on(event, onEvent);
    if (event !== 'error') emitter.on('error', onError);
  });
}

// An open `ws` client (closed at the end of the case). Rejects with the HTTP status on refusal.
async function wsConnect(url, protocols = [], opts = {}) {
  const ws = new WebSocket(url, protocols, {perMessageDeflate: false, ...opts});
  defer(() => ws.terminate());
  // The first message may arrive in the same segment as the 101: ws emits it before the caller
  // resumes from this await, so it is kept until a messageQueue / eioClient takes it (early()).
  const early = {messages: [], close: null};
  const keepMessage = (data, isBinary) => early.messages.push([data, isBinary]);
  const keepClose = (code, reason) => (early.close = [code, reason]);
  ws.on('message', keepMessage);
  ws.on('close', keepClose);
  ws.takeEarly = () => {
    ws.off('message', keepMessage);
    ws.off('close', keepClose);
    ws.takeEarly = null;
    return early;
  };
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect ${url}: timed out`)),
                             opts.timeout ?? 10000);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.once('unexpected-response', (req, res) => {
      clearTimeout(timer);
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const err = new Error(`connect ${url}: HTTP ${res.statusCode} ${body}`);
        err.status = res.statusCode;
        err.body = body;
        reject(err);
      });
    });
  });
  ws.on('error', () => {});  // errors after open surface as 'close' codes, which tests assert
  // Only what came with the upgrade is kept: after this turn of the loop, a socket nobody took
  // from stops collecting (tests that attach their own handlers stream a lot through them).
  setImmediate(() => {
    ws.off('message', keepMessage);
    ws.off('close', keepClose);
  });
  return ws;
}

// Queues a ws client's messages so tests can await them one by one, in order.
// Hands `onMessage` / `onClose` what a wsConnect socket received before they were attached.
function replayEarly(ws, onMessage, onClose) {
  const early = ws.takeEarly ? ws.takeEarly() : null;
  if (!early) return;
  for (const [data, isBinary] of early.messages) onMessage(data, isBinary);
  if (early.close) onClose(...early.close);
}

function messageQueue(ws) {
  const items = [];
  const waiters = [];
  let closed = null;
  const onMessage = (data, isBinary) => {
    const msg = {data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data), isBinary};
    if (waiters.length) waiters.shift().resolve(msg);
    else items.push(msg);
  };
  const onClose = (code, reason) => {
    closed = {code, reason: reason.toString()};
    while (waiters.length) {
      waiters.shift().reject(new Error(`closed (${code} ${reason}) while awaiting a message`));
    }
  };
  ws.on('message', onMessage);
  ws.on('close', onClose);
  replayEarly(ws, onMessage, onClose);
  return {
    get length() {
      return items.length;
    },
    next(ms = 10000) {
      if (items.length) return Promise.resolve(items.shift());
      if (closed) {
        return Promise.reject(new Error(`closed (${closed.code} ${closed.reason})`));
      }
      return new Promise((resolve, reject) => {
        const w = {resolve, reject};
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no message within ${ms} ms`));
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
  };
}

// ---------------------------------------------------------------------------------------------
// WebSocket frames (RFC 6455 section 5), valid or deliberately not

const OP = {CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10};

// opts: {opcode, payload (Buffer|string), fin=true, rsv=0 (bits 1..7), mask=true|false|Buffer(4),
//        lengthBytes (force 0/2/8 extended length, e.g. a non-minimal encoding)}
function encodeFrame(opts) {
  const payload = Buffer.isBuffer(opts.payload) ? opts.payload :
                                                  Buffer.from(opts.payload ?? '', 'utf8');
  const fin = opts.fin ?? true;
  const rsv = opts.rsv ?? 0;
  const maskOpt = opts.mask ?? true;
  const key = Buffer.isBuffer(maskOpt) ? maskOpt : maskOpt ? crypto.randomBytes(4) : null;
  const len = payload.length;
  let ext = opts.lengthBytes ?? (len < 126 ? 0 : len < 65536 ? 2 : 8);
  const head = Buffer.alloc(2 + ext + (key ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opts.opcode & 0x0f);
  const maskBit = key ? 0x80 : 0;
  if (ext === 0) {
    head[1] = maskBit | len;
  } else if (ext === 2) {
    head[1] = maskBit | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!key) return Buffer.concat([head, payload]);
  key.copy(head, 2 + ext);
  const body = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ key[i & 3];
  return Buffer.concat([head, body]);
}

function closePayload(code, reason = '') {
  if (code === undefined) return Buffer.alloc(0);
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

function parseClose(payload) {
  if (payload.length < 2) return {code: 1005, reason: ''};
  return {code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8')};
}

// Incremental frame parser for bytes a raw client receives; unmasks if a frame is masked
// (servers must not mask: frame.masked tells tests).
class FrameDecoder {
  constructor() {
    this.buf = Buffer.alloc(0);
  }
  push(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }
  // The next whole frame, or null when more bytes are needed.
  next() {
    const b = this.buf;
    if (b.length < 2) return null;
    const masked = (b[1] & 0x80) !== 0;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    if (masked) off += 4;
    if (b.length < off + len) return null;
    let payload = b.subarray(off, off + len);
    if (masked) {
      const key = b.subarray(off - 4, off);
      payload = Buffer.from(payload);
      for (let i = 0; i < len; i++) payload[i] ^= key[i & 3];
    }
    const frame = {
      fin: (b[0] & 0x80) !== 0,
      rsv: (b[0] >> 4) & 7,
      opcode: b[0] & 0x0f,
      masked,
      payload,
      raw: b.subarray(0, off + len),
    };
    this.buf = b.subarray(off + len);
    return frame;
  }
}

// ---------------------------------------------------------------------------------------------
// Raw client: a socket under the test's full control

class RawClient {
  constructor(socket) {
    this.socket = socket;
    this.bytes = Buffer.alloc(0);  // unparsed bytes before the handshake completes
    this.decoder = null;           // after the 101
    this.waiter = null;
    this.ended = false;
    this.error = null;
    socket.on('data', (d) => this.onData(d));
    // A proxy that resets on purpose (after a violation) is fine: tests assert via `closed`.
    socket.on('error', (err) => {
      this.error = err;
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve({error: this.error});
      });
    });
  }
  onData(d) {
    if (this.decoder) this.decoder.push(d);
    else this.bytes = this.bytes.length ? Buffer.concat([this.bytes, d]) : d;
    this.wake();
  }
  wake() {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
  // Resolves when cond() returns a value other than undefined; rejects on close or timeout.
  async until(cond, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = cond();
      if (v !== undefined) return v;
      if (this.ended) {
        throw new Error(`connection closed while waiting for ${what}` +
                        (this.error ? ` (${this.error.code || this.error.message})` : ''));
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      let timer;
      await new Promise((resolve) => {
        this.waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }
  write(bytes) {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }
  // Sends raw HTTP and parses the response head (and body by Content-Length, chunked or close).
  async request(text, ms = 10000) {
    this.write(text);
    return this.readResponse(ms);
  }
  async readResponse(ms = 10000) {
    const end = await this.until(() => {
      const i = this.bytes.indexOf('\r\n\r\n');
      return i >= 0 ? i : undefined;
    }, ms, 'HTTP response head');
    const head = this.bytes.subarray(0, end).toString('latin1');
    this.bytes = this.bytes.subarray(end + 4);
    const [statusLine, ...rest] = head.split('\r\n');
    const headers = {};
    for (const line of rest) {
      const c = line.indexOf(':');
      const name = line.slice(0, c).trim().toLowerCase();
      const value = line.slice(c + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const status = Number(statusLine.split(' ')[1]);
    let body = Buffer.alloc(0);
    if (status !== 101) {
      if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        await this.until(() => (this.bytes.length >= n ? true : undefined), ms, 'HTTP body');
        body = this.bytes.subarray(0, n);
        this.bytes = this.bytes.subarray(n);
      } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        body = await this.readChunked(ms);
      } else {
        await this.until(() => (this.ended ? true : undefined), ms, 'end of HTTP body')
            .catch(() => {});
        body = this.bytes;
        this.bytes = Buffer.alloc(0);
      }
    }
    return {status, statusLine, headers, body};
  }
  async readChunked(ms) {
    const parts = [];
    for (;;) {
      const lineEnd = await this.until(() => {
        const i = this.bytes.indexOf('\r\n');
        return i >= 0 ? i : undefined;
      }, ms, 'chunk size');
      const size = parseInt(this.bytes.subarray(0, lineEnd).toString('latin1'), 16);
      await this.until(() => (this.bytes.length >= lineEnd + 2 + size + 2 ? true : undefined), ms,
                       'chunk');
      parts.push(this.bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
      this.bytes = this.bytes.subarray(lineEnd + 2 + size + 2);
      if (size === 0) return Buffer.concat(parts);
    }
  }
  // WebSocket upgrade; checks nothing but returns the response (plus `accept` = expected value).
  async handshake(pathname = '/', headers = {}, ms = 10000) {
    const key = crypto.randomBytes(16).toString('base64');
    const all = {
      Host: `127.0.0.1:${this.socket.remotePort}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': key,
      'Sec-WebSocket-Version': '13',
      ...headers,
    };
    const lines = Object.entries(all).filter(([, v]) => v !== undefined && v !== null)
                      .map(([k, v]) => `${k}: ${v}`);
    const res = await this.request(`GET ${pathname} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`, ms);
    res.accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
                     .digest('base64');
    if (res.status === 101) {
      this.decoder = new FrameDecoder();
      if (this.bytes.length) this.decoder.push(this.bytes);
      this.bytes = Buffer.alloc(0);
    }
    return res;
  }
  sendFrame(opts) {
    this.write(encodeFrame(opts));
  }
  sendText(text, opts = {}) {
    this.sendFrame({opcode: OP.TEXT, payload: text, ...opts});
  }
  sendClose(code, reason = '') {
    this.sendFrame({opcode: OP.CLOSE, payload: closePayload(code, reason)});
  }
  readFrame(ms = 10000) {
    if (!this.decoder) throw new Error('readFrame before a successful handshake');
    return this.until(() => this.decoder.next() ?? undefined, ms, 'WebSocket frame');
  }
  // The next data message with its fragments joined; control frames met on the way are kept in
  // .control (a close frame ends the wait: returned as {opcode: 8, ...}).
  async readMessage(ms = 10000) {
    const control = [];
    const parts = [];
    let opcode = null;
    for (;;) {
      const f = await this.readFrame(ms);
      if (f.opcode === OP.CLOSE) return {...f, control};
      if (f.opcode >= 8) {
        control.push(f);
        continue;
      }
      if (opcode === null) opcode = f.opcode;
      parts.push(f.payload);
      if (f.fin) return {opcode, payload: Buffer.concat(parts), control, fragments: parts.length};
    }
  }
  // Reads frames until a close frame arrives; returns it (with parsed code/reason).
  async readClose(ms = 10000) {
    for (;;) {
      const f = await this.readFrame(ms);
      if (f.opcode === OP.CLOSE) return {...f, ...parseClose(f.payload)};
    }
  }
  pause() {
    this.socket.pause();
  }
  resume() {
    this.socket.resume();
  }
  destroy() {
    this.socket.destroy();
  }
  reset() {
    this.socket.resetAndDestroy();
  }
}

// A connected RawClient (destroyed at the end of the case). opts: {host, tls: tls.connect opts}.
async function rawConnect(port, opts = {}) {
  const host = opts.host || '127.0.0.1';
  const socket = opts.tls ? tls.connect({host, port, ...opts.tls}) : net.connect({host, port});
  defer(() => socket.destroy());
  socket.setNoDelay(true);
  await once(socket, opts.tls ? 'secureConnect' : 'connect', opts.timeout ?? 10000);
  return new RawClient(socket);
}

// ---------------------------------------------------------------------------------------------
// Misc

// Resident set size of a process in bytes, from /proc/PID/status (VmRSS is in kB).
function readRss(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

// True in the CI's sanitizer run (ASAN_OPTIONS set). An ASan build keeps freed memory in a
// 256 MiB quarantine, which would swamp any RSS bound: a test that measures wsbridge's RSS starts
// it with `{env: smallQuarantineEnv()}` (1 MiB).
const SANITIZED = Boolean(process.env.ASAN_OPTIONS);
function smallQuarantineEnv() {
  return {ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=1'].filter(Boolean)
                            .join(':')};
}

// CPU time (user + system) a process has used so far, in seconds (/proc/PID/stat, 100 Hz ticks).
function readCpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;  // utime, stime: fields 14, 15
}

// A self-signed certificate for localhost/127.0.0.1 made with the openssl CLI.
function makeCert(dir = tmpDir('wsb-e2e-cert-'), {keyType = 'ec'} = {}) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const newkey = keyType === 'rsa' ? ['-newkey', 'rsa:2048'] :
                                     ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const r = childProcess.spawnSync('openssl', [
    'req', '-x509', ...newkey, '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', key, '-out', cert,
  ], {encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr || r.error}`);
  const pem = fs.readFileSync(cert, 'utf8');
  const fingerprint256 = new crypto.X509Certificate(pem).fingerprint256;
  return {cert, key, pem, fingerprint256};
}

// TOML for one listener relaying to one websocket cluster. Strings for sizes/durations as in
// the config contract; `extra` is appended verbatim (filters, more clusters).
function relayConfig({
  port,
  endpoints,
  cluster = 'echo',
  maxMessage = '1MiB',
  connectTimeout = '1s',
  logLevel = 'debug',
  tlsCert,
  tlsKey,
  routeExtra = '',
  listenerExtra = '',
  extra = '',
}) {
  const eps = endpoints.map((e) => (typeof e === 'number' ? `127.0.0.1:${e}` : e));
  return `[runtime]
workers = 1
log_level = "${logLevel}"

[[listener]]
name = "public"
address = "127.0.0.1:${port}"
${tlsCert ? `tls_cert = "${tlsCert}"\ntls_key = "${tlsKey}"\n` : ''}${listenerExtra}
[[route]]
path = "/"
downstream = "websocket"
cluster = "${cluster}"
max_message = "${maxMessage}"
${routeExtra}
[cluster.${cluster}]
protocol = "websocket"
endpoints = [${eps.map((e) => `"${e}"`).join(', ')}]
connect_timeout = "${connectTimeout}"
${extra}`;
}

function assertBytesEqual(actual, expected, what = 'bytes') {
  if (Buffer.compare(actual, expected) === 0) return;
  let i = 0;
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++;
  throw new assert.AssertionError({
    message: `${what} differ: got ${actual.length} bytes, expected ${expected.length}; first ` +
        `difference at offset ${i} (got ${actual.subarray(i, i + 16).toString('hex')}, ` +
        `expected ${expected.subarray(i, i + 16).toString('hex')})`,
  });
}

module.exports = {
  // runner
  test,
  run,
  Skip,
  direct,
  WSBRIDGE_BIN,
  defer,
  // processes
  freePort,
  tmpDir,
  waitForTcp,
  startWsbridge,
  startPeer,
  readRss,
  readCpuSeconds,
  SANITIZED,
  smallQuarantineEnv,
  makeCert,
  relayConfig,
  // await helpers
  once,
  withTimeout,
  wsConnect,
  messageQueue,
  replayEarly,
  // raw WebSocket
  rawConnect,
  RawClient,
  OP,
  encodeFrame,
  FrameDecoder,
  closePayload,
  parseClose,
  // asserts
  assert,
  assertEqual: assert.equal,
  assertDeepEqual: assert.deepEqual,
  assertBytesEqual,
  WebSocket,
};
