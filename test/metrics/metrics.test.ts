// GET /metrics of the real server (dex-pipeline.md §6, tus-protocol.md §3): every metric of issue 14, with the
// values an upload, an error, a termination, a broken connection and a delivery leave.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, head, patch, request, TR } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';
import { scrape, valueOf, type Sample } from '../helpers/metrics.js';
import { waitUntil } from '../helpers/wait.js';

const REQUIRED = [
  'http_requests_total',
  'dex_server_connections_open',
  'dex_server_active_uploads',
  'upload_manifest_count',
  'tusd_requests_total',
  'tusd_errors_total',
  'tusd_bytes_received',
  'tusd_uploads_created',
  'tusd_uploads_finished',
  'tusd_uploads_terminated',
  'tusd_hook_invocations_total',
  'tusd_hook_errors_total',
  'dex_delivery_attempts_total',
  'dex_delivery_duration_seconds',
  'dex_reports_dropped_total',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
];

/** Scrapes before and after `act`; returns the change of a sample. */
async function delta(base: string, act: () => Promise<void>): Promise<(name: string, labels?: Record<string, string>) => number> {
  const before = (await scrape(base)).samples;
  await act();
  const after = (await scrape(base)).samples;
  return (name, labels) => (valueOf(after, name, labels) ?? 0) - (valueOf(before, name, labels) ?? 0);
}

const dextesting = { data_stream_id: 'dextesting', data_stream_route: 'testevent1', sender_id: DEXTESTING.sender_id! };

describe('/metrics', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
  });
  after(async () => server.cleanup());

  it('serves every metric family in the Prometheus text format', async () => {
    const { text, contentType, samples } = await scrape(server.url);
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    for (const name of REQUIRED) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is missing`);
    assert.match(text, /^# HELP upload_manifest_count The count of uploads by certain keys in the manifiest$/m);
    assert.match(text, /^# TYPE tusd_bytes_received counter$/m);
    assert.match(text, /^# TYPE dex_server_active_uploads gauge$/m);
    // Every tusd method is there from the start; the scrape itself is the one open request.
    for (const method of ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS']) assert.notEqual(valueOf(samples, 'tusd_requests_total', { method }), undefined);
    assert.equal(valueOf(samples, 'dex_server_connections_open'), 1);
    // Every configured target has its delivery series from the start.
    for (const target of ['edav', 'ehdi', 'eicr', 'ncird']) {
      assert.equal(valueOf(samples, 'dex_delivery_attempts_total', { target, result: 'failure' }), 0);
      assert.equal(valueOf(samples, 'dex_delivery_duration_seconds_count', { target }), 0);
    }
    assert.equal(valueOf(samples, 'dex_reports_dropped_total', { sink: 'file' }), 0);
  });

  it('counts an upload: bytes, creation, completion, manifest labels, hooks, real HTTP codes, delivery', async () => {
    const body = Buffer.alloc(3000, 'x');
    let url = '';
    const d = await delta(server.url, async () => {
      ({ url } = await createUpload(server.url, { length: body.length, metadata: encodeManifest(DEXTESTING) }));
      assert.equal((await patch(url, 0, body.subarray(0, 1000))).status, 204);
      assert.equal((await head(url)).status, 200);
      assert.equal((await patch(url, 1000, body.subarray(1000))).status, 204);
      // The delivery to edav runs in the background.
      await waitUntil('the delivery', async () => {
        const s = (await scrape(server.url)).samples;
        return (valueOf(s, 'dex_delivery_duration_seconds_count', { target: 'edav' }) ?? 0) >= 1 ? true : undefined;
      });
    });
    assert.equal(d('tusd_bytes_received'), 3000);
    assert.equal(d('tusd_uploads_created'), 1);
    assert.equal(d('tusd_uploads_finished'), 1);
    assert.equal(d('tusd_requests_total', { method: 'POST' }), 1);
    assert.equal(d('tusd_requests_total', { method: 'PATCH' }), 2);
    assert.equal(d('tusd_requests_total', { method: 'HEAD' }), 1);
    assert.equal(d('http_requests_total', { method: 'POST', code: '201' }), 1);
    assert.equal(d('http_requests_total', { method: 'PATCH', code: '204' }), 2);
    assert.equal(d('http_requests_total', { method: 'HEAD', code: '200' }), 1);
    assert.ok(d('http_requests_total', { method: 'GET', code: '200' }) >= 1, 'the scrapes are counted');
    assert.equal(d('upload_manifest_count', dextesting), 1);
    for (const hooktype of ['pre-create', 'post-create', 'pre-finish', 'post-finish']) assert.equal(d('tusd_hook_invocations_total', { hooktype }), 1, hooktype);
    assert.ok(d('tusd_hook_invocations_total', { hooktype: 'post-receive' }) >= 2);
    assert.equal(d('dex_delivery_attempts_total', { target: 'edav', result: 'success' }), 1);
    assert.equal(d('dex_delivery_duration_seconds_count', { target: 'edav' }), 1);
    assert.equal(d('dex_server_active_uploads'), 0);
  });

  it('counts errors by status and tus code, including a refused manifest', async () => {
    const d = await delta(server.url, async () => {
      assert.equal((await head(`${server.url}/files/00000000-0000-4000-8000-000000000000`)).status, 404);
      assert.equal((await request({ method: 'POST', url: `${server.url}/files/`, headers: { 'Upload-Length': '1' } })).status, 412);
      const refused = await request({ method: 'POST', url: `${server.url}/files/`, headers: { ...TR, 'Upload-Length': '1', 'Upload-Metadata': 'data_stream_id eA==' } });
      assert.equal(refused.status, 400);
      assert.equal((await request({ method: 'GET', url: `${server.url}/no/such/route` })).status, 404);
    });
    assert.equal(d('tusd_errors_total', { status: '404', code: 'ERR_UPLOAD_NOT_FOUND' }), 1);
    assert.equal(d('tusd_errors_total', { status: '412', code: 'ERR_UNSUPPORTED_VERSION' }), 1);
    assert.equal(d('tusd_errors_total', { status: '400', code: 'ERR_UPLOAD_REJECTED' }), 1);
    assert.equal(d('http_requests_total', { method: 'HEAD', code: '404' }), 1);
    assert.equal(d('http_requests_total', { method: 'POST', code: '412' }), 1);
    assert.equal(d('http_requests_total', { method: 'POST', code: '400' }), 1);
    assert.equal(d('http_requests_total', { method: 'GET', code: '404' }), 1, 'routes outside tus count too');
    assert.equal(d('tusd_uploads_created'), 0);
  });

  it('keeps active uploads: created → 1, terminated → 0', async () => {
    const created = await delta(server.url, async () => {
      await createUpload(server.url, { length: 10, metadata: encodeManifest(DEXTESTING) });
    });
    assert.equal(created('dex_server_active_uploads'), 1);
    const { samples } = await scrape(server.url);
    const active = valueOf(samples, 'dex_server_active_uploads')!;
    const { url } = await createUpload(server.url, { length: 10, metadata: encodeManifest(DEXTESTING) });
    const d = await delta(server.url, async () => {
      assert.equal((await request({ method: 'DELETE', url, headers: TR })).status, 204);
    });
    assert.equal(d('tusd_uploads_terminated'), 1);
    assert.equal(d('dex_server_active_uploads'), -1);
    assert.equal(valueOf((await scrape(server.url)).samples, 'dex_server_active_uploads'), active);
  });

  it('a client that goes away mid-body: open requests go back down, the request counts as 499, its bytes count', async () => {
    const { url } = await createUpload(server.url, { length: 1000, metadata: encodeManifest(DEXTESTING) });
    const received = valueOf((await scrape(server.url)).samples, 'tusd_bytes_received')!;
    const d = await delta(server.url, async () => {
      const { pathname } = new URL(url);
      const socket = net.connect(server.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      socket.write(
        `PATCH ${pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
          'Content-Type: application/offset+octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789',
      );
      // Once the server has the 10 bytes (and the PATCH is open beside the scrape), the client disappears.
      await waitUntil('the first bytes', async () => {
        const s = (await scrape(server.url)).samples;
        return valueOf(s, 'tusd_bytes_received') === received + 10 && valueOf(s, 'dex_server_connections_open') === 2 ? true : undefined;
      });
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.destroy();
      await closed;
      await waitUntil('the request to end', async () => ((await head(url)).headers['upload-offset'] === '10' ? true : undefined));
      await waitUntil('open requests to go down', async () => (valueOf((await scrape(server.url)).samples, 'dex_server_connections_open') === 1 ? true : undefined));
    });
    assert.equal(d('http_requests_total', { method: 'PATCH', code: '499' }), 1);
    assert.equal(d('tusd_bytes_received'), 10);
  });
});

describe('/metrics with METRICS_LABELS_FROM_MANIFEST and a failing target', () => {
  let server: RunningServer;
  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dex-metrics-'));
    await mkdir(path.join(dir, 'uploads'), { recursive: true });
    // A target whose folder is a regular file: every delivery to it fails.
    await writeFile(path.join(dir, 'not-a-folder'), '');
    const deliverYml = path.join(dir, 'deliver.yml');
    await writeFile(
      deliverYml,
      [
        'targets:',
        '  broken: { name: broken, type: file, path: ./not-a-folder }',
        'routing_groups:',
        '  - { data_stream_id: dextesting, data_stream_route: testevent1, delivery_targets: [{ name: broken }] }',
        '',
      ].join('\n'),
    );
    server = await startServer({
      dir,
      env: { UPLOAD_MANIFEST_VALIDATION: 'true', METRICS_LABELS_FROM_MANIFEST: 'sender_id, jurisdiction', DEX_DELIVERY_CONFIG_FILE: deliverYml, EVENT_MAX_RETRY_COUNT: '0' },
    });
  });
  after(async () => {
    await server.cleanup();
    await rm(server.dir, { recursive: true, force: true });
  });

  it('labels upload_manifest_count with the configured keys only, and counts the failed delivery', async () => {
    await createUpload(server.url, { length: 3, metadata: encodeManifest(DEXTESTING), body: 'abc' });
    const samples: Sample[] = await waitUntil('the failed delivery', async () => {
      const s = (await scrape(server.url)).samples;
      return valueOf(s, 'dex_delivery_attempts_total', { target: 'broken', result: 'failure' }) === 1 ? s : undefined;
    });
    const counted = samples.filter((s) => s.name === 'upload_manifest_count');
    assert.deepEqual(counted, [{ name: 'upload_manifest_count', labels: { sender_id: DEXTESTING.sender_id!, jurisdiction: DEXTESTING.jurisdiction! }, value: 1 }]);
    assert.equal(valueOf(samples, 'dex_delivery_attempts_total', { target: 'broken', result: 'success' }), 0);
    assert.equal(valueOf(samples, 'dex_delivery_duration_seconds_count', { target: 'broken' }), 0, 'only successful deliveries are timed');
  });
});
