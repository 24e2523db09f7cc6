// Every target type streams: delivering a large generated body grows a child process's peak resident memory by
// a small, fixed amount whatever the size (memory is a size, not a time, so this is allowed).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TargetConfig } from '../../internal/delivery/config.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type Azurite } from '../helpers/azurite.js';
import { MiB } from '../helpers/delivery.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver, type S3rver } from '../helpers/s3.js';

const GiB = 1024 * MiB;
const MAX_GROWTH = 150 * MiB;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/delivery-memory-child.js');

interface ChildResult {
  baseline: number;
  peak: number;
  growth: number;
  generated: string;
  location: string;
  sha256: string;
  bytes: number;
}

async function deliverInChild(target: TargetConfig, size: number, file: string): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [CHILD, JSON.stringify({ target, path: file, size })], {
    maxBuffer: 16 * MiB,
    timeout: 170_000,
  });
  const line = stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as ChildResult;
}

function checkResult(what: string, r: ChildResult, size: number): void {
  assert.equal(r.bytes, size);
  assert.equal(r.sha256, r.generated, 'the bytes sent are the bytes generated');
  const mb = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  console.log(`${what}: ${mb(size)} delivered, resident ${mb(r.baseline)} -> peak ${mb(r.peak)} (growth ${mb(r.growth)})`);
  assert.ok(r.growth < MAX_GROWTH, `${what}: peak resident growth ${mb(r.growth)} must stay under ${mb(MAX_GROWTH)}`);
}

describe('delivery memory stays flat for large files', () => {
  let dir: string;
  let s3: S3rver;
  let az: Azurite;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'delivery-memory-'));
    s3 = await startS3rver();
    await s3.createBucket('memory');
    az = await startAzurite();
  });
  after(async () => {
    await s3?.cleanup();
    await az?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('file: 1 GiB', async () => {
    const r = await deliverInChild({ type: 'file', name: 'mem-file', path: dir }, GiB, 'big/one-gib.bin');
    checkResult('file', r, GiB);
    assert.equal((await stat(r.location)).size, GiB);
    await rm(r.location);
  });

  it('s3: 1 GiB (multipart)', async () => {
    const target: TargetConfig = { type: 's3', name: 'mem-s3', bucket_name: 'memory', endpoint: s3.endpoint, access_key_id: S3RVER_ACCESS_KEY, secret_access_key: S3RVER_SECRET_KEY };
    const r = await deliverInChild(target, GiB, 'big/one-gib.bin');
    checkResult('s3', r, GiB);
    const client = s3.client();
    try {
      assert.equal((await client.send(new HeadObjectCommand({ Bucket: 'memory', Key: 'big/one-gib.bin' }))).ContentLength, GiB);
      await client.send(new DeleteObjectCommand({ Bucket: 'memory', Key: 'big/one-gib.bin' }));
    } finally {
      client.destroy();
    }
  });

  it('az-blob: 1 GiB (block blob)', async () => {
    const target: TargetConfig = { type: 'az-blob', name: 'mem-az', container_name: 'memory', storage_account: AZURITE_ACCOUNT, storage_key: AZURITE_KEY, endpoint: az.endpoint };
    const r = await deliverInChild(target, GiB, 'big/one-gib.bin');
    checkResult('az-blob', r, GiB);
    const blob = az.serviceClient().getContainerClient('memory').getBlockBlobClient('big/one-gib.bin');
    assert.equal((await blob.getProperties()).contentLength, GiB);
    await blob.delete();
  });
});
