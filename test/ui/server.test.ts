// The sender UI's server side, over plain HTTP against the real server: escaping of config text, routes and
// headers, the API's public URL behind a proxy, an unreachable API, and UI_PORT= turning the UI off.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/server.js';
import { csrfPair, postForm, startUiServer, type RunningUiServer } from '../helpers/ui-server.js';
import { humanBytes, rfc850 } from '../../internal/ui/pages/status.js';
import { escapeHtml, html } from '../../internal/ui/html.js';

const HOSTILE = '<script>alert("x")</script>';
const FORM = { data_stream_id: 'dextesting', data_stream_route: 'testevent1', sender_id: 's', data_producer_id: 'p', jurisdiction: 'j', received_filename: 'f.txt' };

/** A port nothing listens on (bound, read and released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('sender UI server', () => {
  let configs: string;
  let server: RunningUiServer;
  before(async () => {
    // The shipped configs plus one whose texts are markup.
    configs = await mkdtemp(path.join(tmpdir(), 'dex-ui-configs-'));
    await cp(path.join(REPO_ROOT, 'upload-configs'), configs, { recursive: true });
    await writeFile(
      path.join(configs, 'v2', 'hostile_route.json'),
      JSON.stringify({
        metadata_config: {
          version: '2.0',
          fields: [
            { field_name: 'sender_id', required: true, description: HOSTILE },
            { field_name: 'kind', required: true, allowed_values: ['a', `"><img src=x onerror=alert(1)>`] },
          ],
        },
      }),
    );
    server = await startUiServer({ env: { UPLOAD_CONFIG_PATH: configs, UI_SERVER_EXTERNAL_HOST: 'uploads.example.test/api', UI_SERVER_EXTERNAL_PROTOCOL: 'https' } });
  });
  after(async () => {
    await server?.cleanup();
    if (configs) await rm(configs, { recursive: true, force: true });
  });

  it('escapes every text from a config: a description or an allowed value never becomes markup', async () => {
    const landing = await (await fetch(`${server.uiUrl}/`)).text();
    assert.ok(landing.includes('<option value="hostile/route">hostile / route</option>'));
    const page = await (await fetch(`${server.uiUrl}/manifest?stream=hostile/route`)).text();
    assert.ok(!page.includes('<script>alert'), 'no raw script');
    assert.ok(!page.includes('<img'), 'no raw img');
    assert.ok(page.includes(escapeHtml(HOSTILE)));
    assert.ok(page.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'));
    assert.equal(html`<p title="${'"x" & y'}">${['<b>', html`<i>ok</i>`]}</p>`.value, '<p title="&quot;x&quot; &amp; y">&lt;b&gt;<i>ok</i></p>');
  });

  it('pages carry a Content-Security-Policy that allows scripts only from the UI and connections only to it and the API', async () => {
    const res = await fetch(`${server.uiUrl}/`);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /connect-src 'self' https:\/\/uploads\.example\.test;/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('vary') ?? '', /Cookie/);
  });

  it('serves tus-js-client\'s browser build from node_modules and its own files, with content-hashed, cacheable URLs', async () => {
    const { cookie, token } = await csrfPair(server.uiUrl);
    const created = await postForm(server.uiUrl, '/upload', { ...FORM, _csrf: token }, { Cookie: cookie });
    assert.equal(created.status, 303);
    const statusPage = await (await fetch(`${server.uiUrl}${created.headers.get('location')}`)).text();
    const scripts = [...statusPage.matchAll(/<script[^>]* src="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(scripts.length, 2);
    for (const src of scripts) assert.match(src, /^\/assets\/[a-z.]+\.js\?v=[0-9a-f]{16}$/, 'same-origin, no CDN');
    const tus = await fetch(`${server.uiUrl}${scripts[0]}`);
    assert.equal(tus.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(tus.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.deepEqual(Buffer.from(await tus.arrayBuffer()), await readFile(path.join(REPO_ROOT, 'node_modules/tus-js-client/dist/tus.min.js')));
    const again = await fetch(`${server.uiUrl}${scripts[0]}`, { headers: { 'If-None-Match': tus.headers.get('etag')! } });
    assert.equal(again.status, 304);
    // The browser is sent to the API at its public URL (behind a proxy here), not at the internal one.
    const id = created.headers.get('location')!.split('/').pop();
    assert.ok(statusPage.includes(`data-upload-url="https://uploads.example.test/api/files/${id}"`), 'public tus URL');
  });

  it('answers GET /upload with 405 and unknown paths with 404; a bad stream in the form is a 404, not a crash', async () => {
    const get = await fetch(`${server.uiUrl}/upload`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal((await fetch(`${server.uiUrl}/nothing-here`)).status, 404);
    assert.equal((await fetch(`${server.uiUrl}/status/..%2F..%2Fetc`)).status, 404);
    const { cookie, token } = await csrfPair(server.uiUrl);
    const bad = await postForm(server.uiUrl, '/upload', { ...FORM, data_stream_id: '../../etc', _csrf: token }, { Cookie: cookie });
    assert.equal(bad.status, 404);
    assert.equal((await fetch(`${server.uiUrl}/`)).status, 200, 'still serving');
  });

  it('the status fragment follows the upload as it goes on', async () => {
    const { cookie, token } = await csrfPair(server.uiUrl);
    const created = await postForm(server.uiUrl, '/upload', { ...FORM, _csrf: token }, { Cookie: cookie });
    const id = created.headers.get('location')!.split('/').pop()!;
    const fragment = async () => (await fetch(`${server.uiUrl}/status/${id}/details`)).text();
    assert.match(await fragment(), /data-status="Initiated"/);
    const patch = await fetch(`${server.url}/files/${id}`, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Upload-Length': '5', 'Content-Type': 'application/offset+octet-stream' },
      body: 'hello',
    });
    assert.equal(patch.status, 204);
    assert.match(await fragment(), /data-status="Complete"/);
    assert.equal((await fetch(`${server.uiUrl}/status/00000000-0000-4000-8000-000000000000/details`)).status, 404);
  });

  it('formats sizes and dates as the original does', () => {
    assert.equal(humanBytes(10240), '10 KB');
    assert.equal(humanBytes(1_500_000), '1.5 MB');
    assert.equal(humanBytes(20_000_000), '20 MB');
    assert.equal(humanBytes(5), '5 B');
    assert.equal(rfc850('2006-01-02T15:04:05Z'), 'Monday, 02-Jan-06 15:04:05 UTC');
  });
});

describe('sender UI: an upload API that cannot be reached', () => {
  it('POST /upload answers 502 with a page that says so, and the UI keeps serving', async () => {
    const s = await startUiServer({ env: { UI_SERVER_INTERNAL_HOST: `127.0.0.1:${await closedPort()}` } });
    try {
      const { cookie, token } = await csrfPair(s.uiUrl);
      const res = await postForm(s.uiUrl, '/upload', { ...FORM, _csrf: token }, { Cookie: cookie });
      assert.equal(res.status, 502);
      assert.match(await res.text(), /The upload service is not available/);
      assert.equal((await fetch(`${s.uiUrl}/`)).status, 200);
    } finally {
      await s.cleanup();
    }
  });
});
