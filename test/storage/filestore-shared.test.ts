// The file store and the manifest files on a folder shared by several instances: what one process remembers never
// hides what another wrote or removed, and start-up leaves another instance's in-progress temporary files alone.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FileStore } from '../../internal/storage/file/filestore.js';
import { STALE_TEMPORARY_MS } from '../../internal/storage/store.js';
import { ManifestNotFoundError, StoredManifests } from '../../internal/manifest/hooks.js';
import { NotFoundError } from '../../internal/storage/store.js';
import { newUpload } from '../helpers/new-upload.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dex-shared-store-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function instances(shared = true): Promise<[FileStore, FileStore]> {
  const make = async () => {
    const s = new FileStore({ root: dir, directory: dir, fsync: false, shared });
    await s.init();
    return s;
  };
  return [await make(), await make()];
}

const fresh = newUpload;
const bytes = (n: number) => Readable.from([Buffer.alloc(n, 7)]);

describe('file store on a shared folder (shared: true)', () => {
  it("each instance sees the other's bytes, info rewrites and removals", async () => {
    const [a, b] = await instances();
    const u = fresh({ size: 0, sizeIsDeferred: true });
    const ua = await a.create(u);
    assert.equal((await ua.getInfo()).Offset, 0);
    const ub = await b.get(u.id);
    assert.equal((await ub.getInfo()).Offset, 0, 'B has it cached now');

    await ua.writeChunk(0, bytes(100));
    assert.equal((await ub.getInfo()).Offset, 100, 'B sees what A appended');
    await ub.writeChunk(100, bytes(50));
    assert.equal((await ua.getInfo()).Offset, 150, 'A sees what B appended, although it counted its own bytes');

    await b.declareLength(u.id, 400);
    const seen = await ua.getInfo();
    assert.equal(seen.Size, 400, 'A sees the length B declared');
    assert.equal(seen.SizeIsDeferred, false);
    // A finished upload's sha256 (the only key kept after creation besides a declared length) is seen too.
    await ua.writeChunk(150, bytes(250));
    assert.equal((await ub.getInfo()).Offset, 400);
    await a.updateInfo(u.id, { Sha256: 'ab'.repeat(32) });
    assert.equal((await ub.getInfo()).Sha256, 'ab'.repeat(32));

    await b.terminate(u.id);
    await assert.rejects(a.get(u.id).then((x) => x.getInfo()), NotFoundError, 'removed by B: gone for A');
    await assert.rejects(ua.getInfo(), NotFoundError);
  });

  it('alone (shared: false) the cache is trusted: this is why several instances need shared: true', async () => {
    const [a, b] = await instances(false);
    const u = fresh();
    const ua = await a.create(u);
    const ub = await b.get(u.id);
    await ub.getInfo();
    await ua.writeChunk(0, bytes(10));
    assert.equal((await ub.getInfo()).Offset, 0, 'B answers from memory');
  });

  it("start-up in a shared folder removes only old temporary files (a young one may be another instance's request)", async () => {
    const id = randomUUID();
    const young = path.join(dir, `${id}.chunk-0a0a0a0a0a0a`);
    const old = path.join(dir, `${id}.chunk-0b0b0b0b0b0b`);
    const oldInfo = path.join(dir, `${id}.info.0c0c0c0c.tmp`);
    for (const f of [young, old, oldInfo]) await writeFile(f, 'x');
    const past = new Date(Date.now() - STALE_TEMPORARY_MS - 60_000);
    await utimes(old, past, past);
    await utimes(oldInfo, past, past);
    await instances(true);
    const left = await readdir(dir);
    assert.ok(left.includes(path.basename(young)));
    assert.ok(!left.includes(path.basename(old)));
    assert.ok(!left.includes(path.basename(oldInfo)));
    // A store that is alone removes them all.
    await instances(false);
    assert.ok(!(await readdir(dir)).includes(path.basename(young)));
  });
});

describe('manifest files on a shared folder', () => {
  it('without remembering recent manifests, a .meta removed by another instance is gone at once', async () => {
    const id = randomUUID();
    const files = new FileStore({ root: dir, directory: dir, fsync: false });
    const remembering = new StoredManifests(files);
    const shared = new StoredManifests(files, { rememberRecent: false });
    await remembering.write(id, { a: '1' });
    await shared.write(id, { a: '1' });
    assert.deepEqual(await shared.read(id), { a: '1' });
    await rm(path.join(dir, `${id}.meta`)); // another instance terminated the upload
    await assert.rejects(shared.read(id), ManifestNotFoundError);
    assert.deepEqual(await remembering.read(id), { a: '1' }, 'a lone instance answers from memory (it hears of its own removals)');
  });
});
