#!/usr/bin/env node
// Get real tokens from the test provider's real endpoints; prints one JSON object on stdout.
//
//   node tests/idp/token.mjs --issuer URL --client rs256-client [--secret S]
//        [--grant code|client_credentials] [--user alice] [--scope "openid email groups"]
//        [--resource urn:portcullis|none] [--redirect-uri http://127.0.0.1/callback]
//
// code:               {"id_token": "...", "access_token": "...", "refresh_token": "..." (only if issued)}
// client_credentials: {"access_token": "..."}
// Any failure: message on stderr, exit status 1, nothing on stdout.

import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';
import { CookieJar } from './lib/jar.mjs';

const TIMEOUT_MS = 15000;
const MAX_HOPS = 25;

function fail(msg) {
  process.stderr.write(`token: ${msg}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      issuer: { type: 'string' },
      client: { type: 'string' },
      secret: { type: 'string' },
      grant: { type: 'string', default: 'code' },
      user: { type: 'string', default: 'alice' },
      scope: { type: 'string' },
      resource: { type: 'string', default: 'urn:portcullis' },
      'redirect-uri': { type: 'string', default: 'http://127.0.0.1/callback' },
    },
    strict: true,
  }));
} catch (err) {
  fail(err.message);
}
if (!args.issuer) fail('--issuer URL is required');
if (!args.client) fail('--client ID is required');
if (!['code', 'client_credentials'].includes(args.grant)) fail('--grant must be code or client_credentials');

const issuer = args.issuer.replace(/\/+$/, '');
const clientId = args.client;
const secret = args.secret ?? `${clientId}-secret`;
const resource = args.resource === 'none' ? undefined : args.resource;
const b64u = (buf) => Buffer.from(buf).toString('base64url');

function basicAuth() {
  // RFC 6749 §2.3.1: form-urlencode id and secret before base64.
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

async function getJson(url) {
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function tokenRequest(tokenEndpoint, params) {
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      authorization: basicAuth(),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams(params).toString(),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`token endpoint: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  if (res.status !== 200) {
    throw new Error(`token endpoint: HTTP ${res.status}: ${body.error ?? ''} ${body.error_description ?? ''}`.trim());
  }
  if (typeof body.access_token !== 'string') throw new Error('token endpoint: no access_token in response');
  return body;
}

async function codeFlow(meta) {
  const redirectUri = args['redirect-uri'];
  const scope = args.scope ?? 'openid email profile groups roles';
  const state = b64u(crypto.randomBytes(16));
  const nonce = b64u(crypto.randomBytes(16));
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());

  const auth = new URL(meta.authorization_endpoint);
  const q = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    login_hint: args.user,
  };
  // oidc-provider only issues a refresh token for offline_access together with prompt=consent.
  if (scope.split(' ').includes('offline_access')) q.prompt = 'consent';
  if (resource) q.resource = resource;
  for (const [k, v] of Object.entries(q)) auth.searchParams.set(k, v);

  const jar = new CookieJar();
  const issuerOrigin = new URL(issuer).origin;
  let url = auth;
  let callback;
  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    if (url.origin !== issuerOrigin) throw new Error(`redirected off the issuer to ${url.origin}${url.pathname}`);
    const headers = {};
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { redirect: 'manual', headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
    jar.store(url, res.headers.getSetCookie());
    const location = res.headers.get('location');
    if (res.status < 300 || res.status > 399 || !location) {
      const body = await res.text();
      throw new Error(`authorization chain stopped at ${url.pathname}: HTTP ${res.status}: ${body.replace(/\s+/g, ' ').slice(0, 400)}`);
    }
    await res.arrayBuffer().catch(() => {});
    const next = new URL(location, url);
    if (next.href.startsWith(redirectUri)) {
      callback = next;
      break;
    }
    url = next;
  }
  if (!callback) throw new Error(`no redirect to ${redirectUri} after ${MAX_HOPS} hops`);

  const p = callback.searchParams;
  if (p.get('error')) throw new Error(`authorization error: ${p.get('error')} ${p.get('error_description') ?? ''}`.trim());
  if (p.get('state') !== state) throw new Error('state mismatch in authorization response');
  if (p.has('iss') && p.get('iss') !== meta.issuer) throw new Error(`iss mismatch in authorization response: ${p.get('iss')}`);
  const code = p.get('code');
  if (!code) throw new Error('no code in authorization response');

  const body = await tokenRequest(meta.token_endpoint, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  });
  if (scope.split(' ').includes('openid')) {
    if (typeof body.id_token !== 'string') throw new Error('token endpoint: no id_token in response');
    const payload = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString());
    if (payload.nonce !== nonce) throw new Error('nonce mismatch in id_token');
  }
  const out = { id_token: body.id_token, access_token: body.access_token };
  if (body.refresh_token) out.refresh_token = body.refresh_token;
  return out;
}

async function clientCredentials(meta) {
  const params = { grant_type: 'client_credentials' };
  if (resource) params.resource = resource;
  if (args.scope) params.scope = args.scope;
  const body = await tokenRequest(meta.token_endpoint, params);
  return { access_token: body.access_token };
}

try {
  const meta = await getJson(`${issuer}/.well-known/openid-configuration`);
  if (meta.issuer !== issuer) throw new Error(`discovery issuer ${meta.issuer} != ${issuer}`);
  const out = args.grant === 'code' ? await codeFlow(meta) : await clientCredentials(meta);
  process.stdout.write(`${JSON.stringify(out)}\n`);
} catch (err) {
  const cause = err.cause ? ` (${err.cause.code || err.cause.message || err.cause})` : '';
  fail(`${err.message || String(err)}${cause}`);
}
