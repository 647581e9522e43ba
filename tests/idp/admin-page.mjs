#!/usr/bin/env node
// Drives headless Chromium (Debian's, through playwright-core) to the administration page:
// signs in with a password on the sign-in page, opens /ui/admin, reads what it shows (the
// integrations' summaries, the live sessions, the refused sign-ins, the page's width), then
// presses "End session" on the row of session --end and reads the page it comes back to.
//
//   node tests/idp/admin-page.mjs --base http://127.0.0.1:PORT --database DB --user U
//        --password P --end SESSION_ID [--screenshot FILE]
//
// Prints one JSON line; the Rust test asserts on it. Exits 1 with a message when a step fails.

import { parseArgs } from 'node:util';

const { chromium } = await import('playwright-core');
const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    database: { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    end: { type: 'string' },
    screenshot: { type: 'string' },
    executable: { type: 'string', default: '/usr/bin/chromium' },
  },
  strict: true,
});

const browser = await chromium.launch({
  executablePath: args.executable,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const out = {};
let step = 'start';
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await context.route(/^https?:\/\/(?!127\.0\.0\.1|localhost)/, (route) => route.abort());
  page.setDefaultTimeout(15000);

  step = 'password sign-in';
  await page.goto(`${args.base}/ui/signin?database=${encodeURIComponent(args.database)}`);
  await page.fill('#username', args.user);
  await page.fill('#password', args.password);
  await page.click('#password-submit');
  await page.waitForURL(`${args.base}/ui/session`);

  step = 'the administration page';
  const admin = await page.goto(`${args.base}/ui/admin`);
  out.status = admin.status();
  out.integrations = await page.$$eval('section.integration', (cards) =>
    cards.map((c) => ({ name: c.dataset.name, text: c.innerText })));
  out.sessions = await page.$$eval('#sessions tbody tr', (rows) => rows.map((r) => r.dataset.session));
  out.refused = await page.$$eval('#refused tbody tr', (rows) => rows.map((r) => r.innerText));
  out.width = await page.evaluate(() => document.documentElement.scrollWidth);
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });

  step = 'End session';
  await page.click(`tr[data-session="${args.end}"] button.end-session`);
  await page.waitForURL((u) => u.pathname === '/ui/admin' && u.searchParams.has('ended'));
  out.notice = (await page.textContent('#notice'))?.trim() ?? null;
  out.sessionsAfter = await page.$$eval('#sessions tbody tr', (rows) => rows.map((r) => r.dataset.session));
  out.endedAfter = await page.$$eval('#ended tbody tr', (rows) => rows.map((r) => r.innerText));
} catch (err) {
  process.stderr.write(`admin-page: ${step}: ${err.message}\n`);
  await browser.close();
  process.exit(1);
}
await browser.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
