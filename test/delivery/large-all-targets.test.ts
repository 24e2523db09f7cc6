// A 1 GiB upload through the real server, delivered to a file, an S3 (s3rver) and an Azure Blob (Azurite) target at
// once: every copy is verified against the upload's sha256, and the server's peak memory stays far below the size.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { startServer, type RunningServer } from '../helpers/server.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type Azurite } from '../helpers/azurite.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver, type S3rver } from '../helpers/s3.js';
import { b64, createUpload, streamPatch } from '../helpers/http.js';

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
/** Peak resident memory of the server above its idle level; the file is 1,024 MiB. */
const MAX_GROWTH_MiB = 200;

const MANIFEST: Record<string, string> = {
  data_stream_id: 'dextesting',
  data_stream_route: 'testevent1',
  sender_id: 'big sender',
  data_producer_id: 'producer',
  jurisdiction: 'ZZ',
  received_filename: 'big.bin',
};

/** `VmRSS` / `VmHWM` (peak) of a process, in MiB. */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** SIZE bytes made of one random MiB repeated with a counter, produced lazily; the hash is taken as it goes. */
function generated(): { stream: Readable; hex: () => string } {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  let i = 0;
  const stream = new Readable({
    read() {
      if (i === SIZE / MiB) return this.push(null);
      const piece = Buffer.from(block);
      piece.writeUInt32BE(i++, 0);
      hash.update(piece);
      this.push(piece);
    },
  });
  return { stream, hex: () => hash.digest('hex') };
}

describe('a 1 GiB upload delivered to file, s3 and az-blob targets', () => {
  let azurite: Azurite;
  let s3: S3rver;
  let s: RunningServer;
  let dir: string | undefined;
  before(async () => {
    [azurite, s3] = await Promise.all([startAzurite(), startS3rver()]);
    await s3.createBucket('edav-s3');
    dir = await mkdtemp(path.join(tmpdir(), 'dex-large-'));
    const yml = path.join(dir, 'all-targets.yml');
    await writeFile(
      yml,
      [
        'targets:',
        '  file: {name: edav-file, type: file, path: ./uploads/edav}',
        `  s3: {name: edav-s3, type: s3, bucket_name: edav-s3, access_key_id: ${S3RVER_ACCESS_KEY}, secret_access_key: $EDAV_S3_SECRET, endpoint: "${s3.endpoint}", region: us-east-1}`,
        `  az: {name: edav-az, type: az-blob, storage_account: ${AZURITE_ACCOUNT}, storage_key: $EDAV_AZ_KEY, endpoint: "${azurite.endpoint}", container_name: edav-az}`,
        'routing_groups:',
        '  - data_stream_id: dextesting',
        '    data_stream_route: testevent1',
        '    delivery_targets:',
        '      - {name: edav-file, path_template: "{{.UploadId}}"}',
        '      - {name: edav-s3, path_template: "{{.DataStreamID}}/{{.UploadId}}"}',
        '      - {name: edav-az, path_template: "{{.DataStreamID}}/{{.UploadId}}"}',
        '',
      ].join('\n'),
    );
    // Secrets reach the YAML through $VAR expansion, as in production.
    s = await startServer({
      dir,
      env: { UPLOAD_MANIFEST_VALIDATION: 'true', DEX_DELIVERY_CONFIG_FILE: yml, EDAV_S3_SECRET: S3RVER_SECRET_KEY, EDAV_AZ_KEY: AZURITE_KEY },
    });
  });
  after(async () => {
    await s?.cleanup(); // leaves a folder it was given in place: this test removes its own (2 GiB: upload and copy)
    await Promise.all([azurite?.cleanup(), s3?.cleanup(), dir ? rm(dir, { recursive: true, force: true }) : undefined]);
  });

  it('arrives intact everywhere, verified by sha256, with the server\'s memory bounded', async (t) => {
    const idle = await memory(s.pid);
    const { url, id } = await createUpload(s.url, {
      length: SIZE,
      metadata: Object.entries(MANIFEST)
        .map(([k, v]) => `${k} ${b64(v)}`)
        .join(','),
    });
    const body = generated();
    assert.equal((await streamPatch(url, 0, SIZE, body.stream)).status, 204);
    const expected = body.hex();

    const reportFile = path.join(s.dir, 'uploads/reports', `${id}_blob-file-copy`);
    const deadline = Date.now() + 300_000;
    let reports: Array<{ stage_info: { status: string; issues: unknown }; content: Record<string, string> }> = [];
    while (reports.length < 3) {
      if (Date.now() > deadline) assert.fail(`deliveries did not finish: ${JSON.stringify(reports)}`);
      await new Promise((r) => setTimeout(r, 250));
      const text = await readFile(reportFile, 'utf8').catch(() => '');
      reports = text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as (typeof reports)[number]);
    }
    const byTarget = new Map(reports.map((r) => [r.content['destination_name'], r]));
    for (const name of ['edav-file', 'edav-s3', 'edav-az']) {
      const r = byTarget.get(name);
      assert.ok(r, `a report for ${name}`);
      assert.equal(r.stage_info.status, 'SUCCESS', `${name}: ${JSON.stringify(r.stage_info.issues)}`);
      assert.equal(r.content['sha256'], expected, name);
    }
    assert.equal(reports.length, 3, 'one attempt per target');

    // The destinations hold exactly SIZE bytes.
    assert.equal((await stat(path.join(s.dir, 'uploads/edav', `${id}.bin`))).size, SIZE);
    const head = await s3.client().send(new HeadObjectCommand({ Bucket: 'edav-s3', Key: `dextesting/${id}.bin` }));
    assert.equal(head.ContentLength, SIZE);
    assert.equal(head.Metadata?.['sender_id'], 'big sender');
    const props = await azurite.serviceClient().getContainerClient('edav-az').getBlobClient(`dextesting/${id}.bin`).getProperties();
    assert.equal(props.contentLength, SIZE);
    assert.equal(props.metadata?.['upload_id'], id);
    assert.equal(byTarget.get('edav-s3')!.content['file_destination_blob_url'], `${s3.endpoint}/edav-s3/dextesting/${id}.bin`);

    const after = await memory(s.pid);
    const growth = after.peak - idle.rss;
    t.diagnostic(`server RSS idle ${idle.rss.toFixed(0)} MiB, peak ${after.peak.toFixed(0)} MiB (growth ${growth.toFixed(0)} MiB for 1,024 MiB delivered 3 times)`);
    assert.ok(growth < MAX_GROWTH_MiB, `peak RSS grew by ${growth.toFixed(0)} MiB (idle ${idle.rss.toFixed(0)}, peak ${after.peak.toFixed(0)})`);
  });
});
