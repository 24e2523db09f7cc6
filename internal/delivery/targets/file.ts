// Delivery to a local folder (dex-pipeline.md §4.3): `<path>/<p>`, written under a temporary name in the same
// folder and renamed into place, so a half-written or wrong-sized file never appears at the final path.
import { randomUUID } from 'node:crypto';
import type { TargetConfig } from '../config.js';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../logging/logger.js';
import { HashingCounter, SizeMismatchError } from './hashing.js';
import { assertRelativePath, UnsafePathError } from './safe-path.js';
import type { DeliveryRequest, DeliveryResult, DeliveryTarget } from './target.js';

/** The deliver.yml fields of a `file` target, as parsed by internal/delivery/config.ts (without `type`). */
export type FileTargetConfig = Omit<Extract<TargetConfig, { type: 'file' }>, 'type'>;

export class FileTarget implements DeliveryTarget {
  readonly name: string;
  readonly healthName: string;
  private readonly root: string;
  private readonly log: Logger;
  private readonly madeDirs = new Set<string>();

  constructor(cfg: FileTargetConfig, log: Logger) {
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
    const dest = this.destination(req.path);
    const dir = path.dirname(dest);
    // A dot-name in the destination folder: same filesystem, so the rename is atomic. The name is shortened so
    // that it stays within the file system's name length limit.
    const temp = path.join(dir, `.${path.basename(dest).slice(0, 120)}.${randomUUID()}.part`);
    const counter = new HashingCounter(req.size);
    try {
      // Folders made before are not made again (a recursive mkdir of an existing folder costs two calls); one that
      // vanished makes this attempt fail and is made again by the retry.
      if (!this.madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true, mode: 0o755 });
        if (this.madeDirs.size >= 1024) this.madeDirs.clear();
        this.madeDirs.add(dir);
      }
      await pipeline(req.body, counter, createWriteStream(temp, { flags: 'w', mode: 0o644 }));
      const written = (await stat(temp)).size;
      if (written !== req.size) throw new SizeMismatchError(req.size, written, 'the written file has');
      await rename(temp, dest);
    } catch (err) {
      this.madeDirs.delete(dir);
      req.body.destroy();
      await unlink(temp).catch(() => undefined);
      this.log.warn({ location: dest, err: (err as Error).message }, 'file delivery failed');
      throw new Error(`failed to write file ${dest}: ${(err as Error).message}`, { cause: err });
    }
    this.log.debug({ location: dest, bytes: counter.bytes }, 'file delivered');
    return { location: dest, sha256: counter.sha256, bytes: counter.bytes };
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
