// HS256 JSON Web Tokens with nothing but node:crypto: enough to mint demo tokens and to let the
// server check the ones the hand-rolled client sends (the route without wsbridge's auth.jwt).
'use strict';
const crypto = require('node:crypto');

// The demo default; run.sh exports JWT_SECRET so wsbridge.toml's ${JWT_SECRET} sees the same.
const SECRET = process.env.JWT_SECRET || 'miniapp-voice-demo-secret';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// A token for `sub`, valid for `ttlSeconds` (negative: already expired, for tests).
function mint(sub, {ttlSeconds = 3600, secret = SECRET} = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({alg: 'HS256', typ: 'JWT'}));
  const body = b64url(JSON.stringify({sub, iat: now, exp: now + ttlSeconds}));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

// The claims of a valid, unexpired HS256 token, else null.
function verify(token, {secret = SECRET} = {}) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    if (header.alg !== 'HS256') return null;
    const want = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
    const got = Buffer.from(parts[2], 'base64url');
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return null;
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
    if (typeof claims.exp === 'number' && claims.exp <= Date.now() / 1000) return null;
    return claims;
  } catch {
    return null;
  }
}

module.exports = {mint, verify, SECRET};

// `node jwt.js alice` prints a token for alice (run.sh uses this).
if (require.main === module) console.log(mint(process.argv[2] || 'demo-user'));
