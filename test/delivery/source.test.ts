// The `upload` source's sha256 (internal/delivery/source.ts) over a real file store, a real I/O thread and the memory
// locker: an upload terminated before its post-finish hash ran is no error, a lost data file still is.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { UploadSource } from '../../internal/delivery/source.js';
import { deliveryHooks } from '../../internal/delivery/hooks.js';
import { newUpload } from '../helpers/new-upload.js';
import { Router } from '../../internal/delivery/router.js';
import type { EventBus } from '../../internal/events/select.js';
import { IoThread } from '../../internal/fsutil/io-thread.js';
import { MemoryLocker } from '../../internal/locking/memory/memorylocker.js';
import { StoredManifests } from '../../internal/manifest/hooks.js';
import { FileStore } from '../../internal/storage/file/filestore.js';
import { NotFoundError } from '../../internal/storage/store.js';
import type { HookEvent } from '../../internal/tus/hooks.js';
import { captureLogger, sha256 } from '../helpers/delivery.js';

const DATA = Buffer.from('the finished upload');

/**
 * A gate the test opens: the hash waits for it before the I/O thread reads the file (as a hash waits behind a busy
 * thread in the server).
 * `waiting` resolves once a hash is waiting there (the source has found the upload finished by then).
 */
function heldGate() {
  let open!: () => void;
  let arrived!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const waiting = new Promise<void>((resolve) => (arrived = resolve));
  const settle = () => {
    arrived();
    return opened;
  };
  return { gate: { settle }, open, waiting };
}

describe('upload source: sha256 of a finished upload', () => {
  let dir: string;
  let store: FileStore;
  let locker: MemoryLocker;
  let manifests: StoredManifests;
  const threads: IoThread[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dex-source-'));
    store = new FileStore({ root: dir, directory: dir, fsync: false });
    await store.init();
    locker = new MemoryLocker();
    manifests = new StoredManifests(store);
  });
  after(async () => {
    await Promise.all(threads.map((t) => t.close()));
    await rm(dir, { recursive: true, force: true });
  });

  /** A source hashing through a real I/O thread whose hashes wait until `open()`. */
  function source() {
    const { gate, open, waiting } = heldGate();
    const io = new IoThread();
    threads.push(io);
    const hash = async (file: string) => {
      await gate.settle();
      return io.hash(file);
    };
    return { source: new UploadSource(store, manifests, { name: 'File Source', check: async () => {} }, hash, locker), open, waiting };
  }

  async function finishedUpload(): Promise<string> {
    const u = await store.create(newUpload({ size: DATA.length }));
    await u.writeChunk(0, Readable.from([DATA]));
    return u.id;
  }

  it('hashes the stored bytes and keeps the sha256 in the info', async () => {
    const { source: s, open } = source();
    const id = await finishedUpload();
    const hashing = s.sha256(id);
    open();
    assert.equal(await hashing, sha256(DATA));
    assert.equal((await (await store.get(id)).getInfo()).Sha256, sha256(DATA));
  });

  it('an upload terminated while its hash waited is not found (and its info is not brought back)', async () => {
    const { source: s, open, waiting } = source();
    const id = await finishedUpload();
    const hashing = s.sha256(id);
    // Terminated after the source found it finished, before the thread opened its file.
    await waiting;
    await store.terminate(id);
    open();
    await assert.rejects(hashing, NotFoundError);
    await assert.rejects(access(path.join(dir, `${id}.info`)), { code: 'ENOENT' });
  });

  it('a termination under way (data removed, info not yet) is waited for under the upload lock', async () => {
    const { source: s, open, waiting } = source();
    const id = await finishedUpload();
    // The termination holds the lock and has removed the bytes only, as a DELETE midway through does.
    const deletion = locker.newLock(id);
    let asked!: () => void;
    const releaseAsked = new Promise<void>((resolve) => (asked = resolve));
    await deletion.lock(AbortSignal.timeout(5_000), () => asked());
    const hashing = s.sha256(id);
    await waiting;
    await rm(path.join(dir, id));
    open();
    const settled = hashing.then(
      () => 'resolved',
      (err: Error) => err,
    );
    // The hash has failed and waits for the lock (asking us to let go); the termination then ends and lets go.
    await releaseAsked;
    await store.terminate(id);
    await deletion.unlock();
    const outcome = await settled;
    assert.ok(outcome instanceof NotFoundError, String(outcome));
  });

  it('a data file lost while the upload is still there is an error, not a removal', async () => {
    const { source: s, open } = source();
    const id = await finishedUpload();
    await rm(path.join(dir, id));
    open();
    await assert.rejects(s.sha256(id), (err: Error) => !(err instanceof NotFoundError) && /ENOENT/.test(err.message));
    await store.terminate(id);
  });

  it('post-finish: an upload deleted before its hash ran logs no error', async () => {
    const { source: s, open, waiting } = source();
    const { log, records } = captureLogger();
    // No routing group: the post-finish hook hashes the upload itself, and publishes nothing.
    const router = new Router({ targets: new Map(), groups: new Map(), warnings: [] });
    const bus = { publish: () => Promise.reject(new Error('nothing is routed here')) } as unknown as EventBus;
    const hooks = deliveryHooks({ source: s, router, bus, log });
    const id = await finishedUpload();
    await manifests.write(id, {});
    const finishing = hooks.postFinish!({ upload: await (await store.get(id)).getInfo() } as HookEvent);
    await waiting;
    await store.terminate(id);
    open();
    await finishing;
    const levels = records().map((r) => [r['level'], r['msg']]);
    assert.deepEqual(
      levels.filter(([level]) => Number(level) >= 50),
      [],
    );
    assert.ok(
      levels.some(([, msg]) => msg === 'upload removed before it was hashed'),
      JSON.stringify(levels),
    );
  });
});
