// /info `deliveries` come from the upload's blob-file-copy report lines (one per delivery attempt). Delivery itself
// is not built yet, so the lines are written here with the server's own report builder, as the worker will write them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildReport } from '../../internal/reports/report.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, request } from '../helpers/http.js';

describe('/info deliveries from blob-file-copy reports', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.cleanup();
  });
  const info = async (id: string) => {
    const res = await request({ method: 'GET', url: `${s.url}/info/${id}` });
    assert.equal(res.status, 200);
    return JSON.parse(res.body) as { deliveries: unknown };
  };
  const reportFile = (id: string) => path.join(s.dir, 'uploads', 'reports', `${id}_blob-file-copy`);

  it('is null before any delivery attempt, then one entry per attempt in order', async () => {
    const { id } = await createUpload(s.url, { length: 2, body: 'ok' });
    assert.equal((await info(id)).deliveries, null);

    const failed = buildReport({
      stage: 'blob-file-copy',
      uploadId: id,
      manifest: null,
      version: 'x_y',
      content: { file_source_blob_url: '', file_destination_blob_url: '', destination_name: 'edav' },
      issues: [{ level: 'ERROR', message: 'target down' }],
      end: new Date('2026-01-02T03:04:05.5Z'),
    });
    const ok = buildReport({
      stage: 'blob-file-copy',
      uploadId: id,
      manifest: { sender_id: 's' },
      version: 'x_y',
      content: { file_source_blob_url: '', file_destination_blob_url: `uploads/edav/${id}.txt`, destination_name: 'edav' },
      end: new Date('2026-01-02T03:04:06Z'),
    });
    await appendFile(reportFile(id), `${JSON.stringify(failed)}\n${JSON.stringify(ok)}\n`);

    assert.deepEqual((await info(id)).deliveries, [
      { status: 'FAILURE', name: 'edav', location: '', delivered_at: '2026-01-02T03:04:05.5Z', issues: [{ level: 'ERROR', message: 'target down' }] },
      { status: 'SUCCESS', name: 'edav', location: `uploads/edav/${id}.txt`, delivered_at: '2026-01-02T03:04:06Z', issues: null },
    ]);
  });

  it('an unreadable report file does not break /info (deliveries null, the rest intact)', async () => {
    const { id } = await createUpload(s.url, { length: 2, body: 'ok' });
    await writeFile(reportFile(id), 'not json\n');
    const body = (await info(id)) as { deliveries: unknown; manifest: Record<string, string> };
    assert.equal(body.deliveries, null);
    assert.equal(body.manifest['upload_id'], id);
  });
});
