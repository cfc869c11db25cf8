// Talking to wsbridge's admin listener from the e2e tests: plain HTTP requests, polling until
// the admin state catches up with events on the workers' threads, and /metrics parsed.
'use strict';

const assert = require('node:assert');
const http = require('node:http');
const h = require('./harness');

// One request on its own connection: {status, headers, body}. `headers` are sent as given (a
// `host` there replaces the one Node derives from 127.0.0.1:port).
function request(port, method, path, ms = 5000, headers = {}) {
  return h.withTimeout(new Promise((resolve, reject) => {
    const options = {host: '127.0.0.1', port, method, path, headers, agent: false};
    const req = http.request(options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers,
                                   body: Buffer.concat(chunks).toString('utf8')}));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), ms, `${method} ${path}`);
}

const get = (port, path, ms, headers) => request(port, 'GET', path, ms, headers);

async function getJson(port, path) {
  return JSON.parse((await get(port, path)).body);
}

// The first truthy value of `await fn()`, polled every `every` ms: the admin state follows
// events on other threads (a close counted when the worker finishes the session, a probe every
// 2 s), and a dashboard its own polls.
async function until(fn, what, ms = 10000, every = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

// GET `path` until `pred(response)` holds; the timeout names the last response.
async function getUntil(port, path, pred, what, ms = 10000) {
  let last;
  try {
    return await until(async () => {
      last = await get(port, path);
      return pred(last) && last;
    }, what, ms, 50);
  } catch (err) {
    throw new Error(`${err.message}; last ${path}: ${last?.status} ${last?.body}`);
  }
}

// Prometheus text 0.0.4 -> {'name{a="x",b="y"}': value}.
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `bad metrics line: ${line}`);
    out[m[1] + (m[2] || '')] = Number(m[3]);
  }
  return out;
}

module.exports = {request, get, getJson, until, getUntil, parseMetrics};
