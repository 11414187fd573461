// Real-browser test of Rampart's server-rendered pages.
//
// The pages are meant to work with no JavaScript at all (the CSP says
// script-src 'none'), so everything here is done the way a person would:
// filling forms and clicking buttons in Chromium. No fetch calls to the API.
// JavaScript stays enabled in the browser on purpose: a template that slipped
// in an inline script, an inline style or an off-site resource would then
// show up as a CSP violation, which the last test asserts never happened.
//
// Run with `bash e2e/browser/run.sh` (installs, builds, runs), or directly
// with `node --test` in this directory given E2E_RAMPART_BIN (a built
// rampart binary; built here from the repo when unset).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const artifacts = join(here, 'artifacts');

const EMAIL = 'ada.browser@example.test';
const PASSWORD = 'correct horse battery staple under a violet moon';
const STEP_TIMEOUT = 30_000;

// ---------------------------------------------------------------------------
// TOTP (RFC 4226 HOTP + RFC 6238), as an authenticator app would compute it.

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = s.toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = mac.readUInt32BE(off) & 0x7fffffff;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

function totp(base32Key, nowMs = Date.now()) {
  return hotp(base32Decode(base32Key), Math.floor(nowMs / 1000 / 30));
}

// RFC 6238 appendix B, SHA-1 rows (8 digits there; the key is ASCII
// "12345678901234567890"). Checked first so a broken helper fails loudly
// here rather than as a confusing "invalid code" from the server.
test('TOTP helper matches the RFC 6238 test vectors', () => {
  const key = Buffer.from('12345678901234567890', 'ascii');
  const vectors = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1234567890, '89005924'],
    [20000000000, '65353130'],
  ];
  for (const [t, want] of vectors) {
    assert.equal(hotp(key, Math.floor(t / 30), 8), want, `T=${t}`);
  }
  assert.equal(base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ').toString('ascii'), '12345678901234567890');
});

// ---------------------------------------------------------------------------
// Mail: the dev outbox holds each message as an .eml file.

function decodeQuotedPrintable(s) {
  const joined = s.replace(/=\r?\n/g, ''); // soft line breaks
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const m = joined[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(joined.slice(i + 1, i + 3));
    if (m) {
      bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function decodeMailBody(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  assert.ok(split > 0, 'mail has no header/body separator');
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' '); // unfold
  const body = raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const cte = (/^content-transfer-encoding:\s*(\S+)/im.exec(head)?.[1] ?? '7bit').toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(body);
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

test('quoted-printable decoding joins soft breaks and decodes =3D', () => {
  const qp = 'open https://localhost:1/verify-email?token=3Dab=\r\ncd-ef=\nGH done =C3=A9';
  assert.equal(decodeQuotedPrintable(qp), 'open https://localhost:1/verify-email?token=abcd-efGH done é');
});

async function waitForMail(outbox, kind, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let names = [];
    try {
      names = readdirSync(outbox).filter((n) => n.endsWith(`-${kind}.eml`)).sort();
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    if (names.length > 0) return readFileSync(join(outbox, names[names.length - 1]), 'latin1');
    if (Date.now() > deadline) throw new Error(`no ${kind} mail in ${outbox} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------
// Server

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(adminURL, child, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`rampart exited with ${child.exitCode} before it was ready`);
    try {
      const res = await fetch(`${adminURL}/readyz`);
      if (res.ok) return;
      last = `status ${res.status}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`rampart not ready after ${timeoutMs} ms (${last})`);
}

async function startServer() {
  const work = process.env.E2E_WORK_DIR || mkdtempSync(join(tmpdir(), 'rampart-e2e-'));
  mkdirSync(work, { recursive: true });
  let bin = process.env.E2E_RAMPART_BIN;
  if (!bin) {
    bin = join(work, 'rampart');
    execFileSync('go', ['build', '-o', bin, './cmd/rampart'], { cwd: repoRoot, stdio: 'inherit' });
  }
  const dataDir = join(work, 'data');
  const [port, adminPort] = [await freePort(), await freePort()];
  const url = `https://localhost:${port}`;
  const logPath = join(work, 'server.log');
  const log = openSync(logPath, 'a');
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('RAMPART_')) delete env[k]; // no stray config
  // Argon2id at the configured minimum so sign-ins take milliseconds.
  env.RAMPART_PASSWORD_HASH_MEMORY_KIB = '8192';
  env.RAMPART_PASSWORD_HASH_TIME = '1';
  const child = spawn(bin, [
    'serve', '--dev',
    '--data-dir', dataDir,
    '--listen', `127.0.0.1:${port}`,
    '--admin-listen', `127.0.0.1:${adminPort}`,
    '--public-url', url,
  ], { env, stdio: ['ignore', log, log] });
  writeFileSync(join(work, 'server.pid'), String(child.pid)); // run.sh's trap kills it if we cannot
  await waitReady(`http://127.0.0.1:${adminPort}`, child);
  return { child, url, dataDir, outbox: join(dataDir, 'outbox'), logPath };
}

// ---------------------------------------------------------------------------
// Browser and shared state. The tests below are one user's story and run in
// order (node runs a file's top-level tests sequentially).

let server;
let browser;
let context;
let page;
const consoleErrors = [];
const cspViolations = [];
let recoveryCodes = [];

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  server = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.E2E_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', // small /dev/shm in containers
      // The server listens on IPv4 only; keep "localhost" off ::1.
      '--host-resolver-rules=MAP localhost 127.0.0.1',
    ],
  });
  context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL: server.url, viewport: { width: 1100, height: 800 } });
  // Report CSP violations from inside the page. Init scripts and bindings are
  // injected by the automation protocol, which the page's CSP does not govern.
  await context.exposeBinding('__e2eCSP', (_src, v) => cspViolations.push(v));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      globalThis.__e2eCSP({ directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, page: location.href });
    });
  });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push({ page: page.url(), text: m.text(), resource: m.location().url });
  });
  page.on('pageerror', (e) => consoleErrors.push({ page: page.url(), text: `uncaught: ${e.message}` }));
});

after(async () => {
  await browser?.close();
  if (server?.child && server.child.exitCode === null) {
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
});

// Clicks a button that submits a form and returns the response to that
// form's request (before any redirect), once the page the browser ends up on
// has loaded (waiting for a new load event, not the current page's state,
// which is already "loaded" while a 303 is still being followed).
async function submit(button, method = 'POST') {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && r.request().isNavigationRequest()),
    page.waitForEvent('load'),
    button.click(),
  ]);
  return resp;
}

// Waits for the console error that an intended failure causes and removes
// exactly that entry; anything else logged stays for the final check.
async function expectConsoleError(from, match) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const i = consoleErrors.findIndex((e, j) => j >= from && match(e));
    if (i >= 0) {
      consoleErrors.splice(i, 1);
      return;
    }
    assert.ok(Date.now() < deadline, `expected console error not logged; have ${JSON.stringify(consoleErrors.slice(from))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function path() {
  return new URL(page.url()).pathname;
}

const h1 = () => page.locator('main h1');

// ---------------------------------------------------------------------------

test('sign up', { timeout: STEP_TIMEOUT }, async () => {
  await page.goto('/signup');
  assert.equal(await h1().textContent(), 'Create an account');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  const resp = await submit(page.getByRole('button', { name: 'Create account' }));
  assert.equal(resp.status(), 200);
  assert.equal(await h1().textContent(), 'Check your email');
});

test('confirm the email from the outbox link', { timeout: STEP_TIMEOUT }, async () => {
  const body = decodeMailBody(await waitForMail(server.outbox, 'verify_email'));
  const m = /(https:\/\/\S+\/verify-email\?token=[A-Za-z0-9._~%-]+)/.exec(body);
  assert.ok(m, `no verification link in mail body:\n${body}`);
  const link = new URL(m[1]);
  assert.equal(link.origin, server.url, 'link uses the public URL');

  await page.goto(link.href);
  assert.equal(await h1().textContent(), 'Confirm your email');
  // Opening the link alone must not spend the token (mail scanners prefetch).
  const resp = await submit(page.getByRole('button', { name: 'Confirm email' }));
  assert.equal(resp.status(), 200);
  assert.equal(await h1().textContent(), 'Email confirmed');
});

test('sign in: wrong password is refused, right one lands on security settings', { timeout: STEP_TIMEOUT }, async () => {
  await page.goto('/signin');
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('not the password at all');
  const before = consoleErrors.length;
  let resp = await submit(page.getByRole('button', { name: 'Sign in' }));
  assert.equal(resp.status(), 401);
  // Chromium logs every 4xx document as a console error; this one is the
  // point of the step, so take it off the list (exactly it, nothing else).
  await expectConsoleError(before, (e) => e.resource === `${server.url}/signin` && /status of 401\b/.test(e.text));
  await page.getByRole('alert').waitFor();
  assert.ok((await page.getByRole('alert').textContent()).trim().length > 0, 'error message is shown');
  assert.equal(await page.getByLabel('Email').inputValue(), EMAIL, 'email is kept in the form');
  assert.equal(await page.getByLabel('Password').inputValue(), '', 'password is not echoed back');

  await page.getByLabel('Password').fill(PASSWORD);
  resp = await submit(page.getByRole('button', { name: 'Sign in' }));
  assert.equal(resp.status(), 303);
  assert.equal(path(), '/settings/security');
  const main = page.locator('main');
  assert.match(await main.textContent(), new RegExp(`Signed in as\\s+${EMAIL.replace(/\./g, '\\.')}`));
  assert.match(await main.textContent(), /Email confirmed\./);
});

test('session cookie is __Host-, Secure, HttpOnly, SameSite=Lax', { timeout: STEP_TIMEOUT }, async () => {
  const cookies = await context.cookies();
  const c = cookies.find((x) => x.name === '__Host-rampart_session');
  assert.ok(c, `no session cookie among ${cookies.map((x) => x.name).join(', ')}`);
  assert.equal(c.secure, true);
  assert.equal(c.httpOnly, true);
  assert.equal(c.sameSite, 'Lax');
  assert.equal(c.path, '/');
  assert.equal(c.domain, 'localhost', 'host-only cookie');
});

test('turn on two-factor authentication with a TOTP code', { timeout: STEP_TIMEOUT }, async () => {
  await submit(page.getByRole('button', { name: 'Set up an authenticator app' }));
  assert.equal(await h1().textContent(), 'Set up two-factor authentication');

  const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
  const src = await qr.getAttribute('src');
  assert.match(src, /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
  // The image actually decoded (CSP allows data: images).
  assert.ok(await qr.evaluate((img) => img.complete && img.naturalWidth > 0), 'QR image rendered');

  const key = (await page.locator('code.secret').textContent()).trim();
  assert.match(key, /^[A-Z2-7 ]{16,}=*$/, 'key is base32');
  await page.screenshot({ path: join(artifacts, 'totp.png'), fullPage: true });
  await page.getByLabel('Code shown by the app').fill(totp(key));
  const resp = await submit(page.getByRole('button', { name: 'Turn on' }));
  assert.equal(resp.status(), 200);
  assert.equal(await h1().textContent(), 'Save your recovery codes');

  recoveryCodes = (await page.locator('ul.codes li code').allTextContents()).map((s) => s.trim());
  assert.equal(recoveryCodes.length, 10);
  assert.equal(new Set(recoveryCodes).size, 10, 'codes are distinct');
  for (const c of recoveryCodes) assert.ok(c.length >= 16, `code ${c} looks too short`);
  await page.screenshot({ path: join(artifacts, 'recovery.png'), fullPage: true });
});

test('sign out, sign in again with a recovery code as second factor', { timeout: STEP_TIMEOUT }, async () => {
  await submit(page.locator('header').getByRole('button', { name: 'Sign out' }));
  assert.equal(path(), '/signin');
  assert.equal(await page.getByRole('status').textContent(), 'You are signed out.');

  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await submit(page.getByRole('button', { name: 'Sign in' }));
  assert.equal(path(), '/signin/mfa');
  await page.getByLabel('Code from your authenticator app, or a recovery code').fill(recoveryCodes[0]);
  const resp = await submit(page.getByRole('button', { name: 'Verify' }));
  assert.equal(resp.status(), 303);
  assert.equal(path(), '/settings/security');
  const mfa = page.locator('section.card', { has: page.getByRole('heading', { name: 'Two-factor authentication' }) });
  assert.match(await mfa.textContent(), /\bOn\b/);
  assert.ok(await mfa.getByRole('button', { name: 'Turn off' }).isVisible());
});

test('sessions table marks this session', { timeout: STEP_TIMEOUT }, async () => {
  const rows = page.locator('section.card', { has: page.getByRole('heading', { name: 'Sessions' }) }).locator('tbody tr');
  assert.ok((await rows.count()) >= 1, 'at least one session listed');
  const current = rows.filter({ hasText: 'this session' });
  assert.equal(await current.count(), 1, 'exactly one row is this session');
  assert.match(await current.locator('td.ua').textContent(), /Chrome/);
  await page.screenshot({ path: join(artifacts, 'security.png'), fullPage: true });
});

test('trust center shows AUTH-1 passing', { timeout: STEP_TIMEOUT }, async () => {
  await page.getByRole('link', { name: 'Trust center' }).click();
  await page.waitForURL('**/trust');
  assert.equal(await h1().textContent(), 'Trust center');
  const row = page.locator('tr#AUTH-1');
  assert.equal(await row.count(), 1);
  assert.equal((await row.locator('.badge').textContent()).trim(), 'passing');
  assert.match(await page.locator('.summary .badge.passing').textContent(), /^[1-9]\d* passing$/);
  await page.screenshot({ path: join(artifacts, 'trust.png'), fullPage: true });
});

test('no CSP violations and no console errors in the whole run', () => {
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(consoleErrors, []);
});
