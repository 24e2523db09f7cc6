// The file delivery target: a local folder, written atomically (temporary name, then rename).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileTarget } from '../../internal/delivery/targets/file.js';
import { IoThread } from '../../internal/fsutil/io-thread.js';
import { captureLogger, digestOf, failingStream, generatedStream, MiB, requestFor, sha256 } from '../helpers/delivery.js';

/** Every file under `dir`, relative, sorted (temporary `.part` files included). */
async function listAll(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

describe('file delivery target', () => {
  let base: string;
  let root: string;
  let target: FileTarget;
  const logs = captureLogger();

  before(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'file-target-'));
    root = path.join(base, 'uploads', 'edav');
    target = new FileTarget({ name: 'edav', path: root }, logs.log);
    await target.init();
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('init creates the target folder (0755), so health is UP before any delivery', async () => {
    const info = await stat(root);
    assert.ok(info.isDirectory());
    assert.equal(info.mode & 0o777 & ~process.umask(), 0o755 & ~process.umask());
    await target.health();
    assert.equal(target.healthName, 'File Delivery Target edav');
  });

  it('delivers a small file into nested folders; location is the joined path; no metadata stored', async () => {
    const data = 'hello, file delivery\n';
    const res = await target.deliver(requestFor('2024/05/01/small.txt', data, { filename: 'small.txt', data_stream_id: 'x' }));
    assert.equal(res.location, path.join(root, '2024/05/01/small.txt'));
    assert.equal(res.sha256, sha256(data));
    assert.equal(res.bytes, Buffer.byteLength(data));
    assert.equal(await readFile(res.location, 'utf8'), data);
    assert.deepEqual(await listAll(path.join(root, '2024')), ['05/01/small.txt'], 'only the file: no metadata file, no leftovers');
  });

  it('gives a cleaned relative location with no leading ./ for a relative root', async () => {
    const previous = process.cwd();
    process.chdir(base);
    try {
      const relative = new FileTarget({ name: 'rel', path: './uploads/edav' }, logs.log);
      const res = await relative.deliver(requestFor('id-123.txt', 'relative'));
      assert.equal(res.location, 'uploads/edav/id-123.txt');
      const dotted = new FileTarget({ name: 'rel2', path: 'uploads//edav/' }, logs.log);
      assert.equal((await dotted.deliver(requestFor('./sub/./id-124.txt', 'relative'))).location, 'uploads/edav/sub/id-124.txt');
    } finally {
      process.chdir(previous);
    }
  });

  it('delivers an empty file', async () => {
    const res = await target.deliver(requestFor('empty.bin', Buffer.alloc(0)));
    assert.equal(res.sha256, sha256(''));
    assert.equal((await stat(res.location)).size, 0);
  });

  it('delivers a 20 MiB generated stream, content checked by sha256', async () => {
    const size = 20 * MiB;
    const gen = generatedStream(size);
    const res = await target.deliver({ path: 'big/twenty.bin', size, body: gen.stream, metadata: {} });
    assert.equal(res.sha256, gen.digest());
    assert.equal(res.bytes, size);
    assert.deepEqual(await digestOf(createReadStream(res.location)), { sha256: gen.digest(), bytes: size });
  });

  it('overwrites (truncates) an existing file', async () => {
    await target.deliver(requestFor('over/write.txt', 'first version, much longer'));
    const res = await target.deliver(requestFor('over/write.txt', 'second'));
    assert.equal(await readFile(res.location, 'utf8'), 'second');
    assert.deepEqual(await listAll(path.join(root, 'over')), ['write.txt']);
  });

  it('refuses paths that would leave the folder, and writes nothing', async () => {
    const before = await listAll(base);
    for (const p of ['../x', '/abs', 'a/../../b', 'a\0b', '', '.', 'a/..', '..\\x']) {
      await assert.rejects(target.deliver(requestFor(p, 'x')), /refusing delivery path/, `path ${JSON.stringify(p)}`);
    }
    assert.deepEqual(await listAll(base), before);
  });

  it('fails on a size mismatch or a broken source, leaving no file and keeping the previous one', async () => {
    await target.deliver(requestFor('size/kept.txt', 'the good copy'));
    await assert.rejects(target.deliver(requestFor('size/kept.txt', '12345', {}, 10)), /failed to write file .*kept\.txt: size mismatch: expected 10 bytes, the source sent 5/);
    await assert.rejects(target.deliver(requestFor('size/long.txt', '1234567890', {}, 4)), /size mismatch: expected 4 bytes/);
    await assert.rejects(target.deliver({ path: 'size/broken.bin', size: 4 * MiB, body: failingStream(MiB), metadata: {} }), /source broke/);
    assert.deepEqual(await listAll(path.join(root, 'size')), ['kept.txt'], 'no partial or temporary file');
    assert.equal(await readFile(path.join(root, 'size/kept.txt'), 'utf8'), 'the good copy');
  });

  it('reports health DOWN when the folder is missing or is not a folder', async () => {
    const missing = new FileTarget({ name: 'gone', path: path.join(base, 'never-created') }, logs.log);
    await assert.rejects(missing.health(), /no such file or directory/);
    const filePath = path.join(base, 'a-file');
    await writeFile(filePath, 'x');
    const notDir = new FileTarget({ name: 'file', path: filePath }, logs.log);
    await assert.rejects(notDir.health(), { message: `${filePath} is not a directory` });
  });

  it('gives a clear error while the folder cannot be written, and works again once it can', async () => {
    const blockedRoot = path.join(base, 'blocked');
    const blocked = new FileTarget({ name: 'blocked', path: blockedRoot }, logs.log);
    // The target folder's place is taken by a file: nothing can be created under it.
    await writeFile(blockedRoot, 'in the way');
    await assert.rejects(blocked.deliver(requestFor('a/b.txt', 'x')), (err: Error) => /ENOTDIR|EEXIST/.test(err.message) && err.message.includes(blockedRoot));
    await assert.rejects(blocked.health(), /is not a directory/);
    await rm(blockedRoot);
    await blocked.deliver(requestFor('a/b.txt', 'x'));
    await blocked.health();
    assert.equal(await readFile(path.join(blockedRoot, 'a/b.txt'), 'utf8'), 'x');
  });

  describe('deliverFile: a local file copied by path', () => {
    let copier: IoThread;
    before(() => {
      copier = new IoThread();
    });
    after(async () => {
      await copier.close();
    });

    for (const withCopier of [true, false]) {
      const how = withCopier ? 'on the copier thread' : 'streamed (no copier)';
      it(`copies it with its sha256, or refuses a wrong size and keeps the previous copy: ${how}`, async () => {
        const t = new FileTarget({ name: 'edav', path: root }, logs.log, withCopier ? copier : undefined);
        const src = path.join(base, `local-${withCopier}.bin`);
        const data = Buffer.alloc(2 * MiB + 5, withCopier ? 7 : 9);
        await writeFile(src, data);
        const p = `local/${withCopier}/copy.bin`;
        const res = await t.deliverFile({ path: p, size: data.length, file: src, metadata: {} });
        assert.deepEqual(res, { location: path.join(root, p), sha256: sha256(data), bytes: data.length });
        assert.ok((await readFile(res.location)).equals(data));
        await assert.rejects(t.deliverFile({ path: p, size: 3, file: src, metadata: {} }), /failed to write file .*copy\.bin: size mismatch: expected 3 bytes/);
        await assert.rejects(t.deliverFile({ path: '../escape', size: 3, file: src, metadata: {} }), /refusing delivery path/);
        assert.deepEqual(await listAll(path.join(root, 'local', String(withCopier))), ['copy.bin'], 'no temporary file left');
        assert.ok((await readFile(res.location)).equals(data), 'the previous copy is kept');
      });
    }
  });
});
