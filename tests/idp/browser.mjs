#!/usr/bin/env node
// Drives headless Chromium (Debian's /usr/bin/chromium, through playwright-core) through a
// Portcullis browser sign-in with the provider's own login and consent pages:
//
//   node tests/idp/browser.mjs --base http://127.0.0.1:PORT --database DB --idp NAME
//        [--user alice] [--screenshot FILE]
//
// Prints one JSON line with what the pages showed; the Rust test asserts on it. Exits 1 with
// a message on stderr when a step fails.

import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const { chromium } = await import('playwright-core');

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    database: { type: 'string' },
    idp: { type: 'string' },
    user: { type: 'string', default: 'alice' },
    screenshot: { type: 'string' },
    executable: { type: 'string', default: '/usr/bin/chromium' },
  },
  strict: true,
});
for (const k of ['base', 'database', 'idp']) {
  if (!args[k]) {
    process.stderr.write(`browser: --${k} is required\n`);
    process.exit(2);
  }
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-chromium-'));
const browser = await chromium.launch({
  executablePath: args.executable,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const out = {};
let step = 'start';
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Fail fast on anything offline (the provider's dev pages reference web fonts).
  await context.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => route.abort());
  page.setDefaultTimeout(15000);

  step = 'sign-in page';
  const signin = await page.goto(`${args.base}/ui/signin?database=${encodeURIComponent(args.database)}`);
  out.signinStatus = signin.status();
  out.signinHeaders = {
    csp: signin.headers()['content-security-policy'] ?? null,
    nosniff: signin.headers()['x-content-type-options'] ?? null,
    cache: signin.headers()['cache-control'] ?? null,
    referrer: signin.headers()['referrer-policy'] ?? null,
  };
  step = 'choose the identity provider';
  await page.click(`button:has-text("Sign in with ${args.idp}")`);

  step = "the provider's login page";
  await page.waitForSelector('input[name=login]');
  out.providerLoginUrl = page.url().split('?')[0];
  await page.fill('input[name=login]', args.user);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');

  step = "the provider's consent page";
  await page.waitForURL((u) => u.href.startsWith(args.base) || /\/interaction\//.test(u.pathname));
  if (!page.url().startsWith(args.base)) {
    await page.click('button:has-text("Continue")');
  }

  step = 'the session page';
  await page.waitForURL(`${args.base}/ui/session`);
  for (const id of ['user', 'database', 'groups', 'roles', 'method', 'token-expiry', 'renewal']) {
    out[id] = (await page.textContent(`#${id}`))?.trim() ?? null;
  }
  const cookies = await context.cookies(args.base);
  const session = cookies.find((c) => c.name === 'portcullis_session');
  out.sessionCookie = session ? { httpOnly: session.httpOnly, sameSite: session.sameSite, secure: session.secure } : null;
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });

  step = 'the SQL console';
  await page.goto(`${args.base}/ui/console`);
  await page.fill('#statement', 'SELECT CURRENT_USER()');
  await page.click('#run');
  await page.waitForSelector('#result table');
  out.consoleResult = (await page.textContent('#result table tbody'))?.trim() ?? null;

  step = 'sign out';
  await page.goto(`${args.base}/ui/session`);
  await page.click('#signout');
  await page.waitForURL((u) => u.pathname === '/ui/signin');
  out.signedOutMessage = (await page.textContent('#message'))?.trim() ?? null;

  step = 'the session page after sign-out';
  await page.goto(`${args.base}/ui/session`);
  out.afterSignOutPath = new URL(page.url()).pathname;
} catch (err) {
  process.stderr.write(`browser: ${step}: ${err.message}\n`);
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
await browser.close();
fs.rmSync(profile, { recursive: true, force: true });
process.stdout.write(`${JSON.stringify(out)}\n`);
