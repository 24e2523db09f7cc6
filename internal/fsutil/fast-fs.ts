// The whole-file helpers of node:fs/promises (appendFile, writeFile, readFile, open) each go through a FileHandle
// object, which costs about twice the CPU of the callback API (measured here: 10,000 small appends took 0.5–0.7 s
// of CPU against 0.3 s). Every upload makes a dozen such calls (info, manifest, reports, events, delivery), so the
// request path and the pipeline use these promisified callback versions instead.
import fs from 'node:fs';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { goneError, writeFlag, type FileToWrite } from './io-ops.js';

export const appendFile = promisify(fs.appendFile);

/** Appends text to a file, creating it with `mode`: fast-fs's appendFile by default, or an I/O thread's. */
export type TextAppender = (path: string, data: string, mode: number) => Promise<void>;
export const appendText: TextAppender = (p, data, mode) => appendFile(p, data, { mode });

/**
 * Writes whole files in order, stopping at the first failure (`exclusive`: fail with EEXIST if it exists; `atomic`:
 * through a temporary file renamed into place).
 */
export type FilesWriter = (files: FileToWrite[]) => Promise<void>;
export const writeFilesInOrder: FilesWriter = async (files) => {
  for (const f of files) {
    await writeOne(f);
    if (f.whileExists !== undefined && !(await exists(f.whileExists))) {
      await rm(f.path, { force: true });
      throw goneError(f.whileExists);
    }
  }
};
const exists = (p: string) => statFile(p).then(
  () => true,
  (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return false;
    throw err;
  },
);
async function writeOne(f: FileToWrite): Promise<void> {
  if (!f.atomic) {
    await writeFile(f.path, f.data, { mode: f.mode, flag: writeFlag(f) });
    return;
  }
  const tmp = `${f.path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, f.data, { mode: f.mode, flag: 'wx' });
    await rename(tmp, f.path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
export const writeFile = promisify(fs.writeFile);
export const readFile = promisify(fs.readFile);
export const openFd = promisify(fs.open);
/** Stat of the callback API (the shared-folder file store stats on every HEAD). */
export const statFile = promisify(fs.stat);
