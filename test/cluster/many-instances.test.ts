// Three real server processes on one shared upload folder and one real Redis, behind a small load balancer: the
// official tus client's PATCHes alternate between instances, and 20 uploads go through 3 instances chosen at random
// for every request. Every upload is stored and delivered byte-identical, and any instance reports on any upload.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { request } from '../helpers/http.js';
import { VALID_MANIFEST } from '../helpers/manifest-mode.js';
import { random, roundRobin, startBalancer, type Balancer } from '../helpers/balancer.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { waitUntil } from '../helpers/wait.js';

const KiB = 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let cluster: Cluster;
const balancers: Balancer[] = [];
before(async () => {
  // Manifest validation on, with the shipped delivery config: dextesting/testevent1 uploads are delivered to edav.
  cluster = await startCluster(3, { UPLOAD_MANIFEST_VALIDATION: 'true' });
});
after(async () => {
  await Promise.all(balancers.map((b) => b.close()));
  await cluster?.stop();
});

function upload(endpoint: string, data: Buffer, chunkSize: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const u: tus.Upload = new tus.Upload(data, {
      endpoint,
      chunkSize,
      metadata: { ...VALID_MANIFEST, filename: 'test.txt' },
      retryDelays: [0, 200, 1000],
      onSuccess: () => resolve(u.url!),
      onError: reject,
    });
    u.start();
  });
}

const idOf = (url: string) => new URL(url).pathname.split('/').pop()!;

/** Stored, reported and delivered: the store's bytes, /info from `instance`, and the delivered file. */
async function assertEverywhere(id: string, data: Buffer, instance: { url: string }): Promise<void> {
  assert.equal(sha256(await readFile(path.join(cluster.storeDir, id))), sha256(data), `${id}: stored byte-identical`);
  const info = await waitUntil(`${id} delivered`, async () => {
    const r = await request({ method: 'GET', url: `${instance.url}/info/${id}` });
    assert.equal(r.status, 200, r.body);
    const doc = JSON.parse(r.body) as { upload_status: { status: string }; file_info: { size_bytes: number }; deliveries: Array<{ status: string; location: string }> | null };
    return doc.deliveries?.some((d) => d.status === 'SUCCESS') ? doc : undefined;
  }, 60_000);
  assert.equal(info.upload_status.status, 'Complete');
  const delivered = info.deliveries!.find((d) => d.status === 'SUCCESS')!;
  assert.equal(sha256(await readFile(path.resolve(cluster.dir, delivered.location))), sha256(data), `${id}: delivered byte-identical`);
}

describe('cluster: one upload served by several instances', () => {
  it("tus-js-client's PATCHes alternate between two instances; the upload is stored and delivered byte-identical", async () => {
    const lb = await startBalancer(() => cluster.servers.slice(0, 2), roundRobin());
    balancers.push(lb);
    const data = randomBytes(1024 * KiB + 123);
    const url = await upload(`${lb.url}/files/`, data, 128 * KiB);
    const id = idOf(url);
    const patches = lb.log.filter((r) => r.method === 'PATCH' && r.path.endsWith(id));
    assert.equal(patches.length, 9, '9 chunks');
    for (let i = 1; i < patches.length; i++) assert.notEqual(patches[i]!.backend, patches[i - 1]!.backend, 'consecutive PATCHes on different instances');
    assert.ok(patches.every((p) => p.status === 204));
    for (const s of cluster.servers) await assertEverywhere(id, data, s);
  });

  it('20 uploads through 3 instances, an instance chosen at random for every request: all byte-identical', { timeout: 150_000 }, async () => {
    const lb = await startBalancer(() => cluster.servers, random());
    balancers.push(lb);
    const files = Array.from({ length: 20 }, (_, i) => randomBytes(64 * KiB + Math.floor(Math.random() * 256 * KiB) + i));
    const urls = await Promise.all(files.map((data, i) => upload(`${lb.url}/files/`, data, (16 + (i % 4) * 16) * KiB)));
    const served = new Set(lb.log.filter((r) => r.method === 'PATCH').map((r) => r.backend));
    assert.equal(served.size, 3, 'every instance took PATCHes');
    const switched = urls.filter((u) => new Set(lb.log.filter((r) => r.method === 'PATCH' && r.path.endsWith(idOf(u))).map((r) => r.backend)).size > 1);
    assert.ok(switched.length >= 15, `${switched.length} of 20 uploads had PATCHes on several instances`);
    assert.ok(lb.log.every((r) => r.status !== undefined && r.status < 400), 'no request failed');
    for (const [i, url] of urls.entries()) await assertEverywhere(idOf(url), files[i]!, cluster.servers[i % 3]!);
  });
});
