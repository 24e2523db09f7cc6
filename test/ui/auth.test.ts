// The sender UI with OAuth on (issue 13's verifier) against a real OIDC issuer on loopback, in headless Chromium:
// pages ask for a token, a refused token is shown as such, and a signed-in user's token is forwarded to the API,
// by the UI server (creation, /info) and by tus-js-client (HEAD, PATCH), through to a delivered upload.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { AUDIENCE, REQUIRED_SCOPE } from '../helpers/auth.js';
import { artifactsDir, axeViolations, launchChromium, screenshot } from '../helpers/browser.js';
import { startIssuer, type TestIssuer } from '../helpers/oidc-issuer.js';
import { csrfPair, postForm, startUiServer, type RunningUiServer } from '../helpers/ui-server.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('sender UI with OAUTH_AUTH_ENABLED=true', () => {
  let issuer: TestIssuer;
  let server: RunningUiServer;
  let browser: Browser;
  let files: string;
  let shots: string;
  const sent = new Set<string>();
  const token = async (claims: Record<string, unknown> = {}) => {
    const t = await issuer.token(claims);
    sent.add(t);
    return t;
  };

  before(async () => {
    issuer = await startIssuer({ audience: AUDIENCE, scope: `${REQUIRED_SCOPE} dex:info` });
    server = await startUiServer({
      env: {
        OAUTH_AUTH_ENABLED: 'true',
        OAUTH_ISSUER_URL: issuer.url,
        OAUTH_REQUIRED_SCOPES: REQUIRED_SCOPE,
        OAUTH_AUDIENCE: AUDIENCE,
        LOGGER_DEBUG_ON: 'true',
      },
    });
    browser = await launchChromium();
    files = await mkdtemp(path.join(tmpdir(), 'dex-ui-auth-'));
    shots = await artifactsDir('ui-auth');
    console.log(`# sender UI (OAuth) screenshots: ${shots}`);
  });
  after(async () => {
    await browser?.close();
    await server?.cleanup();
    await issuer?.close();
    if (files) await rm(files, { recursive: true, force: true });
  });

  it('without a token every page sends the user to sign in; the sign-in page passes axe', async () => {
    for (const p of ['/', '/manifest?stream=dextesting/testevent1', '/status/00000000-0000-4000-8000-000000000000']) {
      const res = await fetch(`${server.uiUrl}${p}`, { redirect: 'manual' });
      assert.equal(res.status, 303, p);
      assert.equal(res.headers.get('location'), `/login?next=${encodeURIComponent(p)}`);
    }
    // Creating without a token is refused before anything reaches the API.
    const { cookie, token: csrf } = await csrfPair(server.uiUrl, '/login');
    const res = await postForm(server.uiUrl, '/upload', { _csrf: csrf, data_stream_id: 'dextesting', data_stream_route: 'testevent1' }, { Cookie: cookie });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', /^\/login\?next=/);
    const page = await browser.newPage();
    await page.goto(`${server.uiUrl}/`);
    assert.match(page.url(), /\/login\?next=%2F$/);
    await screenshot(page, shots, '01-login');
    assert.deepEqual(await axeViolations(page), []);
    await page.close();
  });

  it('a refused token is reported on the sign-in page and sets nothing; a sign-in without the CSRF token is refused', async () => {
    const expired = await token({ exp: Math.floor(Date.now() / 1000) - 3600 });
    const page = await browser.newPage();
    await page.goto(`${server.uiUrl}/login`);
    await page.getByLabel('Access token').fill(expired);
    const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'), page.getByRole('button', { name: 'Sign in' }).click()]);
    assert.equal(res.status(), 401);
    assert.match((await page.locator('.error-summary').textContent()) ?? '', /The token was refused: .*expired/);
    assert.deepEqual((await page.context().cookies()).filter((c) => c.name === 'dex_token'), []);
    await screenshot(page, shots, '02-login-refused');
    assert.deepEqual(await axeViolations(page), []);
    await page.close();
    const forged = await postForm(server.uiUrl, '/login', { token: await token(), next: '/' });
    assert.equal(forged.status, 403);
    assert.equal(forged.headers.getSetCookie().some((c) => c.startsWith('dex_token=')), false);
  });

  it('a token from an auth proxy (Authorization on the page request) is accepted without signing in', async () => {
    const res = await fetch(`${server.uiUrl}/`, { headers: { Authorization: `Bearer ${await token()}` } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Welcome to DEX Upload/);
  });

  it('signed in: the form creates the upload with the token, tus-js-client sends it on HEAD and PATCH, and the upload is delivered', async () => {
    const userToken = await token({ sub: 'ui-user' });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.uiUrl}/manifest?stream=dextesting/testevent1`);
    assert.match(page.url(), /\/login\?next=/);
    await page.getByLabel('Access token').fill(userToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/manifest\?stream=dextesting/);
    const cookie = (await context.cookies()).find((c) => c.name === 'dex_token');
    assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
    for (const [label, value] of [['Sender Id', 'auth-sender'], ['Data Producer Id', 'auth-producer'], ['Jurisdiction', 'auth-j'], ['Received Filename', 'auth.bin']]) {
      await page.getByLabel(label!).fill(value!);
    }
    await page.getByRole('button', { name: 'Next' }).click();
    await page.waitForURL(/\/status\/[0-9a-f-]{36}$/);
    const id = page.url().split('/').pop()!;
    const tusRequests: Array<{ method: string; authorization?: string }> = [];
    page.on('request', (r) => {
      if (r.url().includes(`/files/${id}`) && r.method() !== 'OPTIONS') tusRequests.push({ method: r.method(), authorization: r.headers()['authorization'] });
    });
    const bytes = randomBytes(2 * 1024 * 1024);
    const file = path.join(files, 'auth.bin');
    await writeFile(file, bytes);
    await page.locator('#files').setInputFiles(file);
    await page.locator('#upload-status-value', { hasText: 'Complete' }).waitFor({ timeout: 60_000 });
    await page.locator('.file-delivery-container', { hasText: 'SUCCESS' }).waitFor({ timeout: 60_000 });
    await screenshot(page, shots, '03-status-complete');
    assert.ok(tusRequests.some((r) => r.method === 'HEAD') && tusRequests.some((r) => r.method === 'PATCH'), JSON.stringify(tusRequests));
    for (const r of tusRequests) assert.equal(r.authorization, `Bearer ${userToken}`, `${r.method} carries the user's token`);
    assert.equal(sha256(await readFile(path.join(server.storeDir, id))), sha256(bytes));
    // The API itself still refuses the same upload's info without a token: the UI got it with the user's.
    assert.equal((await fetch(`${server.url}/info/${id}`)).status, 401);
    await context.close();
  });

  it('no token ever reaches the log, with every request logged at debug', () => {
    const logs = server.logs();
    assert.ok(sent.size >= 3, `tokens sent: ${sent.size}`);
    for (const t of sent) {
      assert.equal(logs.includes(t), false, 'a token is in the log');
      assert.equal(logs.includes(t.split('.')[2]!), false, 'a token signature is in the log');
    }
  });
});
