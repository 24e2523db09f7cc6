// Whole-file operations that an I/O thread runs with synchronous calls (internal/fsutil/io-thread.ts). Kept apart
// from the thread code so that both sides share one definition and the worker stays small.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';

/**
 * A whole file to write: `exclusive` fails with EEXIST when it exists; `append` adds `data` at its end (creating it);
 * else it is replaced; `atomic` writes a
 * temporary file beside it and renames it into place, so that a crash never leaves it torn. `whileExists`: the file
 * is kept only if that one still exists once it is written (an upload's info is not brought back after the upload
 * was removed meanwhile); otherwise it is removed again and the write fails with ENOENT.
 */
export interface FileToWrite {
  path: string;
  data: string | Uint8Array;
  mode: number;
  exclusive?: boolean;
  append?: boolean;
  atomic?: boolean;
  whileExists?: string;
}

/** The ENOENT error of a `whileExists` file found gone. */
export function goneError(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: ${file} no longer exists`), { code: 'ENOENT' });
}

/** The open flag of a non-atomic write (an atomic one always writes a new temporary file). */
export const writeFlag = (f: FileToWrite): string => (f.exclusive ? 'wx' : f.append ? 'a' : 'w');

function writeWhole(f: FileToWrite): void {
  writeOnly(f);
  if (f.whileExists !== undefined && !fs.existsSync(f.whileExists)) {
    fs.rmSync(f.path, { force: true });
    throw goneError(f.whileExists);
  }
}

function writeOnly(f: FileToWrite): void {
  if (!f.atomic) {
    fs.writeFileSync(f.path, f.data, { mode: f.mode, flag: writeFlag(f) });
    return;
  }
  const tmp = `${f.path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, f.data, { mode: f.mode, flag: 'wx' });
    fs.renameSync(tmp, f.path);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

export type IoOp =
  /** Appends `data` (creating the file with `mode`). */
  | { op: 'append'; path: string; data: string; mode: number }
  /**
   * Copies `from` to a new file `temp` while hashing it (sha256), checks that exactly `size` bytes were read and
   * written, then renames `temp` to `to`; on any failure `temp` is removed and `to` is left untouched.
   */
  | { op: 'copy'; from: string; temp: string; to: string; size: number; mode: number }
  /** Writes files one after the other, stopping at the first failure. */
  | { op: 'write'; files: FileToWrite[] }
  /** Reads a file through, hashing it (sha256). */
  | { op: 'hash'; path: string };

export interface CopyResult {
  bytes: number;
  sha256: string;
}

/** Either the operation's value (undefined for writes) or the error it failed with. */
export type IoResult = { value?: CopyResult } | { error: { code?: string; message: string } };

const COPY_CHUNK = 1024 * 1024;
// Two buffers per thread, allocated once and shared by every copy and hash: a thread runs one task at a time
// (piscina's concurrentTasksPerWorker 1) and a pipelined copy awaits its last write before it returns. Fresh buffers
// per copy would be garbage V8 frees only when its external-memory limit (~64 MiB) forces a collection.
const PIPELINE_BUFFERS = 2;
let threadBuffers: Buffer[] | undefined;
const buffers = (): Buffer[] => (threadBuffers ??= Array.from({ length: PIPELINE_BUFFERS }, () => Buffer.allocUnsafe(COPY_CHUNK)));

/** Thrown by a copy whose byte count is not the expected size. */
export class CopySizeError extends Error {
  readonly code = 'ESIZE';
}

type CopyOp = Extract<IoOp, { op: 'copy' }>;

/** The checks and the rename every copy ends with; `temp` is removed on any failure and `to` left untouched. */
function checkedCopy<R extends CopyResult | Promise<CopyResult>>(o: CopyOp, body: (input: number, output: number) => R): R {
  const input = fs.openSync(o.from, 'r');
  let output: number | undefined;
  const fail = (err: unknown): never => {
    if (output !== undefined) fs.closeSync(output);
    try {
      fs.unlinkSync(o.temp);
    } catch {
      /* never created, or already gone */
    }
    fs.closeSync(input);
    throw err;
  };
  const finish = (r: CopyResult): CopyResult => {
    try {
      if (r.bytes !== o.size) throw new CopySizeError(`size mismatch: expected ${o.size} bytes, the source sent ${r.bytes}`);
      const written = fs.fstatSync(output!).size;
      if (written !== o.size) throw new CopySizeError(`size mismatch: expected ${o.size} bytes, the written file has ${written}`);
      fs.closeSync(output!);
      output = undefined;
      fs.renameSync(o.temp, o.to);
    } catch (err) {
      return fail(err);
    }
    fs.closeSync(input);
    return r;
  };
  let r: R;
  try {
    output = fs.openSync(o.temp, 'wx', o.mode);
    r = body(input, output);
  } catch (err) {
    return fail(err);
  }
  return (r instanceof Promise ? r.then(finish, fail) : finish(r)) as R;
}

/** Reads a copy's source chunk by chunk, hashing it and refusing more bytes than the expected size. */
class HashedReader {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(
    private readonly o: CopyOp,
    private readonly input: number,
  ) {}

  /** The next chunk, read into `buf`; undefined at the end of the file. */
  next(buf: Buffer): Buffer | undefined {
    const n = fs.readSync(this.input, buf, 0, buf.length, null);
    if (n === 0) return undefined;
    this.bytes += n;
    if (this.bytes > this.o.size) throw new CopySizeError(`size mismatch: expected ${this.o.size} bytes, the source sent at least ${this.bytes}`);
    const chunk = buf.subarray(0, n);
    this.hash.update(chunk);
    return chunk;
  }

  result(): CopyResult {
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/** Small files: read, hashed and written in turn with synchronous calls (no hand-off at all). */
function copySync(o: CopyOp): CopyResult {
  return checkedCopy(
    o,
    (input, output) => {
      const buf = buffers()[0]!;
      const read = new HashedReader(o, input);
      for (let chunk = read.next(buf); chunk; chunk = read.next(buf)) {
        for (let off = 0; off < chunk.length; ) off += fs.writeSync(output, chunk, off, chunk.length - off);
      }
      return read.result();
    },
  );
}

async function writeAll(fd: number, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    off += await new Promise<number>((resolve, reject) => fs.write(fd, buf, off, buf.length - off, (err, n) => (err ? reject(err) : resolve(n))));
  }
}

/**
 * Large files: each chunk is read and hashed on this thread (the buffer is still in this core's cache for the hash)
 * while libuv's thread pool writes the previous one, so the write, nearly half of a copy's time, overlaps the rest.
 */
async function copyPipelined(o: CopyOp): Promise<CopyResult> {
  return checkedCopy(
    o,
    async (input, output) => {
      // The buffers in turn: one read and hashed here while the other is being written.
      const bufs = buffers();
      const read = new HashedReader(o, input);
      let writing: Promise<void> = Promise.resolve();
      try {
        // Each buffer's last write (two chunks ago) was awaited in the previous turn: it is free to read into.
        for (let i = 0, chunk = read.next(bufs[0]!); chunk; chunk = read.next(bufs[++i % PIPELINE_BUFFERS]!)) {
          await writing;
          writing = writeAll(output, chunk);
          // It may fail before it is awaited: the failure is then handled where it is awaited next.
          writing.catch(() => undefined);
        }
        await writing;
      } finally {
        // Nothing may still use the descriptors when the caller closes them (a closed number can be reused at once).
        await writing.catch(() => undefined);
      }
      return read.result();
    },
  );
}

function hashFile(file: string): CopyResult {
  const buf = buffers()[0]!;
  const hash = createHash('sha256');
  let bytes = 0;
  const input = fs.openSync(file, 'r');
  try {
    for (let n = fs.readSync(input, buf, 0, buf.length, null); n > 0; n = fs.readSync(input, buf, 0, buf.length, null)) {
      bytes += n;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(input);
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Copies of more than this are pipelined (copyPipelined); below, the hand-offs would cost more than they save. */
export const PIPELINED_COPY = 4 * COPY_CHUNK;

export function runOp(o: IoOp): IoResult | Promise<IoResult> {
  try {
    switch (o.op) {
      case 'append':
        fs.appendFileSync(o.path, o.data, { mode: o.mode });
        return {};
      case 'write':
        for (const f of o.files) writeWhole(f);
        return {};
      case 'copy':
        if (o.size > PIPELINED_COPY) return copyPipelined(o).then((value) => ({ value }), asResult);
        return { value: copySync(o) };
      case 'hash':
        return { value: hashFile(o.path) };
    }
  } catch (err) {
    return asResult(err);
  }
}

function asResult(err: unknown): IoResult {
  const e = err as NodeJS.ErrnoException;
  return { error: { code: e.code, message: e.message } };
}

/** What the thread runs per task: a batch, in order, each operation independent of the others' failures. */
export async function runBatch(ops: IoOp[]): Promise<IoResult[]> {
  const results: IoResult[] = [];
  for (const o of ops) {
    const r = runOp(o);
    results.push(r instanceof Promise ? await r : r);
  }
  return results;
}
