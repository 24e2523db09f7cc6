import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../logging/logger.js';
import {
  NotFoundError,
  collectArrived,
  isChunkStager,
  isCreatorWithData,
  type DataStore,
  type Upload,
  type UploadInfo,
} from '../storage/store.js';
import { LockTimeoutError, type Lock, type Locker } from '../locking/locker.js';
import { BodyReader } from './body.js';
import { createDigest } from './checksum.js';
import { errors, TusError } from './errors.js';
import { HookChain, type HookEvent } from './hooks.js';
import { origin } from './location.js';
import { parseUint, single, type ChecksumHeader } from './headers.js';
import { TusStats } from './stats.js';

export interface TusOptions {
  basePath: string;
  maxSize: number;
  expirationMs: number;
  behindProxy: boolean;
  networkTimeoutMs: number;
  lockTimeoutMs: number;
  disableDownload: boolean;
  corsAllowOrigin: RegExp;
}

// Ids are server-generated lower-case UUID v4; anything else cannot name an upload.
export const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const SERVER_SHUTDOWN = errors.serverShutdown().code;

/** Something that can be asked to stop (a body being read, a request holding a lock). */
export interface Interruptible {
  interrupt(reason: TusError): void;
}

/** A request holding an upload's lock: why it was asked to stop (if it was), and the body it is reading now. */
export class LockHolder implements Interruptible {
  stopped: TusError | null = null;
  current: Interruptible | null = null;

  interrupt(reason: TusError): void {
    if (this.stopped) return;
    this.stopped = reason;
    this.current?.interrupt(reason);
  }
}

/** Everything the method handlers share: the store, the locker, the hooks and the options. */
export class TusCore {
  /** Requests holding a lock right now: shutdown interrupts them. */
  readonly active = new Set<Interruptible>();
  /** Plain-number counters for /metrics (requests, errors, bytes, uploads). */
  readonly stats = new TusStats();
  private shuttingDown = false;

  constructor(
    readonly store: DataStore,
    readonly locker: Locker,
    readonly hooks: HookChain,
    readonly opts: TusOptions,
    readonly log: Logger,
  ) {}

  uploadUrl(req: FastifyRequest, id: string): string {
    return `${origin(req.headers, isEncrypted(req), this.opts.behindProxy)}${this.opts.basePath}${id}`;
  }

  hookEvent(req: FastifyRequest, upload: UploadInfo): HookEvent {
    return {
      upload,
      request: {
        method: req.method,
        uri: req.url,
        remoteAddress: req.ip,
        headers: { ...req.headers },
      },
    };
  }

  isFinished(info: UploadInfo): boolean {
    return !info.SizeIsDeferred && info.Offset === info.Size;
  }

  expiresAt(info: UploadInfo): number | undefined {
    if (this.opts.expirationMs <= 0 || this.isFinished(info) || info.IsFinal) return undefined;
    return info.CreatedAt + this.opts.expirationMs;
  }

  isExpired(info: UploadInfo, now = Date.now()): boolean {
    const at = this.expiresAt(info);
    return at !== undefined && now >= at;
  }

  /** Looks an upload up: 404 when unknown, 410 when expired. */
  async find(id: string): Promise<{ upload: Upload; info: UploadInfo }> {
    let upload: Upload;
    let info: UploadInfo;
    try {
      upload = await this.store.get(id);
      info = await upload.getInfo();
    } catch (err) {
      if (err instanceof NotFoundError) throw errors.notFound();
      throw err;
    }
    if (this.isExpired(info)) throw errors.expired();
    return { upload, info };
  }

  /**
   * Runs `fn` holding the upload's lock. A newer request for the same upload asks us to release it: `fn`'s
   * interruptible work is then stopped with ERR_UPLOAD_INTERRUPTED and saves what it has.
   */
  async withLock<T>(req: FastifyRequest, id: string, fn: (holder: LockHolder) => Promise<T>): Promise<T> {
    const lock = this.locker.newLock(id);
    const holder = new LockHolder();
    const onReleaseRequested = () => holder.interrupt(errors.uploadInterrupted());
    if (!lock.tryLock?.(onReleaseRequested)) await this.waitForLock(req, id, lock, onReleaseRequested);
    this.active.add(holder);
    if (this.shuttingDown) holder.interrupt(errors.serverShutdown());
    try {
      return await fn(holder);
    } finally {
      this.active.delete(holder);
      await lock.unlock().catch((err: unknown) => this.log.error({ err, uploadId: id }, 'unlock failed'));
    }
  }

  private async waitForLock(req: FastifyRequest, id: string, lock: Lock, onReleaseRequested: () => void): Promise<void> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.opts.lockTimeoutMs);
    const onGone = () => ctl.abort();
    req.raw.once('close', onGone);
    try {
      await lock.lock(ctl.signal, onReleaseRequested);
    } catch (err) {
      if (err instanceof LockTimeoutError) throw errors.lockTimeout();
      this.log.error({ err, uploadId: id }, 'locker unavailable');
      throw errors.storageUnavailable();
    } finally {
      clearTimeout(timer);
      req.raw.off('close', onGone);
    }
  }

  /**
   * Streams the request body into the upload at `info.Offset`, verifying `checksum` when given. Resolves with the
   * new offset and the reason the body stopped early (if it did). Bytes that arrived are kept, except for a
   * checksummed chunk, which is all-or-nothing.
   */
  async writeBody(
    req: FastifyRequest,
    upload: Upload,
    info: UploadInfo,
    holder: LockHolder,
    checksum?: ChecksumHeader,
  ): Promise<{ offset: number; stopError: TusError | null; leftUnread: boolean }> {
    const deferred = info.SizeIsDeferred;
    const limit = deferred ? (this.opts.maxSize > 0 ? this.opts.maxSize - info.Offset : Number.MAX_SAFE_INTEGER) : info.Size - info.Offset;
    const limitError = deferred ? errors.maxSizeExceeded : errors.uploadSizeExceeded;
    const hash = checksum ? createDigest(checksum.algorithm) : undefined;
    const body = new BodyReader(req.raw, { limit, limitError, idleTimeoutMs: this.opts.networkTimeoutMs, hash, stats: this.stats });
    // Shutdown lets a body that has fully arrived finish (204 within the grace period); one still streaming stops
    // now and keeps what came. Any other reason stops the body whatever its state.
    const interrupt = (reason: TusError) => {
      if (reason.code !== SERVER_SHUTDOWN || body.leftUnread) body.stop(reason);
    };
    holder.current = { interrupt };
    if (holder.stopped) interrupt(holder.stopped);

    const progress = this.hooks.has('postReceive') ? this.startProgress(req, info, body) : undefined;
    let offset = info.Offset;
    // What a body that is not cut short brings: cloud stores size their parts by it.
    const declared = parseUint(single(req.headers['content-length']));
    const expected = declared === undefined ? undefined : Math.min(declared, limit);
    try {
      if (checksum && isChunkStager(this.store)) {
        const staged = await this.store.stageChunk(upload.id, body);
        if (body.stopError) {
          await staged.discard();
        } else if (!hash!.digest().equals(checksum.digest)) {
          await staged.discard();
          return { offset, stopError: errors.checksumMismatch(), leftUnread: body.leftUnread };
        } else {
          offset = await staged.commit();
        }
      } else {
        const written = await upload.writeChunk(info.Offset, body, expected);
        offset = info.Offset + written;
      }
    } catch (err) {
      // The store failed (its backend is down, say): the rest of the body is not read; the client retries from HEAD.
      body.stop(errors.internal());
      throw err;
    } finally {
      holder.current = null;
      progress?.stop(offset);
    }
    return { offset, stopError: body.stopError, leftUnread: body.leftUnread };
  }

  /**
   * The body of a creation-with-upload, read before the upload exists so that the store writes it with the upload's
   * other files in one step. Only when the store can (CreatorWithData), the body is no larger than its
   * `maxCreateData` nor than the upload, and every byte of it has already arrived, so that reading it waits on
   * nothing. Otherwise undefined: the body streams into the upload once it is created.
   */
  async readArrivedBody(req: FastifyRequest, size: number): Promise<{ data: Buffer; stopError: TusError | null } | undefined> {
    if (!isCreatorWithData(this.store)) return undefined;
    const declared = parseUint(single(req.headers['content-length']));
    if (declared === undefined || declared > size || declared > this.store.maxCreateData) return undefined;
    // Node parses a body that came in the same packet as the headers only once the handler's first turn is over.
    if (!req.raw.complete) await new Promise(setImmediate);
    if (!req.raw.complete) return undefined;
    const body = new BodyReader(req.raw, {
      limit: size,
      limitError: errors.uploadSizeExceeded,
      idleTimeoutMs: this.opts.networkTimeoutMs,
      stats: this.stats,
    });
    const data = await collectArrived(body);
    return { data, stopError: body.stopError };
  }

  /** Bytes stored with the upload's creation (readArrivedBody): the progress hook hears of them as from writeBody. */
  createdWithBytes(req: FastifyRequest, info: UploadInfo): void {
    if (info.Offset > 0 && this.hooks.has('postReceive')) this.hooks.emit('postReceive', this.hookEvent(req, info));
  }

  private startProgress(req: FastifyRequest, info: UploadInfo, body: BodyReader) {
    let last = info.Offset;
    const emit = (offset: number) => {
      if (offset === last) return;
      last = offset;
      this.hooks.emit('postReceive', this.hookEvent(req, { ...info, Offset: offset }));
    };
    const timer = setInterval(() => emit(info.Offset + body.bytesRead), 1000);
    timer.unref();
    return {
      stop: (offset: number) => {
        clearInterval(timer);
        emit(offset);
      },
    };
  }

  /** The upload is complete: store, then blocking pre-finish hooks. post-finish runs once the response is sent. */
  async finish(req: FastifyRequest, reply: FastifyReply, upload: Upload, info: UploadInfo): Promise<void> {
    await upload.finish?.();
    const ev = this.hookEvent(req, info);
    try {
      await this.hooks.preFinish(ev);
    } catch (err) {
      this.log.error({ err, uploadId: info.ID }, 'pre-finish hook failed');
      throw errors.internal('processing the finished upload failed');
    }
    this.stats.uploadsFinished++;
    this.log.info({ uploadId: info.ID, size: info.Size }, 'upload finished');
    // 'close' follows both a sent response and a dropped connection: the upload is finished either way.
    reply.raw.once('close', () => this.hooks.emit('postFinish', ev));
  }

  /** Stops every locked request still reading its body (it saves its bytes and answers 503). */
  shutdown(): void {
    this.shuttingDown = true;
    for (const a of this.active) a.interrupt(errors.serverShutdown());
  }
}

function isEncrypted(req: FastifyRequest): boolean {
  return (req.raw.socket as { encrypted?: boolean }).encrypted === true;
}

export { TusError };
