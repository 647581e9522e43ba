#!/usr/bin/env node
// Test-only OpenID provider for the Portcullis integration tests.
//
//   node tests/idp/idp.mjs --port N --keys FILE [--issuer-host 127.0.0.1] [--rotate]
//                          [--redirect-uri URL]... [--dev-interactions] [--device-ttl SECONDS]
//                          [--token-ttl SECONDS]
//
// --device-ttl sets the device codes' lifetime (default 600 s; tests of expiry use a few).
// --token-ttl sets the ID and access tokens' lifetime (default 600 s).
// --redirect-uri adds a redirect URI to every client (exact match, as the provider does).
// --dev-interactions shows the provider's own login and consent pages (for browser tests)
// instead of completing interactions with redirects alone. With the auto-approving
// interactions, login_hint=denied makes the provider answer error=access_denied.
//
// Prints exactly one line `IDP_READY <issuer>` on stdout when ready, then keeps
// running. Everything else (including oidc-provider's own notices) goes to stderr.
// Never use this outside tests: every login is auto-approved without a password.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { parseArgs } from 'node:util';

// oidc-provider prints NOTICEs with console.info (stdout). Keep stdout for the
// readiness line only. This must run before oidc-provider is imported.
for (const m of ['log', 'info', 'debug']) {
  // eslint-disable-next-line no-console
  console[m] = (...args) => console.error(...args);
}

const { default: Provider, errors } = await import('oidc-provider');
const { generateKeyPair, exportJWK } = await import('jose');

function die(msg) {
  process.stderr.write(`idp: ${msg}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string' },
      keys: { type: 'string' },
      'issuer-host': { type: 'string', default: '127.0.0.1' },
      rotate: { type: 'boolean', default: false },
      'redirect-uri': { type: 'string', multiple: true, default: [] },
      'dev-interactions': { type: 'boolean', default: false },
      'device-ttl': { type: 'string', default: '600' },
      'token-ttl': { type: 'string', default: '600' },
    },
    strict: true,
  }));
} catch (err) {
  die(`${err.message}\nusage: node idp.mjs --port N --keys FILE [--issuer-host 127.0.0.1] [--rotate]`);
}
if (args.port === undefined || !/^\d+$/.test(args.port) || Number(args.port) > 65535) {
  die('--port N (0..65535) is required');
}
if (!args.keys) die('--keys FILE is required');

// ---------------------------------------------------------------- signing keys

const KEY_ALGS = ['RS256', 'RS384', 'RS512', 'ES256', 'PS256'];

async function generateJwks() {
  const keys = [];
  for (const alg of KEY_ALGS) {
    const opts = { extractable: true };
    if (alg.startsWith('RS') || alg.startsWith('PS')) opts.modulusLength = 2048;
    const { privateKey } = await generateKeyPair(alg, opts);
    const jwk = await exportJWK(privateKey);
    keys.push({
      ...jwk,
      kid: `${alg.toLowerCase()}-${crypto.randomBytes(8).toString('hex')}`,
      alg,
      use: 'sig',
    });
  }
  return { keys };
}

function writePrivateFile(file, text) {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}

async function loadOrCreateJwks(file, rotate) {
  if (!rotate && fs.existsSync(file)) {
    let jwks;
    try {
      jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read key file ${file}: ${err.message}`);
    }
    if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      throw new Error(`key file ${file} is not a JWKS ({"keys": [...]})`);
    }
    return jwks;
  }
  const jwks = await generateJwks();
  writePrivateFile(file, `${JSON.stringify(jwks, null, 2)}\n`);
  return jwks;
}

// ---------------------------------------------------------------- accounts

const ACCOUNTS = {
  alice: {
    email: 'alice@example.com',
    email_verified: true,
    name: 'Alice Smith',
    given_name: 'Alice',
    first_name: 'Alice',
    family_name: 'Smith',
    last_name: 'Smith',
    groups: ['analysts', 'Example Provider Group'],
    roles: ['reader'],
  },
  bob: {
    email: 'bob@example.com',
    email_verified: true,
    groups: ['contractors'],
    roles: [],
  },
  mallory: {
    email: 'mallory@example.com',
    email_verified: true,
    groups: ['analysts', 'blocked_people'],
    roles: [],
  },
  nomail: {
    groups: [],
    roles: [],
  },
};

function accountData(id) {
  if (Object.hasOwn(ACCOUNTS, id)) return ACCOUNTS[id];
  return { email: `${id}@example.com`, email_verified: true, groups: [], roles: [] };
}

async function findAccount(_ctx, id) {
  if (typeof id !== 'string' || id.length === 0) return undefined;
  return {
    accountId: id,
    // The provider filters these by the granted scopes/claims.
    async claims() {
      return { sub: id, ...accountData(id) };
    },
  };
}

// ---------------------------------------------------------------- clients

const REDIRECT_URIS = [
  'http://127.0.0.1:7050/ocient/oauth2/v1/callback',
  'http://localhost:7050/ocient/oauth2/v1/callback',
  'http://127.0.0.1/callback',
  ...args['redirect-uri'],
];

function client(id, alg, extra = {}) {
  return {
    client_id: id,
    client_secret: `${id}-secret`,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [
      'authorization_code',
      'refresh_token',
      'client_credentials',
      'urn:ietf:params:oauth:grant-type:device_code',
    ],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
    id_token_signed_response_alg: alg,
    ...extra,
  };
}

const CLIENTS = [
  client('rs256-client', 'RS256', { email: 'machine@example.com', groups: ['machines'] }),
  client('rs384-client', 'RS384'),
  client('rs512-client', 'RS512'),
  client('es256-client', 'ES256'),
  client('ps256-client', 'PS256'),
  // A public native client (no secret, PKCE), as the seed registers the database's driver:
  // any loopback port is accepted for its redirect URIs.
  {
    ...client('native-client', 'RS256', { application_type: 'native', token_endpoint_auth_method: 'none' }),
    client_secret: undefined,
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  },
];

// ---------------------------------------------------------------- provider

const RESOURCE_SCOPE = 'openid email profile groups roles';
const API_RESOURCE = 'https://api.portcullis.test';

function buildConfiguration(jwks) {
  return {
    clients: CLIENTS,
    jwks,
    findAccount,
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'first_name', 'last_name'],
      groups: ['groups'],
      roles: ['roles'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'roles'],
    extraClientMetadata: {
      properties: ['email', 'groups'],
      validator(_ctx, key, value) {
        if (value === undefined) return;
        if (key === 'email' && typeof value !== 'string') {
          throw new errors.InvalidClientMetadata('email must be a string');
        }
        if (key === 'groups' && (!Array.isArray(value) || value.some((g) => typeof g !== 'string'))) {
          throw new errors.InvalidClientMetadata('groups must be an array of strings');
        }
      },
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'RS384', 'RS512', 'ES256', 'PS256'],
    },
    // Plain-text error pages (the default HTML page loads web fonts from the internet).
    renderError(ctx, out) {
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `${out.error}${out.error_description ? `: ${out.error_description}` : ''}\n`;
    },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
    },
    features: {
      devInteractions: { enabled: args['dev-interactions'] },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource(_ctx, _client, oneOf) {
          return oneOf ?? 'urn:portcullis';
        },
        useGrantedResource() {
          return true;
        },
        getResourceServerInfo(_ctx, resourceIndicator, requestingClient) {
          const jwt = { sign: { alg: requestingClient.idTokenSignedResponseAlg || 'RS256' } };
          if (resourceIndicator === 'urn:portcullis') {
            return {
              scope: RESOURCE_SCOPE,
              audience: requestingClient.clientId,
              accessTokenFormat: 'jwt',
              jwt,
            };
          }
          if (resourceIndicator === API_RESOURCE) {
            return {
              scope: RESOURCE_SCOPE,
              audience: API_RESOURCE,
              accessTokenFormat: 'jwt',
              jwt,
            };
          }
          throw new errors.InvalidTarget();
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      if (token.accountId) {
        const data = accountData(token.accountId);
        const out = { groups: data.groups ?? [], roles: data.roles ?? [] };
        if (data.email !== undefined) out.email = data.email;
        return out;
      }
      // client_credentials (no end-user): claims registered on the client, if any.
      const c = token.client ?? (token.clientId ? await ctx.oidc.provider.Client.find(token.clientId) : undefined);
      if (!c) return undefined;
      const out = {};
      if (c.email !== undefined) out.email = c.email;
      if (c.groups !== undefined) out.groups = c.groups;
      return Object.keys(out).length ? out : undefined;
    },
    ttl: {
      AccessToken: Number(args['token-ttl']),
      IdToken: Number(args['token-ttl']),
      ClientCredentials: 600,
      AuthorizationCode: 60,
      DeviceCode: Number(args['device-ttl']),
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
      RefreshToken: 86400,
    },
  };
}

// Interactions complete with redirects alone: login as the `login_hint`
// account (default alice), then grant everything that was asked for.
async function handleInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    const hint = typeof params.login_hint === 'string' && params.login_hint.length ? params.login_hint : 'alice';
    result = hint === 'denied'
      ? { error: 'access_denied', error_description: 'the user declined to sign in' }
      : { login: { accountId: hint } };
  } else if (prompt.name === 'consent') {
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    result = { consent: { grantId } };
  } else {
    result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function main() {
  const jwks = await loadOrCreateJwks(args.keys, args.rotate);

  let handler = (_req, res) => {
    res.statusCode = 503;
    res.end('starting');
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(args.port), '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  const issuer = `http://${args['issuer-host']}:${port}`;

  const provider = new Provider(issuer, buildConfiguration(jwks));
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`idp: server_error: ${err.stack || err}\n`);
  });
  const callback = provider.callback();

  handler = (req, res) => {
    const { pathname } = new URL(req.url, issuer);
    if (!args['dev-interactions'] && req.method === 'GET' && /^\/interaction\/[^/]+$/.test(pathname)) {
      handleInteraction(provider, req, res).catch((err) => {
        process.stderr.write(`idp: interaction failed: ${err.stack || err}\n`);
        if (!res.headersSent) {
          res.statusCode = 400;
          res.setHeader('content-type', 'text/plain');
        }
        res.end(`interaction failed: ${err.message}\n`);
      });
      return;
    }
    callback(req, res);
  };

  const shutdown = () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  process.stdout.write(`IDP_READY ${issuer}\n`);
}

main().catch((err) => die(err.stack || String(err)));
