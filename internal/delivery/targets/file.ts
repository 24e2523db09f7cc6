// Delivery to a local folder (dex-pipeline.md §4.3): `<path>/<p>`, written under a temporary name in the same
// folder and renamed into place, so a half-written or wrong-sized file never appears at the final path.
import { randomUUID } from 'node:crypto';
import type { TargetConfig } from '../config.js';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../logging/logger.js';
import { HashingCounter, SizeMismatchError } from './hashing.js';
import { assertRelativePath, UnsafePathError } from './safe-path.js';
import type { DeliveryRequest, DeliveryResult, DeliveryTarget, FileDeliveryRequest } from './target.js';
import type { IoThread } from '../../fsutil/io-thread.js';

/** Read size when a local file is streamed without a copier thread. */
const COPY_CHUNK = 1024 * 1024;

/** The deliver.yml fields of a `file` target, as parsed by internal/delivery/config.ts (without `type`). */
export type FileTargetConfig = Omit<Extract<TargetConfig, { type: 'file' }>, 'type'>;

export class FileTarget implements DeliveryTarget {
  readonly name: string;
  readonly healthName: string;
  private readonly root: string;
  private readonly log: Logger;
  private readonly madeDirs = new Set<string>();

  /** `copier`: the thread that copies local files (without one they are streamed on the event loop). */
  constructor(
    cfg: FileTargetConfig,
    log: Logger,
    private readonly copier?: IoThread,
  ) {
    this.name = cfg.name;
    this.healthName = `File Delivery Target ${cfg.name}`;
    this.root = cfg.path;
    this.log = log.child({ target: cfg.name, targetType: 'file' });
  }

  /** Creates the root folder, so that a fresh install's /health is UP before the first delivery (decisions.md). */
  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o755 });
  }

  /** The destination for `p`: the joined, cleaned path (no leading `./`), which must stay inside the root. */
  destination(p: string): string {
    assertRelativePath(p);
    const joined = path.join(this.root, p);
    const rel = path.relative(path.resolve(this.root), path.resolve(joined));
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) throw new UnsafePathError(p, 'the path leaves the target folder');
    return joined;
  }

  async deliver(req: DeliveryRequest): Promise<DeliveryResult> {
    return this.write(req.path, async (temp, dest) => {
      const counter = new HashingCounter(req.size);
      try {
        await pipeline(req.body, counter, createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
        const written = (await stat(temp)).size;
        if (written !== req.size) throw new SizeMismatchError(req.size, written, 'the written file has');
        await rename(temp, dest);
      } catch (err) {
        req.body.destroy();
        await unlink(temp).catch(() => undefined);
        throw err;
      }
      return { sha256: counter.sha256, bytes: counter.bytes };
    });
  }

  /** A local file is copied by the copier thread (read, hashed, written, checked and renamed there). */
  async deliverFile(req: FileDeliveryRequest): Promise<DeliveryResult> {
    const copier = this.copier;
    if (!copier) {
      const body = createReadStream(req.file, { highWaterMark: Math.max(1024, Math.min(COPY_CHUNK, req.size)) });
      return this.deliver({ ...req, body });
    }
    return this.write(req.path, (temp, dest) => copier.copy(req.file, temp, dest, req.size, 0o644));
  }

  /**
   * The part both ways share: the destination folder, and a dot-name in it to write to (same filesystem, so the
   * final rename is atomic; the name is shortened to stay within the file system's name length limit).
   */
  private async write(p: string, copy: (temp: string, dest: string) => Promise<{ sha256: string; bytes: number }>): Promise<DeliveryResult> {
    const dest = this.destination(p);
    const dir = path.dirname(dest);
    const temp = path.join(dir, `.${path.basename(dest).slice(0, 120)}.${randomUUID()}.part`);
    let result;
    try {
      // Folders made before are not made again (a recursive mkdir of an existing folder costs two calls); one that
      // vanished makes this attempt fail and is made again by the retry.
      if (!this.madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true, mode: 0o755 });
        if (this.madeDirs.size >= 1024) this.madeDirs.clear();
        this.madeDirs.add(dir);
      }
      result = await copy(temp, dest);
    } catch (err) {
      this.madeDirs.delete(dir);
      this.log.warn({ location: dest, err: (err as Error).message }, 'file delivery failed');
      throw new Error(`failed to write file ${dest}: ${(err as Error).message}`, { cause: err });
    }
    this.log.debug({ location: dest, bytes: result.bytes }, 'file delivered');
    return { location: dest, ...result };
  }

  async health(): Promise<void> {
    let info;
    try {
      info = await stat(this.root);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(code === 'ENOENT' ? `stat ${this.root}: no such file or directory` : `stat ${this.root}: ${(err as Error).message}`);
    }
    if (!info.isDirectory()) throw new Error(`${this.root} is not a directory`);
  }
}
