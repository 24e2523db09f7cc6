// Redis killed and restarted under two running instances: requests that need an upload lock answer
// 503 ERR_STORAGE_UNAVAILABLE while it is down, /health shows `Redis Locker` DOWN then UP, the instances recover by
// themselves, the interrupted upload finishes, and lock hand-over between instances works again.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createUpload, head, patch, request, TR, type Response } from '../helpers/http.js';
import { openPatch, startCluster, waitStored, type Cluster } from '../helpers/cluster.js';
import { waitUntil } from '../helpers/wait.js';

interface Health {
  status: string;
  services: Array<{ service: string; status: string; health_issue: string }>;
}

let cluster: Cluster;
before(async () => {
  cluster = await startCluster(2, { UPLOAD_MANIFEST_VALIDATION: 'false' });
});
after(async () => {
  await cluster?.stop();
});

async function health(s: { url: string }): Promise<Health> {
  const r = await request({ method: 'GET', url: `${s.url}/health` });
  assert.equal(r.status, 200);
  return JSON.parse(r.body) as Health;
}
const redisEntry = (h: Health) => h.services.find((e) => e.service === 'Redis Locker');

function assertUnavailable(res: Response, what: string): void {
  assert.equal(res.status, 503, `${what}: ${res.status} ${res.body}`);
  if (res.body !== '') assert.match(res.body, /^ERR_STORAGE_UNAVAILABLE: /, what);
}

describe('cluster: Redis lost and regained at run time', () => {
  it('/health lists Redis Locker right after the upload storage, UP', async () => {
    for (const s of cluster.servers) {
      const h = await health(s);
      assert.equal(h.status, 'UP');
      assert.deepEqual(h.services.slice(0, 2).map((e) => [e.service, e.status, e.health_issue]), [
        ['File Storage', 'UP', 'None reported'],
        ['Redis Locker', 'UP', 'None reported'],
      ]);
    }
  });

  it('Redis down: 503 for requests that need a lock, /health DOWN; Redis back: UP again, the upload finishes, hand-over works', { timeout: 120_000 }, async () => {
    const [a, b] = cluster.servers as [typeof cluster.servers[0], typeof cluster.servers[0]];
    const size = 60_000;
    const data = randomBytes(size);
    const { id } = await createUpload(a.url, { length: size });
    const on = (s: { url: string }) => `${s.url}/files/${id}`;
    // A slow PATCH holds the lock when Redis dies: its lease cannot be kept, so it is stopped (its bytes saved)
    // before the lease would run out, when another instance could take the lock.
    const inFlight = openPatch(on(a), 0, size);
    inFlight.write(data.subarray(0, 20_000));
    await waitStored(cluster.storeDir, id, 20_000);

    await cluster.redis.kill9();
    const stopped = await inFlight.response;
    assert.equal(stopped.status, 400, stopped.body);
    assert.match(stopped.body, /^ERR_UPLOAD_INTERRUPTED: /);
    inFlight.destroy();
    for (const s of [a, b]) {
      const h = await waitUntil('Redis Locker DOWN', async () => {
        const doc = await health(s);
        return redisEntry(doc)?.status === 'DOWN' ? doc : undefined;
      });
      assert.equal(h.status, 'DEGRADED');
      assert.match(redisEntry(h)!.health_issue, /Redis .*connection is (reconnecting|connecting|close)/, redisEntry(h)!.health_issue);
    }
    assertUnavailable(await head(on(b)), 'HEAD');
    assertUnavailable(await patch(on(a), 20_000, data.subarray(20_000)), 'PATCH');
    assertUnavailable(await request({ method: 'DELETE', url: on(b), headers: TR }), 'DELETE');
    // Creation without a body needs no lock; the info and health endpoints keep answering.
    const fresh = await createUpload(b.url, { length: 5 });
    assert.equal((await request({ method: 'GET', url: `${a.url}/info/${id}` })).status, 200);
    assert.equal((await readFile(path.join(cluster.storeDir, id))).length, 20_000, 'nothing was lost or added');

    await cluster.redis.restart();
    for (const s of [a, b]) {
      await waitUntil('Redis Locker UP again', async () => ((await health(s)).status === 'UP' ? true : undefined), 30_000);
    }
    const h = await head(on(b));
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '20000');
    assert.equal((await patch(on(b), 20_000, data.subarray(20_000, 40_000))).status, 204);
    assert.equal((await head(`${a.url}/files/${fresh.id}`)).status, 200);

    // Release requests reach holders again (the subscriptions came back with the connection).
    const held = openPatch(on(a), 40_000, 20_000);
    held.write(data.subarray(40_000, 45_000));
    await waitStored(cluster.storeDir, id, 45_000);
    const [after, interrupted] = await Promise.all([head(on(b)), held.response]);
    assert.equal(interrupted.status, 400, interrupted.body);
    assert.match(interrupted.body, /^ERR_UPLOAD_INTERRUPTED: /);
    assert.equal(after.headers['upload-offset'], '45000');
    held.destroy();
    assert.equal((await patch(on(b), 45_000, data.subarray(45_000))).status, 204);
    assert.ok((await readFile(path.join(cluster.storeDir, id))).equals(data), 'byte-identical');
  });
});
