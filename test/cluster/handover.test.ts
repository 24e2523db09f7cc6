// Lock hand-over between real server processes on one shared upload folder and one real Redis: a request on one
// instance interrupts the lock holder on another, a SIGKILLed holder's lock frees itself after its lease, and the
// wire protocol (key, token, lease, both channels and their messages) is checked with raw Redis commands.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { createUpload, head, patch, request, TR, type Response } from '../helpers/http.js';
import { openPatch, startCluster, waitStored, type Cluster } from '../helpers/cluster.js';
import { waitUntil } from '../helpers/wait.js';

const TOKEN = /^[A-Za-z0-9+/]{22}==$/;
const SIZE = 100_000;

function assertCode(res: Response, status: number, code: string): void {
  assert.equal(res.status, status, `${status} expected, got ${res.status} ${res.body}`);
  assert.match(res.body, new RegExp(`^${code}: .+\\n$`));
}

let cluster: Cluster;
let raw: Redis;
const A = () => cluster.servers[0]!;
const B = () => cluster.servers[1]!;

before(async () => {
  cluster = await startCluster(2, { UPLOAD_MANIFEST_VALIDATION: 'false' });
  raw = await cluster.redis.client();
});
after(async () => {
  await cluster?.stop();
});

/** An upload created on `on`, with a PATCH from offset 0 on `on` holding its lock after `first` bytes. */
async function heldUpload(on: { url: string }, first: number) {
  const data = randomBytes(SIZE);
  const { url, id } = await createUpload(on.url, { length: SIZE });
  const held = openPatch(url, 0, SIZE);
  held.write(data.subarray(0, first));
  await waitStored(cluster.storeDir, id, first);
  return { data, id, held, urlOn: (s: { url: string }) => `${s.url}/files/${id}` };
}

const stored = (id: string) => readFile(path.join(cluster.storeDir, id));

describe('cluster: lock hand-over between instances (Redis locker, shared upload folder)', () => {
  it('a HEAD on B interrupts a slow PATCH on A (400 ERR_UPLOAD_INTERRUPTED, bytes kept); the upload then completes on B', async () => {
    const { data, id, held, urlOn } = await heldUpload(A(), 30_000);
    const [h, interrupted] = await Promise.all([head(urlOn(B())), held.response]);
    assertCode(interrupted, 400, 'ERR_UPLOAD_INTERRUPTED');
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '30000', 'B sees the bytes A stored');
    held.destroy();
    const rest = await patch(urlOn(B()), 30_000, data.subarray(30_000));
    assert.equal(rest.status, 204, rest.body);
    assert.equal(rest.headers['upload-offset'], String(SIZE));
    assert.ok((await stored(id)).equals(data), 'byte-identical');
    // A, which wrote the first part, sees B's part too.
    assert.equal((await head(urlOn(A()))).headers['upload-offset'], String(SIZE));
  });

  it('a PATCH on B interrupts a PATCH on A and continues from the offset A saved', async () => {
    const { data, id, held, urlOn } = await heldUpload(A(), 12_345);
    const [next, interrupted] = await Promise.all([patch(urlOn(B()), 12_345, data.subarray(12_345)), held.response]);
    assertCode(interrupted, 400, 'ERR_UPLOAD_INTERRUPTED');
    assert.equal(next.status, 204, next.body);
    assert.ok((await stored(id)).equals(data));
  });

  it('within one instance the Redis locker hands over too (HEAD on A interrupts a PATCH on A)', async () => {
    const { held, urlOn } = await heldUpload(A(), 777);
    const [h, interrupted] = await Promise.all([head(urlOn(A())), held.response]);
    assertCode(interrupted, 400, 'ERR_UPLOAD_INTERRUPTED');
    assert.equal(h.headers['upload-offset'], '777');
    held.destroy();
  });

  it('SIGKILL of the instance holding the lock: once its lease runs out another instance finishes the upload', { timeout: 90_000 }, async () => {
    const victim = await cluster.add();
    const { data, id, held, urlOn } = await heldUpload(victim, 40_000);
    assert.match(String(await raw.get(id)), TOKEN, 'the dying instance holds the lock');
    await victim.kill9();
    held.destroy();
    assert.ok((await raw.pttl(id)) > 0, 'its key outlives it until the lease ends');
    // The HEAD waits (no holder answers the release request) until the key expires, well within TUS_LOCK_TIMEOUT.
    const h = await head(urlOn(B()));
    assert.equal(h.status, 200, h.body);
    assert.equal(h.headers['upload-offset'], '40000', 'every byte the killed instance stored is there');
    const rest = await patch(urlOn(A()), 40_000, data.subarray(40_000));
    assert.equal(rest.status, 204, rest.body);
    assert.ok((await stored(id)).equals(data));
  });
});

describe('cluster: the wire protocol, seen with raw Redis commands', () => {
  it("a PATCH's lock: key = upload id, value = 16 random bytes base64, lease 8 s; a PUBLISH of the id on the request channel interrupts it; its release deletes the key and publishes the id on the released channel", async () => {
    const { id, held } = await heldUpload(A(), 5000);
    assert.match(String(await raw.get(id)), TOKEN);
    const pttl = await raw.pttl(id);
    assert.ok(pttl > 0 && pttl <= 8000, `PTTL ${pttl}`);
    const sub = await cluster.redis.client();
    const notices: Array<[string, string]> = [];
    sub.on('message', (ch: string, msg: string) => notices.push([ch, msg]));
    await sub.subscribe(`tusd_lock_released_${id}`);
    assert.ok((await raw.publish(`tusd_lock_release_request_${id}`, id)) >= 1, 'the instances listen');
    assertCode(await held.response, 400, 'ERR_UPLOAD_INTERRUPTED');
    await waitUntil('the release notice', () => (notices.length > 0 ? true : undefined));
    assert.deepEqual(notices[0], [`tusd_lock_released_${id}`, id]);
    assert.equal(await raw.exists(id), 0, 'the key is deleted');
    sub.disconnect();
    held.destroy();
  });

  it('a lock held by another party (as the original server would): a HEAD publishes the id on the request channel and answers once the key is released and the notice sent', async () => {
    const { id } = await createUpload(B().url, { length: 10 });
    const sub = await cluster.redis.client();
    const requests: Array<[string, string]> = [];
    sub.on('pmessage', (_p: string, ch: string, msg: string) => requests.push([ch, msg]));
    await sub.psubscribe(`tusd_lock_release_request_${id}`);
    assert.equal(await raw.set(id, randomBytes(16).toString('base64'), 'PX', 8000, 'NX'), 'OK');
    let answered = false;
    const h = head(`${B().url}/files/${id}`).finally(() => (answered = true));
    await waitUntil('the release request', () => (requests.length > 0 ? true : undefined));
    assert.deepEqual(requests[0], [`tusd_lock_release_request_${id}`, id]);
    assert.equal(answered, false, 'the HEAD waits for the lock');
    await raw.del(id);
    await raw.publish(`tusd_lock_released_${id}`, id);
    assert.equal((await h).status, 200);
    sub.disconnect();
  });

  it('a holder that never lets go: 500 ERR_LOCK_TIMEOUT after TUS_LOCK_TIMEOUT', async () => {
    const impatient = await cluster.add({ TUS_LOCK_TIMEOUT: '800' });
    const { id } = await createUpload(impatient.url, { length: 10 });
    await raw.set(id, 'stuck-holder', 'PX', 30_000, 'NX');
    assert.equal((await head(`${impatient.url}/files/${id}`)).status, 500, 'HEAD (no body)');
    assertCode(await request({ method: 'DELETE', url: `${impatient.url}/files/${id}`, headers: TR }), 500, 'ERR_LOCK_TIMEOUT');
    await raw.del(id);
    assert.equal((await head(`${impatient.url}/files/${id}`)).status, 200, 'free again once the key is gone');
  });
});
