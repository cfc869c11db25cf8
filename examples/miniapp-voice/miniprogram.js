// A stand-in for the mini-program runtime on Node: connectContainer() returns a SocketTask with
// the same methods and callback shapes as the one wx.cloud.connectContainer resolves to, so the
// client files read like mini-program code and port by swapping this require for `wx.cloud`.
//
//   In the mini-program                         Here
//   const {socketTask} =                        const {socketTask} =
//     await wx.cloud.connectContainer({           await connectContainer({
//       config: {env: 'prod-xxxx'},                 base: 'ws://127.0.0.1:8080',
//       service: 'wsbridge',                        // the container's address: wsbridge
//       path: '/voice?token=...'});                 path: '/voice?token=...'});
//
// `path` carries both the wsbridge route and its query string, exactly as in connectContainer.
'use strict';
const WebSocket = require('ws');

class SocketTask {
  constructor(url, wsOptions) {
    this.ws = new WebSocket(url, {perMessageDeflate: false, ...wsOptions});
    this.ws.binaryType = 'arraybuffer';  // what a mini-program's onMessage hands over
    this.handlers = {open: [], message: [], close: [], error: []};
    this.ws.on('open', () => this.fire('open', {}));
    this.ws.on('message', (data, isBinary) => {
      this.fire('message', {data: isBinary ? data : Buffer.from(data).toString('utf8')});
    });
    this.ws.on('close', (code, reason) => {
      this.fire('close', {code, reason: reason.toString()});
    });
    this.ws.on('error', (err) => this.fire('error', {errMsg: err.message}));
    // A refused upgrade (401, 403, 502 ...): the mini-program sees an onError, then onClose.
    this.ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        this.fire('error', {errMsg: `HTTP ${res.statusCode} ${body}`, statusCode: res.statusCode});
        this.fire('close', {code: 1006, reason: ''});
        req.destroy();
      });
    });
  }
  fire(kind, arg) {
    for (const fn of this.handlers[kind]) fn(arg);
  }
  onOpen(fn) {
    this.handlers.open.push(fn);
  }
  onMessage(fn) {
    this.handlers.message.push(fn);
  }
  onClose(fn) {
    this.handlers.close.push(fn);
  }
  onError(fn) {
    this.handlers.error.push(fn);
  }
  // data: a string or an ArrayBuffer / Buffer (sent as a binary frame).
  send({data, success, fail}) {
    if (this.ws.readyState !== WebSocket.OPEN) {
      fail?.({errMsg: 'sendSocketMessage:fail socket is not open'});
      return;
    }
    const binary = typeof data !== 'string';
    this.ws.send(binary ? Buffer.from(data) : data, {binary}, (err) => {
      if (err) fail?.({errMsg: err.message});
      else success?.({});
    });
  }
  close({code = 1000, reason = ''} = {}) {
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else this.ws.close(code, reason);
  }
  // Not in the mini-program API: drops the TCP connection without a close frame, the way a
  // phone losing its network does (the demo and the tests use it to show reconnecting).
  kill() {
    this.ws.terminate();
  }
}

// base: wsbridge's address (ws:// or wss://); wsOptions: extra `ws` options (say, a CA).
async function connectContainer({base, path, wsOptions = {}}) {
  return {socketTask: new SocketTask(base.replace(/\/$/, '') + path, wsOptions)};
}

module.exports = {connectContainer, SocketTask};
