#!/usr/bin/env node
// Full browser-style sign-ins against a Portcullis server and the test provider, one after
// another, for the benchmark: POST /v1/sso_authentication (do_redirect=false), the provider's
// redirects (auto-approving interactions) with a cookie jar, then GET /v1/callback.
//
//   node tests/idp/signin-bench.mjs --server http://127.0.0.1:9090 --database system --count 200
//
// Prints one JSON line: {"count", "mean_ms", "p50_ms", "p99_ms"}; exit 1 on any failure.

import { parseArgs } from 'node:util';
import { CookieJar } from './lib/jar.mjs';

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    database: { type: 'string', default: 'system' },
    count: { type: 'string', default: '100' },
  },
  strict: true,
});
if (!args.server) {
  process.stderr.write('signin-bench: --server URL is required\n');
  process.exit(1);
}
const server = args.server.replace(/\/+$/, '');

async function signIn() {
  const start = await fetch(`${server}/v1/sso_authentication`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ database: args.database, do_redirect: false }),
  });
  const { redirect } = await start.json();
  if (!redirect) throw new Error(`no redirect: HTTP ${start.status}`);
  const jar = new CookieJar();
  // The flow cookie binds the sign-in to this "browser": the callback needs it.
  jar.store(new URL(`${server}/v1/sso_authentication`), start.headers.getSetCookie());
  let url = new URL(redirect);
  for (let hop = 0; hop < 20; hop += 1) {
    if (url.href.startsWith(`${server}/v1/callback`)) {
      const cookie = jar.header(url);
      const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
      await res.arrayBuffer();
      if (res.status !== 303 || !res.headers.getSetCookie().some((c) => c.startsWith('portcullis_session='))) {
        throw new Error(`callback answered ${res.status}`);
      }
      return;
    }
    const headers = {};
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { redirect: 'manual', headers });
    jar.store(url, res.headers.getSetCookie());
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (!location) throw new Error(`no redirect from ${url.pathname}: HTTP ${res.status}`);
    url = new URL(location, url);
  }
  throw new Error('too many redirects');
}

try {
  const times = [];
  for (let i = 0; i < Number(args.count); i += 1) {
    const t0 = performance.now();
    await signIn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const r = (x) => Math.round(x * 100) / 100;
  process.stdout.write(`${JSON.stringify({ count: times.length, mean_ms: r(mean), p50_ms: r(at(0.5)), p99_ms: r(at(0.99)) })}\n`);
} catch (err) {
  process.stderr.write(`signin-bench: ${err.message}\n`);
  process.exit(1);
}
