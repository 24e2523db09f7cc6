// Pieces of /metrics that need a failure the real server cannot be made to have from outside: a hook that throws,
// a report sink whose backlog overflows, metadata values chosen to blow up the number of series.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { createUpload, request, TR } from '../helpers/http.js';
import { parseMetrics, scrape, valueOf } from '../helpers/metrics.js';
import { waitUntil } from '../helpers/wait.js';
import { ServerMetrics } from '../../internal/metrics/metrics.js';
import { LabelledCounts } from '../../internal/metrics/families.js';
import { HookChain } from '../../internal/tus/hooks.js';
import { ReportPublisher } from '../../internal/reports/publisher.js';
import { buildReport } from '../../internal/reports/report.js';
import type { ReportSink } from '../../internal/reports/sinks.js';
import type { Logger } from '../../internal/logging/logger.js';

const quietLog = { warn() {}, error() {}, info() {}, debug() {} } as unknown as Logger;

describe('hook failures', () => {
  let server: InProcessServer;
  before(async () => {
    server = await startInProcess(
      [
        {
          postCreate() {
            throw new Error('post-create failed on purpose');
          },
          postFinish: async () => {
            throw new Error('post-finish failed on purpose');
          },
          preTerminate() {
            throw new Error('pre-terminate failed on purpose');
          },
        },
      ],
      { UPLOAD_MANIFEST_VALIDATION: 'false' },
    );
  });
  after(async () => server.close());

  it('are counted per hook type in tusd_hook_errors_total, and the server keeps serving', async () => {
    const { url } = await createUpload(server.base, { length: 2, body: 'ok' });
    const refused = await request({ method: 'DELETE', url, headers: TR });
    assert.equal(refused.status, 500);
    const samples = await waitUntil('the post-finish failure', async () => {
      const s = (await scrape(server.base)).samples;
      return valueOf(s, 'tusd_hook_errors_total', { hooktype: 'post-finish' }) === 1 ? s : undefined;
    });
    assert.equal(valueOf(samples, 'tusd_hook_errors_total', { hooktype: 'post-create' }), 1);
    assert.equal(valueOf(samples, 'tusd_hook_errors_total', { hooktype: 'pre-terminate' }), 1);
    assert.equal(valueOf(samples, 'tusd_hook_errors_total', { hooktype: 'pre-create' }), undefined);
    assert.equal(valueOf(samples, 'tusd_hook_invocations_total', { hooktype: 'pre-terminate' }), 1);
    assert.equal(valueOf(samples, 'tusd_errors_total', { status: '500', code: 'ERR_INTERNAL_SERVER_ERROR' }), 1);
    assert.equal(valueOf(samples, 'tusd_uploads_terminated'), 0);
    assert.equal(valueOf(samples, 'http_requests_total', { method: 'DELETE', code: '500' }), 1);
  });
});

describe('dex_reports_dropped_total', () => {
  it('is what the report publisher dropped, per sink', async () => {
    const down: ReportSink = {
      name: 'down',
      maxPending: 2,
      publish: () => Promise.reject(new Error('sink down')),
    };
    const publisher = new ReportPublisher([down], quietLog);
    const metrics = new ServerMetrics({ manifestLabels: [], hooks: new HookChain(quietLog), reports: publisher, deliveryTargets: [] });
    const report = () =>
      buildReport({ stage: 'upload-started', uploadId: '00000000-0000-4000-8000-000000000001', manifest: null, version: 'v', content: {}, issues: [], start: new Date(), end: new Date() });
    for (let i = 0; i < 5; i++) publisher.publish(report());
    const samples = parseMetrics(await metrics.registry.metrics());
    // The backlog holds 2, the report being written (and failing) among them: each later one drops the oldest waiting.
    assert.equal(valueOf(samples, 'dex_reports_dropped_total', { sink: 'down' }), 3);
  });
});

describe('upload_manifest_count series', () => {
  it('are bounded: past the limit, new label values are counted as (other); long values are cut', () => {
    const counts = new LabelledCounts(['sender_id'], 3, 8);
    for (const v of ['a', 'b', 'c', 'd', 'e', 'a']) counts.child([v]).value++;
    counts.child(['0123456789abcdef']).value++;
    const got = [...counts.samples()].map(([labels, value]) => [labels['sender_id'], value]);
    assert.deepEqual(got, [
      ['a', 2],
      ['b', 1],
      ['c', 1],
      [LabelledCounts.OVERFLOW, 3],
    ]);
    const cut = new LabelledCounts(['sender_id'], 10, 8);
    cut.child(['0123456789abcdef']).value++;
    assert.deepEqual([...cut.samples()], [[{ sender_id: '01234567' }, 1]]);
  });
});
