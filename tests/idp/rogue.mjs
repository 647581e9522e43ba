#!/usr/bin/env node
// A second, deliberately hostile issuer for negative tests. Test use only.
//
//   node tests/idp/rogue.mjs --port 0 [--issuer URL]
//
// Prints `ROGUE_READY http://127.0.0.1:PORT` on stdout when ready (nothing else on stdout).
//
//   GET  /.well-known/openid-configuration   discovery; issuer = own URL (or --issuer), jwks_uri = <own URL>/jwks
//   GET  /jwks                               public keys: current RS256 key (kid rogue-rs, then rogue-rs-2, ...) and ES256 (rogue-es)
//   POST /sign      {"header": {...}, "claims": {...}, "key": K}  -> compact JWS, text/plain
//        K = "rogue-rs" | "rogue-rs-N" | "rogue-es"   sign with that key (header alg/kid default to the key's;
//            a header alg the key can do (RS*/PS* for RSA keys) is honoured, any other alg is only written
//            into the header while the key's own alg signs)
//            "none"                  unsigned: base64url(header).base64url(claims).  (header alg defaults to "none")
//            "hs-with-public-key"    HS256, HMAC key = PEM (SPKI) text of the currently published RS256 public key
//                                    (OpenSSL layout: 64-column lines, trailing newline)
//            "other"                 RS256 key that is never published (kid only if given in header)
//   POST /jwks/rotate                replace the published RS256 key; returns the new kid (text/plain)
//   POST /fail      {"on": bool}     discovery and jwks answer 503 while on
//   POST /redirect  {"on": bool, "to"?: URL}   discovery answers 302 (default to <own URL>/elsewhere/.well-known/openid-configuration)
//   GET  /stats                      {"discovery": n, "jwks": n, "redirected": n, "device_polls": [ms, ...]}
//                                    requests received (including 503/302 answers); device_polls: when each
//                                    device-code poll of /token arrived (ms since the epoch)
//   POST /userinfo/script {"status": 200, "claims": {...}}  what GET /userinfo answers (default 401)
//   GET  /userinfo                   the scripted claims, to a request with a Bearer token (counted in
//                                    stats.userinfo)
//   POST /device/script {"answers": ["slow_down", "authorization_pending", "token", ...], "claims": {...}}
//                                    scripts the device grant: POST /device/auth answers a fixed code (no
//                                    interval), each device-code poll of POST /token takes the next answer;
//                                    "token" answers an ID token (RS256, rogue-rs) with the given claims

import * as http from 'node:http';
import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';

function die(msg) {
  process.stderr.write(`rogue: ${msg}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      issuer: { type: 'string' },
    },
    strict: true,
  }));
} catch (err) {
  die(`${err.message}\nusage: node rogue.mjs --port N [--issuer URL]`);
}
if (!/^\d+$/.test(args.port) || Number(args.port) > 65535) die('--port must be 0..65535');

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

function newKey(alg, kid) {
  const { privateKey, publicKey } = alg.startsWith('ES')
    ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, jwk };
}

const keys = new Map(); // kid -> key (every RS key ever generated stays usable for /sign)
let rsGeneration = 1;
let currentRs = newKey('RS256', 'rogue-rs');
const es = newKey('ES256', 'rogue-es');
const other = newKey('RS256', 'rogue-other');
keys.set(currentRs.kid, currentRs);
keys.set(es.kid, es);

const state = { fail: false, redirect: false, redirectTo: undefined };
const stats = { discovery: 0, jwks: 0, redirected: 0, userinfo: 0 };
let userinfoScript = { status: 401, claims: { error: 'invalid_token' } };

const HASH = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

// Signs `input` with `key`. The header's alg is used when the key can do it
// (RS*/PS* with an RSA key, ES256 with the P-256 key); otherwise the key's own
// alg is used while the header keeps the requested (lying) alg.
function rawSign(key, alg, input) {
  const m = /^(RS|PS|ES)(256|384|512)$/.exec(alg);
  const rsa = key.privateKey.asymmetricKeyType === 'rsa';
  let family;
  let bits;
  if (m && (rsa ? m[1] !== 'ES' : alg === 'ES256')) [, family, bits] = m;
  else [, family, bits] = /^(RS|PS|ES)(256|384|512)$/.exec(key.alg);
  const hash = HASH[bits];
  if (family === 'ES') return crypto.sign(hash, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  if (family === 'PS') {
    return crypto.sign(hash, Buffer.from(input), {
      key: key.privateKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: Number(bits) / 8,
    });
  }
  return crypto.sign(hash, Buffer.from(input), key.privateKey);
}

function signWith(key, header, claims) {
  const h = { alg: key.alg, ...header };
  if (!('kid' in header) && key !== other) h.kid = key.kid;
  const input = `${b64u(h)}.${b64u(claims)}`;
  return `${input}.${rawSign(key, String(h.alg), input).toString('base64url')}`;
}

// PEM (SPKI) text exactly as OpenSSL writes it: 64-column lines, trailing newline.
function publicPem(key) {
  return key.publicKey.export({ type: 'spki', format: 'pem' });
}

function sign({ header = {}, claims = {}, key }) {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error('header must be an object');
  if (typeof claims !== 'object' || claims === null) throw new Error('claims must be an object or array');
  if (key === 'none') {
    return `${b64u({ alg: 'none', ...header })}.${b64u(claims)}.`;
  }
  if (key === 'hs-with-public-key') {
    const h = { alg: 'HS256', kid: currentRs.kid, ...header };
    const input = `${b64u(h)}.${b64u(claims)}`;
    const mac = crypto.createHmac(hmacHash(h.alg), publicPem(currentRs)).update(input).digest('base64url');
    return `${input}.${mac}`;
  }
  if (key === 'other') return signWith(other, header, claims);
  const k = keys.get(key);
  if (!k) throw new Error(`unknown key ${JSON.stringify(key)}`);
  return signWith(k, header, claims);
}

function hmacHash(alg) {
  switch (alg) {
    case 'HS384': return 'sha384';
    case 'HS512': return 'sha512';
    default: return 'sha256';
  }
}

let base; // http://127.0.0.1:PORT, set once listening
let deviceScript = { answers: [], claims: {} };
const devicePolls = [];

function discoveryDoc() {
  const issuer = args.issuer ?? base;
  return {
    issuer,
    jwks_uri: `${base}/jwks`,
    authorization_endpoint: `${base}/auth`,
    token_endpoint: `${base}/token`,
    device_authorization_endpoint: `${base}/device/auth`,
    userinfo_endpoint: `${base}/userinfo`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'ES256'],
  };
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  return JSON.parse(text);
}

async function handle(req, res) {
  const { pathname } = new URL(req.url, base);
  const route = `${req.method} ${pathname}`;
  switch (route) {
    case 'GET /.well-known/openid-configuration':
      stats.discovery += 1;
      if (state.fail) return send(res, 503, { error: 'unavailable' });
      if (state.redirect) {
        const to = state.redirectTo ?? `${base}/elsewhere/.well-known/openid-configuration`;
        res.writeHead(302, { location: to, 'content-length': 0 });
        return res.end();
      }
      return send(res, 200, discoveryDoc());
    case 'GET /elsewhere/.well-known/openid-configuration':
      stats.redirected += 1;
      return send(res, 200, discoveryDoc());
    case 'GET /jwks':
      stats.jwks += 1;
      if (state.fail) return send(res, 503, { error: 'unavailable' });
      return send(res, 200, { keys: [currentRs.jwk, es.jwk] }, 'application/jwk-set+json');
    case 'POST /sign': {
      let body;
      try {
        body = await readJson(req);
      } catch (err) {
        return send(res, 400, `bad JSON: ${err.message}\n`, 'text/plain');
      }
      try {
        return send(res, 200, sign(body), 'text/plain');
      } catch (err) {
        return send(res, 400, `cannot sign: ${err.message}\n`, 'text/plain');
      }
    }
    case 'POST /jwks/rotate': {
      rsGeneration += 1;
      currentRs = newKey('RS256', `rogue-rs-${rsGeneration}`);
      keys.set(currentRs.kid, currentRs);
      return send(res, 200, currentRs.kid, 'text/plain');
    }
    case 'POST /fail':
    case 'POST /redirect': {
      let body;
      try {
        body = await readJson(req);
      } catch (err) {
        return send(res, 400, `bad JSON: ${err.message}\n`, 'text/plain');
      }
      if (typeof body.on !== 'boolean') return send(res, 400, 'expected {"on": true|false}\n', 'text/plain');
      if (pathname === '/fail') {
        state.fail = body.on;
      } else {
        state.redirect = body.on;
        state.redirectTo = typeof body.to === 'string' ? body.to : undefined;
      }
      return send(res, 200, { on: body.on });
    }
    case 'GET /stats':
      return send(res, 200, { ...stats, device_polls: devicePolls });
    case 'POST /device/script': {
      let body;
      try {
        body = await readJson(req);
      } catch (err) {
        return send(res, 400, `bad JSON: ${err.message}\n`, 'text/plain');
      }
      if (!Array.isArray(body.answers)) return send(res, 400, 'expected {"answers": [...]}\n', 'text/plain');
      deviceScript = { answers: [...body.answers], claims: body.claims ?? {} };
      devicePolls.length = 0;
      return send(res, 200, { ok: true });
    }
    case 'POST /userinfo/script': {
      let body;
      try {
        body = await readJson(req);
      } catch (err) {
        return send(res, 400, `bad JSON: ${err.message}\n`, 'text/plain');
      }
      userinfoScript = { status: body.status ?? 200, claims: body.claims ?? {} };
      stats.userinfo = 0;
      return send(res, 200, { ok: true });
    }
    case 'GET /userinfo': {
      stats.userinfo += 1;
      if (!/^Bearer \S+$/.test(req.headers.authorization ?? '')) {
        return send(res, 401, { error: 'invalid_request' });
      }
      return send(res, userinfoScript.status, userinfoScript.claims);
    }
    case 'POST /device/auth':
      return send(res, 200, {
        device_code: 'rogue-device-code',
        user_code: 'ROGUE-CODE',
        verification_uri: `${base}/device`,
        verification_uri_complete: `${base}/device?user_code=ROGUE-CODE`,
        expires_in: 120,
      });
    case 'POST /token': {
      devicePolls.push(Date.now());
      const answer = deviceScript.answers.shift() ?? 'authorization_pending';
      if (answer !== 'token') return send(res, 400, { error: answer });
      const idToken = sign({ header: {}, claims: deviceScript.claims, key: 'rogue-rs' });
      return send(res, 200, { id_token: idToken, token_type: 'Bearer', expires_in: 600 });
    }
    default:
      return send(res, 404, { error: 'not_found' });
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    process.stderr.write(`rogue: ${err.stack || err}\n`);
    if (!res.headersSent) send(res, 500, 'internal error\n', 'text/plain');
    else res.end();
  });
});

server.on('error', (err) => die(err.message));
server.listen(Number(args.port), '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  process.stdout.write(`ROGUE_READY ${base}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
