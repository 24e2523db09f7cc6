// Whole-file operations that an I/O thread runs with synchronous calls (internal/fsutil/io-thread.ts). Kept apart
// from the thread code so that both sides share one definition and the worker stays small.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';

/**
 * A whole file to write: `exclusive` fails with EEXIST when it exists, else it is replaced; `atomic` writes a
 * temporary file beside it and renames it into place, so that a crash never leaves it torn. `whileExists`: the file
 * is kept only if that one still exists once it is written (an upload's info is not brought back after the upload
 * was removed meanwhile); otherwise it is removed again and the write fails with ENOENT.
 */
export interface FileToWrite {
  path: string;
  data: string;
  mode: number;
  exclusive?: boolean;
  atomic?: boolean;
  whileExists?: string;
}

/** The ENOENT error of a `whileExists` file found gone. */
export function goneError(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: ${file} no longer exists`), { code: 'ENOENT' });
}

function writeWhole(f: FileToWrite): void {
  writeOnly(f);
  if (f.whileExists !== undefined && !fs.existsSync(f.whileExists)) {
    fs.rmSync(f.path, { force: true });
    throw goneError(f.whileExists);
  }
}

function writeOnly(f: FileToWrite): void {
  if (!f.atomic) {
    fs.writeFileSync(f.path, f.data, { mode: f.mode, flag: f.exclusive ? 'wx' : 'w' });
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

// One buffer per thread: copies on a thread run one after the other.
const COPY_CHUNK = 1024 * 1024;
let copyBuffer: Buffer | undefined;

/** Thrown by a copy whose byte count is not the expected size. */
export class CopySizeError extends Error {
  readonly code = 'ESIZE';
}

function copy(o: Extract<IoOp, { op: 'copy' }>): CopyResult {
  const buf = (copyBuffer ??= Buffer.allocUnsafe(COPY_CHUNK));
  const hash = createHash('sha256');
  let bytes = 0;
  const input = fs.openSync(o.from, 'r');
  try {
    const output = fs.openSync(o.temp, 'wx', o.mode);
    try {
      for (;;) {
        const n = fs.readSync(input, buf, 0, buf.length, null);
        if (n === 0) break;
        bytes += n;
        if (bytes > o.size) throw new CopySizeError(`size mismatch: expected ${o.size} bytes, the source sent at least ${bytes}`);
        const chunk = buf.subarray(0, n);
        hash.update(chunk);
        for (let off = 0; off < n; ) off += fs.writeSync(output, chunk, off, n - off);
      }
      if (bytes !== o.size) throw new CopySizeError(`size mismatch: expected ${o.size} bytes, the source sent ${bytes}`);
      const written = fs.fstatSync(output).size;
      if (written !== o.size) throw new CopySizeError(`size mismatch: expected ${o.size} bytes, the written file has ${written}`);
    } finally {
      fs.closeSync(output);
    }
    fs.renameSync(o.temp, o.to);
  } catch (err) {
    try {
      fs.unlinkSync(o.temp);
    } catch {
      /* never created, or already gone */
    }
    throw err;
  } finally {
    fs.closeSync(input);
  }
  return { bytes, sha256: hash.digest('hex') };
}

function hashFile(file: string): CopyResult {
  const buf = (copyBuffer ??= Buffer.allocUnsafe(COPY_CHUNK));
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

export function runOp(o: IoOp): IoResult {
  try {
    switch (o.op) {
      case 'append':
        fs.appendFileSync(o.path, o.data, { mode: o.mode });
        return {};
      case 'write':
        for (const f of o.files) writeWhole(f);
        return {};
      case 'copy':
        return { value: copy(o) };
      case 'hash':
        return { value: hashFile(o.path) };
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { error: { code: e.code, message: e.message } };
  }
}

/** What the thread runs per task: a batch, in order, each operation independent of the others' failures. */
export function runBatch(ops: IoOp[]): IoResult[] {
  return ops.map(runOp);
}
