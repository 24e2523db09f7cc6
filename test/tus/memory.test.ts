// The server streams: a 1 GiB PATCH does not grow its resident memory by more than a small, fixed amount.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { stat, statfs } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, head, b64 } from '../helpers/http.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const PIECE = MiB;

/** Resident set size of a process in bytes, from /proc/<pid>/status (VmRSS). */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS is readable');
  return Number(m[1]) * 1024;
}

/**
 * 1 GiB generated on the fly from one small random buffer: each 1 MiB piece is the buffer with its index stamped
 * in front (so a lost, repeated or reordered piece changes the digest). The digest is computed as it goes.
 */
function generatedBody(total: number, hash: ReturnType<typeof createHash>): Readable {
  const base = randomBytes(PIECE);
  let sent = 0;
  let index = 0n;
  return new Readable({
    highWaterMark: PIECE,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const piece = Buffer.from(base.subarray(0, Math.min(PIECE, total - sent)));
      if (piece.length >= 8) piece.writeBigUInt64BE(index++, 0);
      sent += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
}

/** One PATCH with Content-Length, body streamed from `body`. */
function streamPatch(url: string, offset: number, length: number, body: Readable): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'PATCH',
        agent: false,
        headers: {
          'Tus-Resumable': '1.0.0',
          'Content-Type': 'application/offset+octet-stream',
          'Upload-Offset': String(offset),
          'Content-Length': String(length),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error('PATCH idle for 120 s')));
    req.on('error', reject);
    pipeline(body, req).catch(reject);
  });
}

describe('memory: a 1 GiB upload through one PATCH', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'false' } });
  });
  after(async () => {
    await s.cleanup(); // removes the temporary folder and its 1 GiB file
  });

  it('keeps the server RSS flat and stores every byte', { timeout: 600_000 }, async (t) => {
    const fs = await statfs(s.dir);
    const free = fs.bavail * fs.bsize;
    assert.ok(free > 3 * GiB, `the test needs 3 GiB free beside ${s.dir}; ${(free / GiB).toFixed(1)} GiB available`);

    const { url, id } = await createUpload(s.url, { length: GiB, metadata: `filename ${b64('big.bin')}` });
    // Let start-up and the creation settle, then take the baseline.
    await sleep(500);
    const before = rss(s.pid);
    let peak = before;
    let samples = 0;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rss(s.pid));
        samples++;
      } catch {
        /* process gone: the assertions below will say so */
      }
    }, 100);

    let clientDigest: string;
    let res;
    try {
      const hash = createHash('sha256');
      res = await streamPatch(url, 0, GiB, generatedBody(GiB, hash));
      clientDigest = hash.digest('hex');
      assert.equal(res.status, 204, res.text);
      assert.equal(res.headers['upload-offset'], String(GiB));
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(GiB));
      assert.equal(h.headers['upload-length'], String(GiB));
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rss(s.pid));

    const growth = peak - before;
    t.diagnostic(
      `server RSS before ${(before / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB over ${samples} samples`,
    );
    assert.ok(samples >= 5, `RSS was sampled during the upload (${samples} samples)`);
    assert.ok(growth < 100 * MiB, `server RSS grew by ${(growth / MiB).toFixed(1)} MiB during a 1 GiB upload`);

    const file = path.join(s.storeDir, id);
    assert.equal((await stat(file)).size, GiB);
    const serverSide = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: 4 * MiB })) serverSide.update(chunk as Buffer);
    assert.equal(serverSide.digest('hex'), clientDigest, 'the stored file equals the generated bytes');
  });
});
