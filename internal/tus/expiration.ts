import { CorruptInfoError, isLister, isTerminater, NotFoundError, type UploadInfo } from '../storage/store.js';
import type { TusCore } from './core.js';

/** A partial upload no final one ever named is dropped this long after its last byte, even without expiration. */
export const ORPHAN_PARTIAL_MS = 24 * 60 * 60 * 1000;

/**
 * Periodic clean-up: expired unfinished uploads (TUS_UPLOAD_EXPIRATION) and orphaned partial uploads. Runs every
 * min(expiration, 60 s), or hourly when expiration is off. Each removal takes the upload's lock.
 */
export class ExpirationCleaner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly core: TusCore) {}

  get intervalMs(): number {
    const exp = this.core.opts.expirationMs;
    return exp > 0 ? Math.min(exp, 60_000) : 60 * 60_000;
  }

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  runOnce(now = Date.now()): Promise<void> {
    this.running ??= this.sweep(now).finally(() => (this.running = null));
    return this.running;
  }

  private async sweep(now: number): Promise<void> {
    const { store, log } = this.core;
    if (!isLister(store) || !isTerminater(store)) return;
    const infos: UploadInfo[] = [];
    for (const id of await store.list()) {
      try {
        infos.push(await (await store.get(id)).getInfo());
      } catch (err) {
        if (!(err instanceof NotFoundError) || err instanceof CorruptInfoError) log.warn({ err, uploadId: id }, 'clean-up could not read upload');
      }
    }
    const referenced = new Set(infos.flatMap((i) => (i.IsFinal ? (i.PartialUploads ?? []) : [])));
    const removable = (info: UploadInfo): 'expired' | 'orphaned partial' | undefined => {
      if (this.core.isExpired(info, now)) return 'expired';
      const lastActivity = info.LastChunkAt || info.CreatedAt;
      if (info.IsPartial && !referenced.has(info.ID) && now - lastActivity >= ORPHAN_PARTIAL_MS) return 'orphaned partial';
      return undefined;
    };
    for (const info of infos) {
      if (!removable(info)) continue;
      const lock = this.core.locker.newLock(info.ID);
      const ctl = new AbortController();
      const t = setTimeout(() => ctl.abort(), 1000);
      try {
        await lock.lock(ctl.signal, () => {});
      } catch {
        continue; // busy: next sweep
      } finally {
        clearTimeout(t);
      }
      try {
        // Looked at again under the lock: meanwhile a request (here or on another instance) may have finished it, or
        // another instance's clean-up removed it.
        const reason = removable(await (await store.get(info.ID)).getInfo());
        if (reason) {
          await store.terminate(info.ID);
          log.info({ uploadId: info.ID, reason }, 'upload removed by clean-up');
        }
      } catch (err) {
        if (err instanceof NotFoundError) continue;
        log.error({ err, uploadId: info.ID }, 'clean-up could not remove upload');
      } finally {
        await lock.unlock().catch((err: unknown) => log.warn({ err, uploadId: info.ID }, 'clean-up could not unlock upload'));
      }
    }
  }
}
