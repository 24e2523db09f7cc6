import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { openFd, readFile, statFile, writeFilesInOrder, type FilesWriter } from '../../fsutil/fast-fs.js';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  collectArrived,
  CorruptInfoError,
  hasArrived,
  newInfo,
  NotFoundError,
  parseManifest,
  STALE_TEMPORARY_MS,
  type ChunkStager,
  type Concater,
  type CreatorWithData,
  type DataStore,
  type InfoUpdater,
  type LocalFiles,
  type LengthDeclarer,
  type ManifestKeeper,
  type Lister,
  type NewUpload,
  type StagedChunk,
  type Terminater,
  type Upload,
  type UploadInfo,
} from '../store.js';

export interface FileStoreOptions {
  /** `<LOCAL_FOLDER_UPLOADS_TUS>` : checked by /health. */
  root: string;
  /** `<LOCAL_FOLDER_UPLOADS_TUS>/<TUS_UPLOAD_PREFIX>` : where `<id>` and `<id>.info` live. */
  directory: string;
  /** Flush data to disk before a write is acknowledged. */
  fsync: boolean;
  /** Writes the files of a new upload (default: libuv's thread pool; the server uses an I/O thread of its own). */
  writeFiles?: FilesWriter;
  /**
   * Other instances write the same folder (several servers behind a load balancer, with the Redis locker): what this
   * process remembers of an upload is checked against the files on every read, and start-up leaves young temporary
   * files alone (they may be another instance's request in progress).
   */
  shared?: boolean;
  /**
   * Shared folder: a mark that stays the same exactly as long as this instance keeps the upload's lock (undefined
   * when it does not). Bytes this process counted under an unchanged mark are still all there is: no stat needed.
   */
  heldMark?: (id: string) => number | undefined;
}

// Ids are server-generated, but a store never trusts its caller with a path.
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
// While one write is with the thread pool, up to this much of the body waits and then goes in one writev: with many
// uploads at once, 16 KiB let every socket read cost a thread-pool hand-off of its own (64 × 16 MiB in 1 MiB PATCHes:
// 0.73-0.80 of the bare baseline against 0.87-0.91 with 256 KiB). Still a constant amount per upload.
const WRITE_HWM = 256 * 1024;
// A body up to this size that has fully arrived is written in one piece, with the creation or as one append.
const SMALL_BODY = 64 * 1024;
const EMPTY = Buffer.alloc(0);
// Whole finished uploads are read back (hashing, delivery) in large chunks: 64 times fewer reads than 16 KiB.
const READ_HWM = 1024 * 1024;
// Enough for every upload in progress on a busy server; finished ones are looked up again from their files when asked.
const CACHE_LIMIT = 2048;

interface CachedState {
  info: UploadInfo;
  /** Shared folder: identity of the `.info` file the info was read from (it is replaced by rename when rewritten). */
  stamp?: string;
  /** Shared folder: the lock's mark under which `offset` was known (see FileStoreOptions.heldMark). */
  mark?: number;
  /** Bytes on disk, known because this process wrote them; undefined = ask the file system. */
  offset?: number;
  lastChunkAt?: number;
}

/**
 * tusd-compatible file store: `<dir>/<id>` holds the bytes, `<dir>/<id>.info` the JSON state. The offset is the
 * data file's size, so it can never run ahead of what is really stored, whatever happens to the process.
 */
export class FileStore
  implements DataStore, CreatorWithData, Terminater, Concater, LengthDeclarer, ChunkStager, Lister, InfoUpdater, LocalFiles, ManifestKeeper
{
  readonly healthName = 'File Storage';
  private readonly dir: string;
  // Alone, this process is the only writer of its store (uploads are locked while written), so the parsed info and
  // the offset it wrote are cached between requests instead of re-reading `.info` and stat-ing the data on every
  // HEAD. In a shared folder another instance may have written either since: the offset is always the data file's
  // size, and the cached info is used only while its `.info` is the same file.
  private readonly cache = new Map<string, CachedState>();

  private readonly writeFiles: FilesWriter;

  constructor(private readonly opts: FileStoreOptions) {
    this.dir = path.resolve(opts.directory);
    this.writeFiles = opts.writeFiles ?? writeFilesInOrder;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    // Staged chunks and half-written infos of a crashed process are never part of an upload (in a shared folder,
    // only old ones: a young one may be another instance's request in progress).
    const names = (await readdir(this.dir)).filter((n) => /\.chunk-[0-9a-f]+$|\.info\.[0-9a-f]+\.tmp$/.test(n));
    const staleBefore = Date.now() - STALE_TEMPORARY_MS;
    await Promise.all(
      names.map(async (n) => {
        const file = path.join(this.dir, n);
        if (this.opts.shared) {
          const s = await stat(file).catch(() => null);
          if (!s || s.mtimeMs >= staleBefore) return;
        }
        await rm(file, { force: true });
      }),
    );
  }

  async health(): Promise<void> {
    const s = await stat(this.opts.root);
    if (!s.isDirectory()) throw new Error(`${this.opts.root} is not a directory`);
  }

  /** Resolves a file of an upload, refusing anything that would leave the store's directory. */
  private file(id: string, suffix = ''): string {
    if (!SAFE_ID.test(id)) throw new NotFoundError(id);
    const p = path.join(this.dir, id + suffix);
    if (path.dirname(p) !== this.dir) throw new NotFoundError(id);
    return p;
  }

  localPath(id: string): string {
    return this.file(id);
  }

  create(u: NewUpload): Promise<Upload> {
    return this.createWithData(u, EMPTY);
  }

  /** Bodies written in one piece (at creation, or as one append); none on a store that flushes every write. */
  get maxCreateData(): number {
    return this.opts.fsync ? 0 : SMALL_BODY;
  }

  async createWithData(u: NewUpload, data: Buffer): Promise<Upload> {
    const info = newInfo(u, { Type: 'filestore', Path: this.file(u.id) });
    // A new `.info` needs no rename: until it is complete no response has named the upload.
    await this.writeFiles([
      { path: this.file(u.id), data, mode: 0o664, exclusive: true },
      { path: this.file(u.id, '.info'), data: JSON.stringify(info), mode: 0o644, exclusive: true },
    ]);
    this.remember({
      info,
      offset: this.opts.shared ? undefined : data.length,
      ...(data.length > 0 ? { lastChunkAt: Date.now() } : {}),
    });
    return new FileUpload(this, u.id);
  }

  async get(id: string): Promise<Upload> {
    // Shared folder: an upload remembered here is checked by getInfo (which every caller makes next), not twice.
    if (!this.opts.shared || !this.cache.has(id)) await this.state(id);
    return new FileUpload(this, id);
  }

  async readInfo(id: string): Promise<UploadInfo> {
    return (await this.state(id)).info;
  }

  private async state(id: string): Promise<CachedState> {
    const cached = this.cache.get(id);
    if (!this.opts.shared) return cached ?? this.load(id);
    // Stat first, then read: what is read is at least as new as the stamp, so a newer file is never taken for it.
    const stamp = await this.infoStamp(id);
    if (cached?.stamp === stamp) return cached;
    return this.load(id, stamp);
  }

  private async infoStamp(id: string): Promise<string> {
    try {
      const s = await statFile(this.file(id, '.info'));
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.cache.delete(id);
      throw new NotFoundError(id);
    }
  }

  private async load(id: string, stamp?: string): Promise<CachedState> {
    let info: UploadInfo;
    try {
      info = JSON.parse(await readFile(this.file(id, '.info'), 'utf8')) as UploadInfo;
    } catch (err) {
      // Missing, or torn by a crash during creation (that upload was never acknowledged).
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof NotFoundError) throw new NotFoundError(id);
      if (err instanceof SyntaxError) throw new CorruptInfoError(id);
      throw err;
    }
    info.CreatedAt ??= 0;
    return this.remember({ info, stamp });
  }

  private remember(state: CachedState): CachedState {
    if (this.cache.size >= CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(state.info.ID, state);
    return state;
  }

  /** Atomic replace, so a crash never leaves a torn `.info`; none is left behind if the upload was removed meanwhile. */
  private async writeInfo(info: UploadInfo): Promise<void> {
    try {
      await this.writeFiles([{ path: this.file(info.ID, '.info'), data: JSON.stringify(info), mode: 0o644, atomic: true, whileExists: this.file(info.ID) }]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.cache.delete(info.ID);
      throw new NotFoundError(info.ID);
    }
    const cached = this.cache.get(info.ID);
    if (cached) cached.info = info;
    else this.remember({ info });
  }

  async currentInfo(id: string): Promise<UploadInfo> {
    if (this.opts.shared) {
      // After creation an info changes only when a deferred length is declared, and when the finished upload's sha256
      // is kept (ids are never reused): one that can change neither way is not looked at again, the size is enough.
      const settled = (c: CachedState | undefined, size: number): c is CachedState =>
        !!c && !c.info.SizeIsDeferred && (c.info.Sha256 !== undefined || size < c.info.Size);
      const mark = this.opts.heldMark?.(id);
      const cached = this.cache.get(id);
      if (mark !== undefined && cached?.mark === mark && cached.offset !== undefined && settled(cached, cached.offset)) {
        return { ...cached.info, Offset: cached.offset, LastChunkAt: cached.lastChunkAt ?? 0 };
      }
      const data = await this.dataStat(id);
      const state = settled(cached, data.size) ? cached : await this.state(id);
      Object.assign(state, { offset: data.size, lastChunkAt: data.size > 0 ? data.mtimeMs : 0, mark });
      return { ...state.info, Offset: data.size, LastChunkAt: state.lastChunkAt };
    }
    const state = await this.state(id);
    if (state.offset === undefined) {
      const s = await this.dataStat(id);
      state.offset = s.size;
      state.lastChunkAt = s.size > 0 ? s.mtimeMs : 0;
    }
    return { ...state.info, Offset: state.offset, LastChunkAt: state.lastChunkAt ?? 0 };
  }

  private async dataStat(id: string) {
    try {
      return await statFile(this.file(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(id);
      throw err;
    }
  }

  /** `expected`: the bytes the body brings if it is not cut short (its Content-Length), when known. */
  async append(id: string, body: Readable, expected?: number): Promise<number> {
    const state = this.cache.get(id);
    let written: number;
    try {
      written = await (this.isSmallArrived(body, expected) ? this.appendArrived(id, body) : this.appendStreamed(id, body));
    } catch (err) {
      // Some bytes may be on disk: the file system knows how many.
      if (state) state.offset = undefined;
      throw err;
    }
    if (state && state.offset !== undefined && (!this.opts.shared || state.mark === this.opts.heldMark?.(id))) {
      state.offset += written;
      if (written > 0) state.lastChunkAt = Date.now();
    }
    return written;
  }

  /**
   * A small body already received in full goes in one whole-file append by the files writer: one hand-off (to the
   * server's I/O thread) instead of the write stream's three to libuv's pool (open, write, close), which were a
   * fifth of the main thread's time with many small uploads. A body still arriving streams, so that its progress is
   * on disk as it comes (a HEAD meanwhile, or a connection cut, sees every byte received so far).
   */
  private isSmallArrived(body: Readable, expected: number | undefined): boolean {
    return expected !== undefined && expected <= this.maxCreateData && hasArrived(body);
  }

  private async appendArrived(id: string, body: Readable): Promise<number> {
    // A buffer of its own: a chunk is a view into the socket's larger read buffer, and handing a view to the I/O
    // thread would copy the whole buffer under it.
    const data = await collectArrived(body);
    if (data.length > 0) await this.writeFiles([{ path: this.file(id), data, mode: 0o664, append: true }]);
    return data.length;
  }

  private async appendStreamed(id: string, body: Readable): Promise<number> {
    const out = createWriteStream(this.file(id), { flags: 'a', highWaterMark: WRITE_HWM, flush: this.opts.fsync });
    await pipeline(body, out);
    return out.bytesWritten;
  }

  async updateInfo(id: string, patch: Partial<UploadInfo>): Promise<void> {
    const info = await this.readInfo(id);
    // Terminated meanwhile (e.g. a hash kept after the client deleted its upload): writeInfo does not bring it back.
    await this.writeInfo({ ...info, ...patch, ID: id });
  }

  async declareLength(id: string, length: number): Promise<void> {
    await this.updateInfo(id, { Size: length, SizeIsDeferred: false });
  }

  async terminate(id: string): Promise<void> {
    this.cache.delete(id);
    await Promise.all(['', '.info', '.meta'].map((s) => rm(this.file(id, s), { force: true })));
  }

  async concat(finalId: string, partialIds: string[]): Promise<void> {
    try {
      for (const pid of partialIds) {
        await pipeline(
          createReadStream(this.file(pid), { highWaterMark: WRITE_HWM }),
          createWriteStream(this.file(finalId), { flags: 'a', highWaterMark: WRITE_HWM, flush: this.opts.fsync }),
        );
      }
    } finally {
      const state = this.cache.get(finalId);
      if (state) state.offset = undefined;
    }
  }

  async stageChunk(id: string, body: Readable): Promise<StagedChunk> {
    const staged = this.file(id, `.chunk-${randomBytes(6).toString('hex')}`);
    const out = createWriteStream(staged, { highWaterMark: WRITE_HWM, flags: 'wx' });
    await pipeline(body, out);
    const bytes = out.bytesWritten;
    return {
      bytes,
      commit: async () => {
        try {
          await this.currentInfo(id);
          await this.append(id, createReadStream(staged, { highWaterMark: WRITE_HWM }));
        } finally {
          await rm(staged, { force: true });
        }
        return (await this.currentInfo(id)).Offset;
      },
      discard: () => rm(staged, { force: true }),
    };
  }

  /** `<id>.meta`: a flat JSON object of strings, written by the request I/O thread. */
  async writeManifest(id: string, manifest: Record<string, string>): Promise<void> {
    await this.writeFiles([{ path: this.file(id, '.meta'), data: JSON.stringify(manifest), mode: 0o644 }]);
  }

  async readManifest(id: string): Promise<Record<string, string>> {
    let text: string;
    try {
      text = await readFile(this.file(id, '.meta'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(id);
      throw err;
    }
    return parseManifest(id, text);
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names
      .filter((n) => n.endsWith('.info'))
      .map((n) => n.slice(0, -'.info'.length))
      .filter((id) => SAFE_ID.test(id));
  }

  /** Opens the data now (not lazily), so the stream keeps working even if the upload is removed meanwhile. */
  async read(id: string): Promise<Readable> {
    const { Offset } = await this.currentInfo(id);
    const fd = await openFd(this.file(id), 'r');
    // Each read allocates a buffer of the whole high-water mark, so a small upload gets a small one.
    return createReadStream('', { fd, highWaterMark: Math.max(1024, Math.min(READ_HWM, Offset)) });
  }
}

class FileUpload implements Upload {
  constructor(
    private readonly store: FileStore,
    readonly id: string,
  ) {}

  getInfo(): Promise<UploadInfo> {
    return this.store.currentInfo(this.id);
  }

  writeChunk(_offset: number, body: Readable, expectedBytes?: number): Promise<number> {
    // Offsets are checked by the core under the upload's lock; appending keeps the file equal to what arrived.
    return this.store.append(this.id, body, expectedBytes);
  }

  read(): Promise<Readable> {
    return this.store.read(this.id);
  }
}
