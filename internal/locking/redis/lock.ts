import { randomBytes } from 'node:crypto';
import type { Logger } from '../../logging/logger.js';
import { LockTimeoutError, type Lock } from '../locker.js';
import { driftMs } from './protocol.js';

/** What a lock needs from the locker: Redis commands, the notice channel, and the leases this instance holds. */
export interface LeaseBackend {
  readonly leaseMs: number;
  readonly retainMs: number;
  readonly log: Logger;
  readonly leases: Map<string, Lease>;
  /** Whether an idle lease may be handed to a request without asking Redis (connection up, lease surely ours). */
  usable(lease: Lease): boolean;
  /** The connection's generation: it changes when the connection to Redis is made again. */
  readonly generation: number;
  trySet(id: string, token: string): Promise<boolean>;
  extend(id: string, token: string): Promise<boolean>;
  release(id: string, token: string): Promise<void>;
  listenForRelease(id: string): Promise<void>;
  stopListeningForRelease(id: string): void;
  nextRelease(id: string, signal: AbortSignal): { promise: Promise<void>; cancel(): void };
  requestRelease(id: string): Promise<void>;
}

/**
 * Lock tokens (16 random bytes each) cut from a pool filled 256 at a time: one `randomBytes(16)` per request cost
 * about 7 % of a HEAD's CPU.
 */
const tokens = { pool: Buffer.alloc(0), next: 0 };
function newToken(): string {
  if (tokens.next + 16 > tokens.pool.length) {
    tokens.pool = randomBytes(16 * 256);
    tokens.next = 0;
  }
  const t = tokens.pool.toString('base64', tokens.next, tokens.next + 16);
  tokens.next += 16;
  return t;
}

/**
 * This instance's hold on an upload's Redis key. A request holds it while it runs; when the request ends and nobody
 * here or elsewhere has asked for the upload, the key is kept a moment longer (`retainMs`), so that the client's
 * next request on this instance (the next chunk, a HEAD) takes it without a round trip to Redis. A release request
 * from anyone lets an idle lease go at once, and a held one as soon as its request ends.
 */
let serials = 0;

export class Lease {
  /** Tells this lease from any earlier or later one for the same upload (see RedisLocker.heldMark). */
  readonly serial = ++serials;
  holder: RedisLock | null = null;
  /** Someone elsewhere asked for the upload while a request here held it. */
  wanted = false;
  dropped = false;
  /** Until when the key is surely ours (redsync: start + lease − drift). */
  validUntil: number;
  readonly generation: number;
  private keepAlive: NodeJS.Timeout | null = null;
  private idle: NodeJS.Timeout | null = null;
  /** Requests of this instance waiting for the holder here to let go. */
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly backend: LeaseBackend,
    readonly id: string,
    readonly token: string,
    start: number,
  ) {
    this.validUntil = start + backend.leaseMs - driftMs(backend.leaseMs);
    this.generation = backend.generation;
    this.scheduleKeepAlive((this.validUntil - Date.now()) / 2);
  }

  /** Resolves when the holder here lets go (or the lease is gone); rejects when `signal` aborts. */
  untilLetGo(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters.delete(wake);
        reject(new LockTimeoutError(this.id));
      };
      if (this.dropped) return resolve();
      this.waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
    });
  }

  private wakeWaiters(): void {
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w();
  }

  /** The holder here has finished: the next request here takes the lease, or it goes back to Redis. */
  async letGo(): Promise<void> {
    this.holder = null;
    if (this.wanted || !this.backend.usable(this)) return this.drop();
    if (this.backend.retainMs <= 0 && this.waiters.size === 0) return this.drop();
    // Given back unless taken meanwhile (also when every waiter woken here gave up).
    this.idle = setTimeout(() => void this.drop().catch(() => undefined), this.backend.retainMs);
    this.idle.unref();
    this.wakeWaiters();
  }

  /** Someone (here or elsewhere) asked for the upload. */
  releaseRequested(): void {
    if (this.holder) {
      this.wanted = true;
      this.holder.releaseRequested();
    } else {
      void this.drop().catch((err: unknown) => this.backend.log.warn({ err, uploadId: this.id }, 'releasing an idle upload lock failed'));
    }
  }

  take(lock: RedisLock): boolean {
    if (this.holder || this.dropped || !this.backend.usable(this)) return false;
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    this.holder = lock;
    return true;
  }

  /** Gives the key back (token-checked delete and the release notice) and forgets the lease. */
  async drop(): Promise<void> {
    if (this.dropped) return;
    this.forget();
    this.wakeWaiters();
    await this.backend.release(this.id, this.token);
  }

  /** Stops keeping the lease; this instance no longer counts on it. */
  forget(): void {
    this.dropped = true;
    if (this.backend.leases.get(this.id) === this) this.backend.leases.delete(this.id);
    if (this.keepAlive) clearTimeout(this.keepAlive);
    if (this.idle) clearTimeout(this.idle);
    this.keepAlive = this.idle = null;
  }

  private scheduleKeepAlive(delayMs: number): void {
    this.keepAlive = setTimeout(() => void this.extend(), Math.max(0, delayMs));
    this.keepAlive.unref();
  }

  private async extend(): Promise<void> {
    if (this.dropped) return;
    const start = Date.now();
    const lease = this.backend.leaseMs;
    let extended: boolean;
    try {
      extended = await this.backend.extend(this.id, this.token);
    } catch (err) {
      if (this.dropped) return;
      // Redis unreachable: try again while the lease surely runs; the request is stopped well before it ends, so
      // that it has stopped writing by the time another instance may take the lock.
      const margin = Math.min(1000, lease / 4);
      const left = this.validUntil - Date.now();
      if (left > 2 * margin) {
        this.scheduleKeepAlive(Math.min(500, left - 2 * margin));
        return;
      }
      this.lost(`the lease could not be extended: ${(err as Error).message}`);
      return;
    }
    if (this.dropped) return;
    if (!extended) {
      this.lost('the lease ran out before it was extended');
      return;
    }
    this.validUntil = start + lease - driftMs(lease);
    this.scheduleKeepAlive((this.validUntil - Date.now()) / 2);
  }

  private lost(why: string): void {
    const holder = this.holder;
    this.forget();
    this.wakeWaiters();
    if (!holder) return;
    this.backend.log.warn({ uploadId: this.id, why }, 'upload lock lost: the request holding it is stopped');
    holder.releaseRequested();
  }
}

/** One request's lock on an upload (tusd's Lock): through this instance's lease, or from Redis. */
export class RedisLock implements Lock {
  private lease: Lease | null = null;
  private onReleaseRequested: (() => void) | null = null;

  constructor(
    private readonly backend: LeaseBackend,
    private readonly id: string,
  ) {}

  async lock(signal: AbortSignal, onReleaseRequested: () => void): Promise<void> {
    if (this.lease) throw new Error(`lock of ${this.id}: already held`);
    let listening = false;
    try {
      for (;;) {
        if (signal.aborted) throw new LockTimeoutError(this.id);
        const lease = this.backend.leases.get(this.id);
        if (lease) {
          if (lease.take(this)) return this.held(lease, onReleaseRequested);
          if (lease.holder) {
            // Held by another request of this instance: ask it, as the memory locker does, and wait for it (waiting
            // first: it may let go at once).
            const letGo = lease.untilLetGo(signal);
            lease.holder.releaseRequested();
            await letGo;
          } else {
            await lease.drop(); // idle but no longer to be trusted: give it back and ask Redis
          }
          continue;
        }
        // Armed before the attempt: a notice that arrives during it is not lost.
        const released = listening ? this.backend.nextRelease(this.id, signal) : null;
        try {
          const token = newToken();
          const start = Date.now();
          if (await this.backend.trySet(this.id, token)) {
            const fresh = new Lease(this.backend, this.id, token, start);
            this.backend.leases.get(this.id)?.forget();
            this.backend.leases.set(this.id, fresh);
            fresh.take(this);
            return this.held(fresh, onReleaseRequested);
          }
          if (!listening) {
            // Held elsewhere: listen for its release notice, then try once more (it may have gone meanwhile).
            await this.backend.listenForRelease(this.id);
            listening = true;
            continue;
          }
          if (!this.backend.leases.has(this.id)) await this.backend.requestRelease(this.id);
          await released!.promise;
        } finally {
          released?.cancel();
        }
      }
    } finally {
      if (listening) this.backend.stopListeningForRelease(this.id);
    }
  }

  private held(lease: Lease, onReleaseRequested: () => void): void {
    this.lease = lease;
    this.onReleaseRequested = onReleaseRequested;
  }

  /** Another request wants the upload (or the lease could not be kept): the request is told once. */
  releaseRequested(): void {
    const cb = this.onReleaseRequested;
    this.onReleaseRequested = null;
    cb?.();
  }

  async unlock(): Promise<void> {
    const lease = this.lease;
    if (!lease) throw new Error(`unlock of ${this.id}: lock not held`);
    this.lease = null;
    this.onReleaseRequested = null;
    if (!lease.dropped) await lease.letGo();
  }
}
