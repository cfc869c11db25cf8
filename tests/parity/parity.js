// Differential test: wsbridge's decoders (parity_cli) against the real JS parsers, on packets
// made by mutating valid ones (whitespace, signs, exponents and hex in number positions, huge
// ids, '-' ',' '/' placements, unicode, name and placeholder variants, truncation, random bytes).
//
//   node parity.js --cli <parity_cli> [--cases N] [--seed S] [--examples K]
//
// For each mode the same strings go to both sides:
//   sio5, sio4   socket.io-parser 4.2.7's Decoder (what a socket.io 4.8 server runs, for v5
//                clients and for the v4 clients wsbridge adapts), attachments fed as Buffers
//   eio4pkt      engine.io-parser 5.2.3 decodePacket
//   eio4payload  engine.io-parser 5.2.3 decodePayload (\x1e separators)
//   eio3payload  engine.io 6.6's parser-v3 decodePayload (<length>:<packet>, UTF-16 lengths)
// Outcomes: agree; refused by wsbridge only (allowed: fail closed, counted by class); anything
// else (wsbridge accepts what JS refuses, or both accept with a different type, namespace, ack
// id, event name, argument count or data) is a disagreement: printed, exit status 1.
'use strict';

const path = require('node:path');
const readline = require('node:readline');
const {spawn} = require('node:child_process');

const modules = path.join(__dirname, '..', 'e2e', 'node_modules');
const {Decoder} = require(path.join(modules, 'socket.io-parser'));
const eio4 = require(path.join(modules, 'engine.io-parser'));
const eio3 = require(path.join(modules, 'engine.io', 'build', 'parser-v3'));

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const CLI = arg('--cli');
const CASES = Number(arg('--cases', 100000));  // per mode
const SEED = Number(arg('--seed', 20261207));
const EXAMPLES = Number(arg('--examples', 3));
if (!CLI) throw new Error('--cli <parity_cli> is required');

// ---- deterministic PRNG (mulberry32)
let state = SEED >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(rand() * list.length)];
const int = (n) => Math.floor(rand() * n);

// ---- generators
const PH = (n) => `{"_placeholder":true,"num":${n}}`;
const SIO_SEEDS = [
  '0', '0{"token":"abc"}', '0/admin,{"token":"x"}', '0/admin', '0/admin?token=1,', '1', '1/admin,',
  '2["chat","hi"]', '2/admin,12["chat",{"a":1}]', '212["chat"]', '3/admin,12["ok"]', '312[]',
  '4{"message":"x"}', '4"not authorized"', '4/admin,{"message":"x","data":{"a":1}}',
  `51-["audio",${PH(0)}]`, `52-/a,3["x",${PH(0)},${PH(1)}]`, `61-5[${PH(0)}]`,
  '2[1,2]', '2["\\u0061dmin"]', '2["caf\u00e9",{"k":[1,2,{"x":null}]}]', '2["\ud83d\ude00"]',
  '2["a",true,false,null,-1.5e3,"\\"\\\\\\/\\b\\f\\n\\r\\t"]',
];
const INSERTS = [
  ' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\ufeff', '\u2028', '\u3000', '+', '-', '.', 'e',
  '0x', 'E', '1e0', ',', ',,', '/', '-', '[', ']', '{', '}', '"', '?', '#', '0', '1', '7', '00',
  '9007199254740991', '9007199254740992', '9007199254740993', '123456789012345678901234',
  'é', '😀', '\u0000', '\x1e', ':', 'b', 'NaN', 'Infinity',
];
const NAMES = [
  '"chat"', '"connect"', '"\\u0063onnect"', '"disconnect"', '"newListener"', '"__proto__"', '1',
  '1.0', '1e0', '-0', '0', '-7', '1e400', '1234567890123456', '123456789012345', '"\\ud800"',
  '"\\ud83d\\ude00"', '"a\\udc00"', '"\\ud800\\u0041"', '{}', '[]', 'null', 'true', '""', '" "',
  '"caf\u00e9"', '0.5', '1E2',
];
const NUMS = ['0', '1', '-1', '"0"', '1.5', '10', '0,"num":9', '9,"num":0', '0e0', '-0', 'null'];

function mutate(s) {
  switch (int(9)) {
    case 0: case 1: case 2: {  // insert a token
      const at = int(s.length + 1);
      return s.slice(0, at) + pick(INSERTS) + s.slice(at);
    }
    case 3:  // delete one character
      if (!s.length) return s;
      {
        const at = int(s.length);
        return s.slice(0, at) + s.slice(at + 1);
      }
    case 4: {  // duplicate one character
      const at = int(s.length);
      return s.slice(0, at + 1) + s.slice(at);
    }
    case 5: {  // another first array element (the event name)
      const at = s.indexOf('[');
      if (at < 0) return s;
      const end = s.indexOf(',', at) > 0 ? s.indexOf(',', at) : s.lastIndexOf(']');
      if (end <= at) return s;
      return s.slice(0, at + 1) + pick(NAMES) + s.slice(end);
    }
    case 6:  // another placeholder num
      return s.replace(/"num":[0-9]+/, `"num":${pick(NUMS)}`);
    case 7:  // truncate
      return s.slice(0, int(s.length + 1));
    default:  // another type digit or attachment count
      return s.replace(/^[0-9]/, pick(['0', '1', '2', '3', '4', '5', '6', '7', '9', ' ', '', 'a']));
  }
}

function randomString() {
  const alphabet = '0123456-/,[]{}":ab \t1e.+\u00e9';
  let s = '';
  for (let n = int(12); n > 0; n--) s += alphabet[int(alphabet.length)];
  return s;
}

function sioCase() {
  if (rand() < 0.05) return randomString();
  let s = pick(SIO_SEEDS);
  for (let n = 1 + int(3); n > 0; n--) s = mutate(s);
  return s;
}

const EIO_SEEDS = ['4hello', '2', '3', '2probe', '3probe', '5', '6', '1', '0{"sid":"x"}', '4',
                   '4caf\u00e9', 'bAQIDBA==', 'b', 'bAQID', '4\ud83d\ude00'];
function eioPacketCase() {
  let s = pick(EIO_SEEDS);
  for (let n = int(3); n > 0; n--) s = mutate(s);
  return s;
}
function eio4PayloadCase() {
  const packets = [];
  for (let n = 1 + int(4); n > 0; n--) packets.push(eioPacketCase());
  let s = packets.join('\x1e');
  if (rand() < 0.3) s = mutate(s);
  return s;
}
function eio3PayloadCase() {
  const packets = [];
  for (let n = 1 + int(4); n > 0; n--) {
    let p = pick(EIO_SEEDS);
    if (p.startsWith('b')) p = 'b4' + p.slice(1);
    if (rand() < 0.3) p = mutate(p);
    packets.push(`${p.length}:${p}`);
  }
  let s = packets.join('');
  if (rand() < 0.4) s = mutate(s);
  return s;
}

// ---- the JS side, in parity_cli's canonical form
const hex = (s) => (s.length ? Buffer.from(s, 'utf8').toString('hex') : '-');
const hexBytes = (b) => (b.length ? Buffer.from(b).toString('hex') : '-');

function jsSio(str) {
  const decoder = new Decoder();
  let decoded = null;
  decoder.on('decoded', (p) => (decoded = p));
  let attachments = 0;
  try {
    decoder.add(str);
    if (!decoded && decoder.reconstructor) {
      attachments = decoder.reconstructor.reconPack.attachments;
      for (let i = 0; i < attachments && !decoded; i++) decoder.add(Buffer.from([i]));
    }
  } catch (e) {
    return 'err';
  }
  if (!decoded) return 'err';
  const type = Number(str.charAt(0));
  const id = decoded.id === undefined ? '-' : String(decoded.id);
  let out = `ok ${type} ${hex(decoded.nsp)} ${id}`;
  const data = decoded.data;
  const event = type === 2 || type === 5;
  const ack = type === 3 || type === 6;
  if (event) {
    if (data === undefined) out += ' - -';
    else if (typeof data[0] === 'number') out += ` n ${String(data[0])}`;
    else out += ` s ${hex(data[0])}`;
  } else {
    out += ' - -';
  }
  if (event) out += data === undefined ? ' -' : ` ${data.length - 1}`;
  else if (ack) out += data === undefined ? ' -' : ` ${data.length}`;
  else out += ' -';
  return `${out} ${attachments}`;
}

const TYPES = {open: 0, close: 1, ping: 2, pong: 3, message: 4, upgrade: 5, noop: 6};
function eioField(p) {
  const binary = typeof p.data !== 'string' && p.data !== undefined;
  const data = p.data === undefined ? '-' : binary ? hexBytes(p.data) : hex(p.data);
  return `${TYPES[p.type]}:${binary ? 'b' : 't'}:${data}`;
}
function jsEio4Packet(str) {
  const p = eio4.decodePacket(str, 'nodebuffer');
  return p.type === 'error' ? 'err' : `ok ${eioField(p)}`;
}
function jsEio4Payload(str) {
  const packets = eio4.decodePayload(str, 'nodebuffer');
  if (packets.some((p) => p.type === 'error')) return 'err';
  return `ok ${packets.map(eioField).join(' ')}`;
}
function jsEio3Payload(str) {
  const packets = [];
  let error = false;
  eio3.decodePayload(str, 'nodebuffer', (p) => {
    if (p.type === 'error') error = true;
    else packets.push(p);
  });
  return error ? 'err' : `ok ${packets.map(eioField).join(' ')}`.trimEnd();
}

const MODES = {
  sio5: {make: sioCase, ref: jsSio},
  sio4: {make: sioCase, ref: jsSio},
  eio4pkt: {make: eioPacketCase, ref: jsEio4Packet},
  eio4payload: {make: eio4PayloadCase, ref: jsEio4Payload},
  eio3payload: {make: eio3PayloadCase, ref: jsEio3Payload},
};

// A refusal's class, for the summary: what kind of form socket.io-parser took that wsbridge
// does not.
function refusalClass(mode, s) {
  if (!mode.startsWith('sio')) {
    if (/(^|\x1e|:)b/.test(s)) return 'base64 packet (Node decodes any text as base64)';
    return /[^\x20-\x7e]/.test(s) ? 'non-ASCII' : 'other';
  }
  if (s === '' || /^\s/u.test(s)) return 'type is whitespace or empty';
  if (/^[56]/.test(s) && !/^[56][0-9]+-/.test(s)) return 'attachment count not plain digits';
  if (/\s/u.test(s.slice(1, 40)) && /^[0-6]([0-9]+-)?(\/[^,]*,?)?[0-9]*\s/u.test(s)) {
    return 'whitespace where the ack id goes';
  }
  if (/^[0-6]([0-9]+-)?(\/[^,]*,?)?[0-9]{16,}/.test(s)) return 'ack id beyond 2^53 - 1';
  if (/^[2356]([0-9]+-)?(\/[^,]*,)?[0-9]*$/.test(s) || /^[2356]([0-9]+-)?\/[^,]*$/.test(s)) {
    return 'EVENT/ACK without payload';
  }
  if (/^[25]([0-9]+-)?(\/[^,]*,)?[0-9]*\[-?[0-9]/.test(s)) return 'non-canonical number name';
  if (/\\u[dD][89abAB]|\\u[dD][c-fC-F]/.test(s)) return 'lone surrogate name';
  if (mode === 'sio4' && s.startsWith('0')) return 'v4 CONNECT with a payload';
  return 'other';
}

async function main() {
  const cli = spawn(CLI, [], {stdio: ['pipe', 'pipe', 'inherit']});
  const lines = readline.createInterface({input: cli.stdout});
  const answers = lines[Symbol.asyncIterator]();
  const started = Date.now();
  let total = 0;
  let agree = 0;
  let refused = 0;
  const classes = new Map();
  const disagreements = new Map();
  for (const [mode, {make, ref}] of Object.entries(MODES)) {
    const batch = 5000;
    for (let done = 0; done < CASES; done += batch) {
      const cases = [];
      for (let i = 0; i < Math.min(batch, CASES - done); i++) {
        let s = make();
        // Strings with lone surrogates cannot travel as UTF-8 (a peer never sees them).
        if (!s.isWellFormed()) s = s.toWellFormed();
        cases.push(s);
      }
      cli.stdin.write(cases.map((s) => `${mode} ${Buffer.from(s, 'utf8').toString('hex')}\n`)
          .join(''));
      for (const s of cases) {
        const ours = (await answers.next()).value;
        const theirs = ref(s);
        total++;
        if (ours === theirs) {
          agree++;
        } else if (ours === 'err') {
          refused++;
          const c = refusalClass(mode, s);
          const entry = classes.get(`${mode}: ${c}`) || {count: 0, examples: []};
          entry.count++;
          if (entry.examples.length < EXAMPLES) entry.examples.push(JSON.stringify(s));
          classes.set(`${mode}: ${c}`, entry);
        } else {
          const key = `${mode} ${JSON.stringify(s)}`;
          if (!disagreements.has(key)) disagreements.set(key, {ours, theirs});
        }
      }
    }
  }
  cli.stdin.end();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log('refused by wsbridge only (fail closed), by class:');
  for (const [c, {count, examples}] of [...classes].sort()) {
    console.log(`  ${String(count).padStart(8)}  ${c}   e.g. ${examples.join('  ')}`);
  }
  if (disagreements.size) {
    console.log('DISAGREEMENTS (wsbridge accepts with another meaning, or what JS refuses):');
    let shown = 0;
    for (const [key, {ours, theirs}] of disagreements) {
      if (shown++ >= 50) break;
      console.log(`  ${key}\n    wsbridge: ${ours}\n    JS:       ${theirs}`);
    }
  }
  console.log(`parity: ${total} cases, ${agree} agree, ${refused} refused-by-wsbridge-only, ` +
              `${disagreements.size} disagreements (seed ${SEED}, ${seconds} s)`);
  process.exit(disagreements.size ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
