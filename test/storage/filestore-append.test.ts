// How the file store appends a PATCH body: a small body already received in full goes in one whole-file append by
// the files writer (the server's I/O thread); any other body streams through a write stream. Both keep every byte.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { FileStore } from '../../internal/storage/file/filestore.js';
import { IoThread, type FileToWrite } from '../../internal/fsutil/io-thread.js';
import { writeFilesInOrder } from '../../internal/fsutil/fast-fs.js';
import { newUpload } from '../helpers/new-upload.js';

let dir: string;
const io = new IoThread({ threads: 1 });
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dex-append-'));
});
after(async () => {
  await io.close();
  await rm(dir, { recursive: true, force: true });
});

/** A store whose files writer is the real I/O thread, with every call it gets kept for the test to look at. */
async function store(fsync = false): Promise<{ store: FileStore; calls: FileToWrite[][] }> {
  const calls: FileToWrite[][] = [];
  const s = new FileStore({
    root: dir,
    directory: dir,
    fsync,
    writeFiles: (files) => {
      calls.push(files);
      return io.writeFiles(files);
    },
  });
  await s.init();
  return { store: s, calls };
}

const fresh = (size: number) => newUpload({ size });

/** A body made of `chunks`, ended, that says whether it has all arrived as the tus core's body reader does. */
function body(chunks: Buffer[], arrived: boolean): Readable {
  const p = new PassThrough();
  Object.defineProperty(p, 'arrived', { value: arrived });
  for (const c of chunks) p.write(c);
  p.end();
  return p;
}

const appends = (calls: FileToWrite[][]) => calls.flat().filter((f) => f.append);

describe('file store appends', () => {
  it('a small body that has all arrived goes in one append by the files writer, in an exact-size buffer of its own', async () => {
    const { store: s, calls } = await store();
    const u = await s.create(fresh(9000));
    // Chunks that are views into a larger buffer, as a socket's are.
    const big = Buffer.alloc(20000);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const parts = [big.subarray(100, 3100), big.subarray(5000, 8000), big.subarray(10000, 13000)];
    assert.equal(await u.writeChunk(0, body(parts, true), 9000), 9000);
    const [one, ...more] = appends(calls);
    assert.equal(more.length, 0);
    const data = one!.data as Uint8Array;
    assert.equal(data.byteLength, 9000);
    assert.equal(data.buffer.byteLength, 9000, 'the buffer under it holds just these bytes');
    assert.deepEqual(await readFile(s.localPath(u.id)), Buffer.concat(parts));
    assert.equal((await u.getInfo()).Offset, 9000);
  });

  it('appends after the bytes already stored, and an empty body writes nothing', async () => {
    const { store: s, calls } = await store();
    const u = await s.create(fresh(200));
    assert.equal(await u.writeChunk(0, body([Buffer.alloc(120, 1)], true), 120), 120);
    assert.equal(await u.writeChunk(120, body([], true), 0), 0);
    assert.equal(await u.writeChunk(120, body([Buffer.alloc(80, 2)], true), 80), 80);
    assert.equal(appends(calls).length, 2);
    assert.deepEqual(await readFile(s.localPath(u.id)), Buffer.concat([Buffer.alloc(120, 1), Buffer.alloc(80, 2)]));
    assert.equal((await u.getInfo()).Offset, 200);
  });

  for (const [name, chunks, arrived, expected, fsync] of [
    ['still arriving', [Buffer.alloc(4096, 3)], false, 4096, false],
    ['larger than 64 KiB', [Buffer.alloc(40000, 4), Buffer.alloc(40000, 5)], true, 80000, false],
    ['of unknown length', [Buffer.alloc(4096, 6)], true, undefined, false],
    ['on a store that flushes every write (fsync)', [Buffer.alloc(4096, 7)], true, 4096, true],
  ] as const) {
    it(`a body ${name} streams through a write stream, every byte kept`, async () => {
      const { store: s, calls } = await store(fsync);
      const total = chunks.reduce((n, c) => n + c.length, 0);
      const u = await s.create(fresh(total));
      assert.equal(await u.writeChunk(0, body([...chunks], arrived), expected), total);
      assert.equal(appends(calls).length, 0);
      assert.deepEqual(await readFile(s.localPath(u.id)), Buffer.concat([...chunks]));
      assert.equal((await u.getInfo()).Offset, total);
    });
  }

  it('createWithData writes the first bytes with the data and info files, in one call of the files writer', async () => {
    const { store: s, calls } = await store();
    const data = Buffer.from('first bytes');
    const u = await s.createWithData(fresh(100), data);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.map((f) => [path.basename(f.path) === u.id ? 'data' : path.extname(f.path), f.exclusive]), [
      ['data', true],
      ['.info', true],
    ]);
    assert.deepEqual(await readFile(s.localPath(u.id)), data);
    assert.equal((await u.getInfo()).Offset, data.length);
    assert.ok(((await u.getInfo()).LastChunkAt ?? 0) > 0);
    // The upload goes on as any other.
    assert.equal(await u.writeChunk(data.length, body([Buffer.from('!')], true), 1), 1);
    assert.equal(await readFile(s.localPath(u.id), 'utf8'), 'first bytes!');
    // A store that flushes every write takes none this way (the core then creates and appends).
    assert.equal((await store(true)).store.maxCreateData, 0);
    assert.equal(s.maxCreateData, 64 * 1024);
  });

  for (const [name, write] of [
    ['the I/O thread', (f: FileToWrite[]) => io.writeFiles(f)],
    ['the default files writer (libuv pool)', writeFilesInOrder],
  ] as const) {
    it(`${name} appends bytes to a file (creating it), where a plain write replaces it`, async () => {
      const file = path.join(dir, `plain-${randomUUID()}`);
      await write([{ path: file, data: Buffer.from('ab'), mode: 0o644, append: true }]);
      await write([{ path: file, data: new Uint8Array([99, 100]), mode: 0o644, append: true }]);
      assert.equal(await readFile(file, 'utf8'), 'abcd');
      await write([{ path: file, data: 'x', mode: 0o644 }]);
      assert.equal(await readFile(file, 'utf8'), 'x');
    });
  }
});
