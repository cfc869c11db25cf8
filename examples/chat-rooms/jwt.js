// HS256 JSON Web Tokens with nothing but node:crypto: the demo login service mints them (web.js),
// wsbridge verifies them (auth.jwt), and the chat servers only read the claims of tokens that
// wsbridge has already let through.
'use strict';
const crypto = require('node:crypto');

// The demo default; run.sh exports JWT_SECRET so wsbridge.toml's ${JWT_SECRET} sees the same.
const SECRET = process.env.JWT_SECRET || 'chat-rooms-demo-secret';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// A token for `sub`, valid for `ttlSeconds` (negative: already expired, for tests).
function mint(sub, {ttlSeconds = 3600, secret = SECRET} = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({alg: 'HS256', typ: 'JWT'}));
  const body = b64url(JSON.stringify({sub, iat: now, exp: now + ttlSeconds}));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

// The claims of a token, without checking its signature: only for tokens wsbridge verified
// before the CONNECT packet carrying them reached the server.
function claimsOf(token) {
  try {
    return JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url'));
  } catch {
    return null;
  }
}

module.exports = {mint, claimsOf, SECRET};

// `node jwt.js alice` prints a token for alice (run.sh uses this).
if (require.main === module) console.log(mint(process.argv[2] || 'demo-user'));
