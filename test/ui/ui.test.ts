// The sender UI in headless Chromium (playwright-core + Debian's chromium) against the real server: the page flow,
// a 20 MB upload with progress, status and delivery, form errors, pause/resume and resume after a reload, CSRF,
// axe-core on every page and a phone-sized screen. Screenshots of every page go to test-artifacts/ui/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page, Request, Route } from 'playwright-core';
import { artifactsDir, axeViolations, launchChromium, screenshot } from '../helpers/browser.js';
import { csrfPair, postForm, startUiServer, type RunningUiServer } from '../helpers/ui-server.js';

const MB = 1_000_000;
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const SENDER = { sender_id: 'ui-sender', data_producer_id: 'ui-producer', jurisdiction: 'ui-jurisdiction' };

let server: RunningUiServer;
let browser: Browser;
let context: BrowserContext;
let shots: string;
let files: string;
let bigFile: string;
let bigBytes: Buffer;

/** Upload ids in the store (data files, without .info / .meta). */
const storedUploads = async () => (await readdir(server.storeDir)).filter((n) => /^[0-9a-f-]{36}$/.test(n));

async function checkAxe(page: Page, name: string): Promise<void> {
  const violations = await axeViolations(page);
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${name}: serious or critical axe violations:\n${JSON.stringify(bad, null, 2)}`);
  assert.deepEqual(violations, [], `${name}: axe violations:\n${JSON.stringify(violations, null, 2)}`);
}

/** Landing page → the dextesting/testevent1 manifest form. */
async function openManifest(page: Page): Promise<void> {
  await page.goto(`${server.uiUrl}/`);
  await page.getByLabel('Data Stream and Route').selectOption('dextesting/testevent1');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.waitForURL(/\/manifest\?/);
}

/** Fills the dextesting form and submits it; resolves on the status page with the upload id. */
async function createUpload(page: Page, receivedFilename: string): Promise<string> {
  await openManifest(page);
  await page.getByLabel('Sender Id').fill(SENDER.sender_id);
  await page.getByLabel('Data Producer Id').fill(SENDER.data_producer_id);
  await page.getByLabel('Jurisdiction').fill(SENDER.jurisdiction);
  await page.getByLabel('Received Filename').fill(receivedFilename);
  await page.getByRole('button', { name: 'Next' }).click();
  await page.waitForURL(/\/status\/[0-9a-f-]{36}$/);
  return page.url().split('/').pop()!;
}

async function waitForCompleteAndDelivered(page: Page): Promise<void> {
  await page.locator('#upload-status-value', { hasText: 'Complete' }).waitFor({ timeout: 60_000 });
  await page.locator('.file-delivery-container', { hasText: 'SUCCESS' }).waitFor({ timeout: 60_000 });
}

before(async () => {
  server = await startUiServer();
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  shots = await artifactsDir('ui');
  files = await mkdtemp(path.join(tmpdir(), 'dex-ui-files-'));
  bigFile = path.join(files, 'twenty-mb.bin');
  bigBytes = randomBytes(20 * MB);
  await writeFile(bigFile, bigBytes);
  console.log(`# sender UI screenshots: ${shots}`);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.cleanup();
  if (files) await rm(files, { recursive: true, force: true });
});

describe('sender UI: pages', () => {
  it('landing page: skip link, "Upload" home link, headings, the configured streams to choose from; no axe violations', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${server.uiUrl}/`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.title(), 'DEX Upload');
    assert.equal(await page.getByRole('link', { name: 'Upload', exact: true }).isVisible(), true);
    const skip = page.getByRole('link', { name: 'Skip to main content' });
    assert.equal(await skip.evaluate((el) => el.getBoundingClientRect().bottom <= 0), true, 'skip link hidden until focused');
    await page.keyboard.press('Tab');
    assert.equal(await skip.evaluate((el) => el === document.activeElement && el.getBoundingClientRect().top >= 0), true, 'first Tab shows the skip link');
    assert.equal(await page.locator('h1').textContent(), 'Welcome to DEX Upload');
    const options = await page.locator('#stream option').allTextContents();
    assert.ok(options.includes('dextesting / testevent1'), options.join(', '));
    assert.ok(options.includes('ehdi / csv'), options.join(', '));
    assert.equal(options.length, 9, 'one choice per v2 config shipped in upload-configs/');
    await screenshot(page, shots, '01-landing');
    await checkAxe(page, 'landing');
    await page.close();
  });

  it('manifest page: one labelled control per config field, required ones marked, hidden stream and CSRF token; no axe violations', async () => {
    const page = await context.newPage();
    await openManifest(page);
    assert.equal(await page.title(), 'Manifest');
    assert.equal(await page.locator('h1').textContent(), 'Please fill in the sender manifest form for your file');
    for (const label of ['Sender Id', 'Data Producer Id', 'Jurisdiction', 'Received Filename']) {
      const input = page.getByLabel(label);
      assert.equal(await input.getAttribute('required'), '', `${label} is required`);
      assert.ok((await input.getAttribute('aria-describedby'))?.endsWith('-hint'), `${label} has its description as help text`);
    }
    assert.equal(await page.locator('input[type=hidden][name=data_stream_id]').getAttribute('value'), 'dextesting');
    assert.equal(await page.locator('input[type=hidden][name=data_stream_route]').getAttribute('value'), 'testevent1');
    assert.ok(((await page.locator('input[type=hidden][name=_csrf]').getAttribute('value')) ?? '').length > 20);
    assert.deepEqual(await page.getByRole('button').allTextContents(), ['Next']);
    await screenshot(page, shots, '02-manifest');
    await checkAxe(page, 'manifest');
    await page.close();
  });

  it('a config with allowed_values gets a select with the first value chosen', async () => {
    const page = await context.newPage();
    const cfg = JSON.parse(await readFile(path.join(process.cwd(), 'upload-configs/v2/ehdi_csv.json'), 'utf8')) as {
      metadata_config: { fields: Array<{ field_name: string; allowed_values?: string[] | null }> };
    };
    const withValues = cfg.metadata_config.fields.find((f) => f.allowed_values && f.allowed_values.length > 0 && !['data_stream_id', 'data_stream_route'].includes(f.field_name));
    assert.ok(withValues, 'ehdi_csv has a field with allowed_values');
    await page.goto(`${server.uiUrl}/manifest?data_stream_id=ehdi&data_stream_route=csv`);
    const select = page.locator(`select#${withValues.field_name}`);
    assert.deepEqual(await select.locator('option').allTextContents(), withValues.allowed_values);
    assert.equal(await select.inputValue(), withValues.allowed_values![0]);
    await checkAxe(page, 'manifest ehdi/csv');
    await page.close();
  });

  it('an unknown stream gets the 404 page with the loader\'s text', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${server.uiUrl}/manifest?data_stream_id=invalid&data_stream_route=invalid`);
    assert.equal(res?.status(), 404);
    const body = (await page.locator('main').textContent()) ?? '';
    for (const text of ['open invalid_invalid.json: ', 'validation failure', 'manifest validation config file not found']) assert.ok(body.includes(text), text);
    await screenshot(page, shots, '03-unknown-stream');
    await checkAxe(page, 'unknown stream');
    await page.close();
  });

  it('a missing required field: the error beside the field and in the summary, the other values kept, nothing created', async () => {
    const page = await context.newPage();
    const uploadsBefore = (await storedUploads()).length;
    await openManifest(page);
    await page.getByLabel('Data Producer Id').fill('kept-producer');
    await page.getByLabel('Jurisdiction').fill('kept <jurisdiction> & "quotes"');
    await page.getByLabel('Received Filename').fill('kept.csv');
    const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/upload')), page.getByRole('button', { name: 'Next' }).click()]);
    assert.equal(response.status(), 400);
    await page.waitForLoadState();
    assert.equal(await page.title(), 'Error: Manifest');
    const sender = page.getByLabel('Sender Id');
    assert.equal(await sender.getAttribute('aria-invalid'), 'true');
    assert.match((await page.locator('#sender_id-error').textContent()) ?? '', /Enter Sender Id/);
    assert.ok(((await sender.getAttribute('aria-describedby')) ?? '').includes('sender_id-error'));
    assert.match((await page.locator('.error-summary').textContent()) ?? '', /Enter Sender Id/);
    assert.equal(await page.locator('.error-summary a').getAttribute('href'), '#sender_id');
    assert.equal(await page.getByLabel('Data Producer Id').inputValue(), 'kept-producer');
    assert.equal(await page.getByLabel('Jurisdiction').inputValue(), 'kept <jurisdiction> & "quotes"');
    assert.equal(await page.getByLabel('Received Filename').inputValue(), 'kept.csv');
    assert.equal((await storedUploads()).length, uploadsBefore, 'no upload created');
    await screenshot(page, shots, '04-manifest-errors');
    await checkAxe(page, 'manifest with errors');
    // Corrected, the same form goes on to the status page.
    await sender.fill('now-given');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.waitForURL(/\/status\//);
    await page.close();
  });

  it('a forged POST without the CSRF token is refused (403) and creates nothing', async () => {
    const uploadsBefore = (await storedUploads()).length;
    const form = { data_stream_id: 'dextesting', data_stream_route: 'testevent1', ...SENDER, received_filename: 'forged.txt' };
    const post = (fields: Record<string, string>, headers: Record<string, string> = {}) => postForm(server.uiUrl, '/upload', fields, headers);
    // No cookie, no token: what a page on another site can send.
    const bare = await post(form);
    assert.equal(bare.status, 403);
    assert.match(await bare.text(), /Forbidden - CSRF token/);
    // The victim's cookie (a browser would add it) but no token in the form.
    const { cookie, token } = await csrfPair(server.uiUrl);
    assert.ok(cookie.includes('dex_csrf='), cookie);
    assert.equal((await post(form, { Cookie: cookie })).status, 403);
    // A made-up token with the cookie, and the right token without the cookie.
    assert.equal((await post({ ...form, _csrf: 'forged' }, { Cookie: cookie })).status, 403);
    assert.equal((await post({ ...form, _csrf: token })).status, 403);
    assert.equal((await storedUploads()).length, uploadsBefore, 'no upload created');
    // The genuine pair goes through.
    const ok = await post({ ...form, _csrf: token }, { Cookie: cookie });
    assert.equal(ok.status, 303);
    assert.match(ok.headers.get('location') ?? '', /^\/status\/[0-9a-f-]{36}$/);
    assert.equal((await storedUploads()).length, uploadsBefore + 1);
  });
});

describe('sender UI: uploading', () => {
  it('a 20 MB file: progress to 100 %, status Complete and a delivery, the stored bytes are the file\'s', async () => {
    const page = await context.newPage();
    const id = await createUpload(page, 'twenty-mb.bin');
    assert.equal(await page.locator('h1').textContent(), 'File Uploader');
    await screenshot(page, shots, '05-status-new');
    await checkAxe(page, 'status (new upload)');
    const requests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/files/')) requests.push(`${r.method()} ${new URL(r.url()).pathname}`);
    });
    await page.locator('#files').setInputFiles(bigFile);
    await page.locator('#progress-text', { hasText: /^100%/ }).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#progress').getAttribute('value'), '100');
    assert.match((await page.locator('#progress-text').textContent()) ?? '', /^100% · 20\.0 MB of 20\.0 MB/);
    await waitForCompleteAndDelivered(page);
    // Straight to the pre-created upload: HEAD then PATCH, no POST from the browser (cross-origin, via CORS).
    assert.ok(requests.includes(`HEAD /files/${id}`), requests.join('\n'));
    assert.ok(requests.includes(`PATCH /files/${id}`), requests.join('\n'));
    assert.ok(!requests.some((r) => r.startsWith('POST')), requests.join('\n'));
    const stored = await readFile(path.join(server.storeDir, id));
    assert.equal(stored.length, bigBytes.length);
    assert.equal(sha256(stored), sha256(bigBytes));
    const delivery = page.locator('.file-delivery-container');
    assert.equal(await delivery.locator('h4').textContent(), 'EDAV');
    assert.match((await delivery.textContent()) ?? '', /Delivery Status: SUCCESS/);
    assert.ok(((await delivery.textContent()) ?? '').includes(id), 'the location names the upload');
    const details = (await page.locator('.file-details-container').textContent()) ?? '';
    for (const t of ['File Size:20 MB', `Sender ID:${SENDER.sender_id}`, `Producer ID:${SENDER.data_producer_id}`, 'Stream ID:dextesting', 'Stream Route:testevent1', `Jurisdiction:${SENDER.jurisdiction}`]) {
      assert.ok(details.includes(t), `${t} in ${details}`);
    }
    await screenshot(page, shots, '06-status-complete');
    await checkAxe(page, 'status (complete)');
    // A reload of a finished upload shows it read-only.
    await page.reload();
    assert.equal(await page.locator('h1').textContent(), 'Upload Complete');
    assert.equal(await page.locator('#uploader').isHidden(), true);
    await page.close();
  });

  it('pause and resume, then a reload mid-upload resumes from the server\'s offset instead of restarting', async () => {
    const page = await context.newPage();
    const uploadsBefore = (await storedUploads()).length;
    const id = await createUpload(page, 'twenty-mb.bin');
    await page.locator('summary', { hasText: 'Advanced settings' }).click();
    await page.getByLabel('Chunk Size (bytes)').fill(String(MiB));

    // PATCHes go through one by one; the 3rd and the 7th are held (never sent on), to pause and to reload during them.
    const patches: Request[] = [];
    const heldAt = new Map<number, () => void>();
    const held = (n: number) => new Promise<void>((resolve) => heldAt.set(n, resolve));
    const third = held(3);
    const seventh = held(7);
    let passAll = false;
    const gate = async (route: Route) => {
      if (passAll || route.request().method() !== 'PATCH') return route.continue();
      patches.push(route.request());
      const hold = heldAt.get(patches.length);
      return hold ? hold() : route.continue();
    };
    await page.route(`**/files/${id}`, gate);

    await page.locator('#files').setInputFiles(bigFile);
    await third;
    await page.getByRole('button', { name: 'Pause' }).click();
    assert.equal(await page.getByRole('button', { name: 'Resume' }).isEnabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Pause' }).isDisabled(), true);
    await screenshot(page, shots, '07-status-paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await seventh;
    assert.match((await page.locator('#progress-text').textContent()) ?? '', / · [0-9.]+ [KMGT]?B\/s$/, 'speed shown while uploading');
    const offsets = patches.map((r) => Number(r.headers()['upload-offset']));
    // 1st and 2nd sent, 3rd cut by the pause, then from 2 MiB again: 4th, 5th, 6th sent, 7th held at 5 MiB.
    assert.deepEqual(offsets, [0, 1, 2, 2, 3, 4, 5].map((n) => n * MiB));

    // The reload cancels the held PATCH; from then on every request goes through.
    const firstPatchAfterReload = page.waitForRequest((r) => r.method() === 'PATCH' && r.url().endsWith(`/files/${id}`));
    await page.reload();
    passAll = true;
    const head = await fetch(`${server.url}/files/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(Number(head.headers.get('upload-offset')), 5 * MiB, 'the server holds the five PATCHes that were sent');
    assert.equal(await page.locator('h1').textContent(), 'Resume Upload');
    assert.match((await page.locator('#uploader-intro').textContent()) ?? '', /5\.2 MB of this upload have been received.*You started with twenty-mb\.bin/);
    await screenshot(page, shots, '08-status-resume');
    await checkAxe(page, 'status (resume)');
    // Another file is refused: it is not the one this upload holds.
    const other = path.join(files, 'other.bin');
    await writeFile(other, randomBytes(6 * MiB));
    await page.locator('#files').setInputFiles(other);
    assert.match((await page.locator('#upload-error').textContent()) ?? '', /started with twenty-mb\.bin/);
    await page.locator('#files').setInputFiles(bigFile);
    const resumed = await firstPatchAfterReload;
    assert.equal(Number(resumed.headers()['upload-offset']), 5 * MiB, 'the first PATCH after the reload starts at the server\'s offset');
    await page.locator('#progress-text', { hasText: /^100%/ }).waitFor({ timeout: 60_000 });
    await waitForCompleteAndDelivered(page);
    assert.equal((await storedUploads()).length, uploadsBefore + 1, 'one upload, resumed, not a second one');
    await page.unroute(`**/files/${id}`, gate);
    assert.equal(sha256(await readFile(path.join(server.storeDir, id))), sha256(bigBytes));
    await page.close();
  });

  it('an unknown upload id gets a 404 page', async () => {
    const page = await context.newPage();
    const res = await page.goto(`${server.uiUrl}/status/00000000-0000-4000-8000-000000000000`);
    assert.equal(res?.status(), 404);
    assert.equal(await page.locator('h1').textContent(), 'Upload not found');
    await checkAxe(page, 'unknown upload');
    await page.close();
  });
});

describe('sender UI: phone-sized screen', () => {
  it('every page fits 375 px without sideways scrolling, controls stay reachable, no axe violations, an upload completes', async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await phone.newPage();
    const fits = async (name: string) => {
      const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: document.documentElement.clientWidth }));
      assert.ok(scroll <= width, `${name}: page is ${scroll}px wide on a ${width}px screen`);
      await screenshot(page, shots, `phone-${name}`);
      await checkAxe(page, `phone ${name}`);
    };
    await page.goto(`${server.uiUrl}/`);
    await fits('landing');
    await page.getByLabel('Data Stream and Route').selectOption('dextesting/testevent1');
    await page.getByRole('button', { name: 'Next' }).tap();
    await page.waitForURL(/\/manifest\?/);
    await fits('manifest');
    const next = await page.getByRole('button', { name: 'Next' }).boundingBox();
    assert.ok(next && next.width >= 300 && next.height >= 44, `Next is a full-width touch target: ${JSON.stringify(next)}`);
    await page.getByLabel('Sender Id').fill('phone');
    await page.getByLabel('Data Producer Id').fill('phone');
    await page.getByLabel('Jurisdiction').fill('phone');
    await page.getByLabel('Received Filename').fill('small.txt');
    await page.getByRole('button', { name: 'Next' }).tap();
    await page.waitForURL(/\/status\//);
    await fits('status');
    const small = path.join(files, 'small.txt');
    await writeFile(small, 'uploaded from a phone-sized screen\n');
    await page.locator('#files').setInputFiles(small);
    await waitForCompleteAndDelivered(page);
    await fits('status-complete');
    await phone.close();
  });
});
