#!/usr/bin/env node
// Approve (or deny) a device sign-in at the test provider's own device pages, as a person with
// a browser would: open the verification URI, enter the user code, confirm (or abort), then the
// provider's login and consent interactions (auto-approving unless --dev-interactions).
//
//   node tests/idp/device.mjs --uri VERIFICATION_URI --user-code CODE [--deny]
//
// Prints `DEVICE_APPROVED` or `DEVICE_DENIED` and exits 0 when the provider shows its success
// or abort page; any other outcome: message on stderr, exit status 1.

import { parseArgs } from 'node:util';
import { CookieJar } from './lib/jar.mjs';

const TIMEOUT_MS = 15000;
const MAX_STEPS = 30;

function fail(msg) {
  process.stderr.write(`device: ${msg}\n`);
  process.exit(1);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      uri: { type: 'string' },
      'user-code': { type: 'string' },
      deny: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (err) {
  fail(err.message);
}
if (!args.uri || !args['user-code']) fail('--uri and --user-code are required');

const decode = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}="([^"]*)"`, 'i'));
  return m ? decode(m[1]) : undefined;
};

// The first form of a page with its hidden fields.
function firstForm(html) {
  const m = html.match(/<form\b[^>]*>/i);
  if (!m) return undefined;
  const fields = {};
  for (const input of html.matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(input[0], 'name');
    if (name) fields[name] = attr(input[0], 'value') ?? '';
  }
  return { id: attr(m[0], 'id'), action: attr(m[0], 'action'), fields };
}

const jar = new CookieJar();
async function request(url, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
  jar.store(url, res.headers.getSetCookie());
  return res;
}

try {
  let url = new URL(args.uri);
  const origin = url.origin;
  let init = {};
  let aborted = false;
  for (let step = 0; step < MAX_STEPS; step += 1) {
    if (url.origin !== origin) throw new Error(`left the provider for ${url.origin}`);
    const res = await request(url, init);
    init = {};
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer().catch(() => {});
      url = new URL(location, url);
      continue;
    }
    const html = await res.text();
    if (aborted) {
      // The provider answers an abort with its code-input page and an error message.
      process.stdout.write('DEVICE_DENIED\n');
      process.exit(0);
    }
    const form = firstForm(html);
    if (!form) {
      const text = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
      if (/success/i.test(text)) {
        process.stdout.write('DEVICE_APPROVED\n');
        process.exit(0);
      }
      throw new Error(`stopped at ${url.pathname}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    }
    const fields = { ...form.fields };
    if ('user_code' in fields || /user_code/.test(html)) fields.user_code = fields.user_code || args['user-code'];
    if (args.deny && form.id === 'op.deviceConfirmForm') {
      fields.abort = 'yes';
      aborted = true;
    }
    url = new URL(form.action ?? url.pathname, url);
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    };
  }
  throw new Error(`no outcome after ${MAX_STEPS} steps`);
} catch (err) {
  const cause = err.cause ? ` (${err.cause.code || err.cause.message || err.cause})` : '';
  fail(`${err.message || String(err)}${cause}`);
}
