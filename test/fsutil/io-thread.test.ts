// The I/O thread (internal/fsutil/io-thread.ts): a real piscina worker thread doing whole-file work synchronously.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IoError, IoThread } from '../../internal/fsutil/io-thread.js';
import { PIPELINED_COPY } from '../../internal/fsutil/io-ops.js';
import { threadsStartedBy } from '../helpers/threads.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** The nice value of each of this process's threads (Linux: field 19 of /proc/self/task/<tid>/stat). */
async function threadNiceValues(): Promise<number[]> {
  const tids = await readdir('/proc/self/task');
  return tids.map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

describe('I/O thread', () => {
  let dir: string;
  let io: IoThread;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'io-thread-'));
    io = new IoThread({ threads: 2, niceIncrement: 5 });
  });
  after(async () => {
    await io.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('appends lines, keeping the order in which they were asked for, across many files at once', async () => {
    const files = Array.from({ length: 20 }, (_, i) => path.join(dir, `report-${i}`));
    // 600 appends asked for in one turn of the event loop: they travel as batches of at most 256, in order.
    const writes: Promise<void>[] = [];
    for (let line = 0; line < 30; line++) for (const f of files) writes.push(io.append(f, `line ${line}\n`, 0o640));
    await Promise.all(writes);
    for (const f of files) {
      assert.equal(await readFile(f, 'utf8'), Array.from({ length: 30 }, (_, i) => `line ${i}\n`).join(''));
      assert.equal((await stat(f)).mode & 0o777 & ~process.umask(), 0o640 & ~process.umask());
    }
  });

  it('fails one operation with its file-system code without failing the others of its batch', async () => {
    const good = path.join(dir, 'good');
    const results = await Promise.allSettled([
      io.append(good, 'a\n', 0o644),
      io.append(path.join(dir, 'no-such-folder', 'x'), 'b\n', 0o644),
      io.append(good, 'c\n', 0o644),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    const err = (results[1] as PromiseRejectedResult).reason as IoError;
    assert.ok(err instanceof IoError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(await readFile(good, 'utf8'), 'a\nc\n');
  });

  it('writes whole files in order, stopping at the first that fails (exclusive ones refuse an existing file)', async () => {
    const a = path.join(dir, 'w-a');
    const b = path.join(dir, 'w-b');
    const c = path.join(dir, 'w-c');
    await io.writeFiles([
      { path: a, data: '', mode: 0o664, exclusive: true },
      { path: b, data: '{"ID":"b"}', mode: 0o644, exclusive: true },
    ]);
    assert.equal(await readFile(a, 'utf8'), '');
    assert.equal(await readFile(b, 'utf8'), '{"ID":"b"}');
    await assert.rejects(
      io.writeFiles([
        { path: b, data: 'replaced', mode: 0o644 },
        { path: a, data: 'not allowed', mode: 0o644, exclusive: true },
        { path: c, data: 'never written', mode: 0o644 },
      ]),
      (e: IoError) => e.code === 'EEXIST',
    );
    assert.equal(await readFile(b, 'utf8'), 'replaced', 'a non-exclusive write replaces');
    assert.equal(await readFile(a, 'utf8'), '', 'the exclusive write left the file alone');
    await assert.rejects(stat(c), { code: 'ENOENT' }, 'nothing after the failure is written');
  });

  it('writes a file atomically through a temporary name renamed into place', async () => {
    const info = path.join(dir, 'atomic.info');
    await io.writeFiles([{ path: info, data: '{"v":1}', mode: 0o644, atomic: true }]);
    await io.writeFiles([{ path: info, data: '{"v":2}', mode: 0o644, atomic: true }]);
    assert.equal(await readFile(info, 'utf8'), '{"v":2}');
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('atomic.info.')), [], 'no temporary file left');
    await assert.rejects(io.writeFiles([{ path: path.join(dir, 'missing-dir', 'x.info'), data: '{}', mode: 0o644, atomic: true }]), (e: IoError) => e.code === 'ENOENT');
  });

  it('copies a file with its sha256, through a temporary name that is gone afterwards', async () => {
    const src = path.join(dir, 'src.bin');
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await writeFile(src, data);
    const to = path.join(dir, 'copy.bin');
    const result = await io.copy(src, path.join(dir, '.copy.part'), to, data.length, 0o644);
    assert.deepEqual(result, { bytes: data.length, sha256: sha256(data) });
    assert.ok((await readFile(to)).equals(data));
    assert.deepEqual(await io.hash(to), { bytes: data.length, sha256: sha256(data) }, 'hash reads the copy back');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.part')), []);
  });

  it('copies a large file through the pipelined path (read, hash and write overlapping) with the same result', async () => {
    const src = path.join(dir, 'large.bin');
    // Above PIPELINED_COPY, and not a whole number of 1 MiB chunks, so the last chunk is short.
    const data = Buffer.alloc(PIPELINED_COPY + 5 * 1024 * 1024 + 12345);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 20)) & 0xff;
    await writeFile(src, data);
    const to = path.join(dir, 'large-copy.bin');
    const copying = io.copy(src, path.join(dir, '.large.part'), to, data.length, 0o644);
    assert.equal(io.copyBytes, data.length, 'a copy in hand weighs its size (admission counts it)');
    const result = await copying;
    assert.equal(io.copyBytes, 0);
    assert.deepEqual(result, { bytes: data.length, sha256: sha256(data) });
    assert.ok((await readFile(to)).equals(data), 'every chunk is written once, in order');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.part')), []);
  });

  it('reuses its copy buffers: large copies asked for at once, of different contents and sizes, each come out exact', async () => {
    const files = [0, 1, 2].map((k) => {
      const data = Buffer.alloc(PIPELINED_COPY + (k + 1) * 1024 * 1024 + 777 * k);
      for (let i = 0; i < data.length; i++) data[i] = (i * (k + 3) + k) & 0xff;
      return { src: path.join(dir, `reuse-${k}.bin`), to: path.join(dir, `reuse-${k}-copy.bin`), data };
    });
    for (const f of files) await writeFile(f.src, f.data);
    const results = await Promise.all(files.map((f, k) => io.copy(f.src, path.join(dir, `.reuse-${k}.part`), f.to, f.data.length, 0o644)));
    for (const [k, f] of files.entries()) {
      assert.deepEqual(results[k], { bytes: f.data.length, sha256: sha256(f.data) });
      assert.ok((await readFile(f.to)).equals(f.data), `copy ${k} holds its own bytes, none of another copy's`);
    }
  });

  it('refuses a large copy whose size is not the expected one, leaving the destination as it was and no temporary file', async () => {
    const src = path.join(dir, 'large-sized.bin');
    const size = PIPELINED_COPY + 3 * 1024 * 1024;
    await writeFile(src, Buffer.alloc(size, 1));
    const to = path.join(dir, 'large-kept');
    await writeFile(to, 'previous copy');
    await assert.rejects(io.copy(src, path.join(dir, '.lk.a.part'), to, size + 1, 0o644), (e: IoError) => e.code === 'ESIZE' && new RegExp(`expected ${size + 1} bytes, the source sent ${size}$`).test(e.message));
    const shorter = PIPELINED_COPY + 1;
    await assert.rejects(io.copy(src, path.join(dir, '.lk.b.part'), to, shorter, 0o644), (e: IoError) => e.code === 'ESIZE' && /the source sent at least/.test(e.message));
    assert.equal(await readFile(to, 'utf8'), 'previous copy');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.part')), []);
    assert.equal(io.copyBytes, 0, 'failed copies are no longer counted');
    // The thread is still usable after the failures.
    const after = path.join(dir, 'large-after');
    assert.deepEqual(await io.copy(src, path.join(dir, '.lk.c.part'), after, size, 0o644), { bytes: size, sha256: sha256(Buffer.alloc(size, 1)) });
  });

  it('copies an empty file', async () => {
    const src = path.join(dir, 'empty');
    await writeFile(src, '');
    const result = await io.copy(src, path.join(dir, '.empty.part'), path.join(dir, 'empty-copy'), 0, 0o644);
    assert.deepEqual(result, { bytes: 0, sha256: sha256('') });
  });

  it('refuses a copy whose size is not the expected one, leaving the destination as it was and no temporary file', async () => {
    const src = path.join(dir, 'sized');
    await writeFile(src, '0123456789');
    const to = path.join(dir, 'kept');
    await writeFile(to, 'previous copy');
    await assert.rejects(io.copy(src, path.join(dir, '.kept.a.part'), to, 4, 0o644), (e: IoError) => e.code === 'ESIZE' && /expected 4 bytes, the source sent at least 10/.test(e.message));
    await assert.rejects(io.copy(src, path.join(dir, '.kept.b.part'), to, 20, 0o644), /expected 20 bytes, the source sent 10/);
    await assert.rejects(io.copy(path.join(dir, 'missing'), path.join(dir, '.kept.c.part'), to, 1, 0o644), (e: IoError) => e.code === 'ENOENT');
    assert.equal(await readFile(to, 'utf8'), 'previous copy');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('.part')), []);
  });

  it('runs its threads at the lower priority asked for (Linux nice value)', async () => {
    // The threads are up once an operation has run; the event loop's thread keeps its own priority.
    await io.append(path.join(dir, 'nice'), 'x\n', 0o644);
    const values = await threadNiceValues();
    assert.equal(values[0], 0, 'the main thread is first and keeps nice 0');
    assert.equal(values.filter((v) => v === 5).length, 2, `two threads at nice 5, got ${values.join(',')}`);
  });

  it('starts its threads only when asked to (start) or at the first operation, and none after close', async () => {
    // A process may exit (a refused configuration) right after creating it: no thread may be starting then.
    let idle: IoThread | undefined;
    assert.equal(await threadsStartedBy(() => (idle = new IoThread({ threads: 2 }))), 0);
    assert.equal(await threadsStartedBy(() => idle!.close()), 0, 'closing one never started starts none');
    await assert.rejects(idle!.append(path.join(dir, 'after-close'), 'x', 0o644), /closed/);

    const started = new IoThread({ threads: 2 });
    assert.equal(await threadsStartedBy(() => started.start()), 2);
    await started.close();
    const lazy = new IoThread();
    const file = path.join(dir, 'lazy');
    await writeFile(file, 'abc');
    assert.equal(await threadsStartedBy(async () => assert.equal((await lazy.hash(file)).sha256, sha256('abc'))), 1);
    await lazy.close();
  });

  it('close lets operations asked for just before it finish', async () => {
    const other = new IoThread();
    const f = path.join(dir, 'late');
    const write = other.append(f, 'written before close\n', 0o644);
    await other.close();
    await write;
    assert.equal(await readFile(f, 'utf8'), 'written before close\n');
  });
});
