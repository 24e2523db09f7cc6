import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../logging/logger.js';
import { LockTimeoutError, type Lock, type Locker } from '../locker.js';
import {
  driftMs,
  EXTEND_SCRIPT,
  idOfReleased,
  idOfReleaseRequest,
  LEASE_MS,
  lockKey,
  RELEASE_REQUEST_PATTERN,
  RELEASE_SCRIPT,
  releasedChannel,
  releaseRequestChannel,
} from './protocol.js';

export interface RedisLockerOptions {
  log: Logger;
  /** Lease of a held lock (8 s, as tusd; the original's tests shorten it). */
  leaseMs?: number;
  /**
   * How often a waiter tries again when no release notice comes: a holder that died sends none, and its key
   * frees itself only when its lease ends.
   */
  retryMs?: number;
  /** ioredis options over ours (tests). */
  redis?: RedisOptions;
}

interface Scripts {
  dexExtendLock(key: string, token: string, leaseMs: number): Promise<number>;
  dexReleaseLock(key: string, token: string, channel: string, message: string): Promise<number>;
}

/**
 * tusd's Redis locker, interoperating key for key and channel for channel (dex-pipeline.md §5.2): `SET NX PX` with a
 * lease extended at half its validity, a token-checked release followed by a release notice, and release requests
 * over pub/sub, so that a request on one instance makes the holder on another save its bytes and let go.
 *
 * Two connections: one for commands, one subscribed. Release requests reach every lock this instance holds through
 * one pattern subscription made at start-up (no subscription per lock, none to miss); a waiter subscribes to its
 * lock's notice channel only while it waits. While Redis is unreachable every command fails at once (no offline
 * queue), so requests that need a lock answer 503 instead of hanging, and the connections come back by themselves.
 */
export class RedisLocker implements Locker {
  readonly healthName = 'Redis Locker';
  readonly leaseMs: number;
  readonly retryMs: number;
  /** Locks held by this instance, by upload id: where release requests are delivered. */
  private readonly held = new Map<string, RedisLock>();
  /** Waiters for a lock's release notice, by upload id. */
  private readonly notices = new Map<string, Set<() => void>>();
  /** Notice channels subscribed to, shared by the waiters of one upload. */
  private readonly subscriptions = new Map<string, { waiters: number; ready: Promise<unknown> }>();
  /** Release requests this instance published: its own pattern subscription hears them too, and skips them. */
  private readonly ownRequests = new Map<string, number>();
  private lastError = '';

  private constructor(
    private readonly commands: Redis,
    private readonly subscriber: Redis,
    readonly log: Logger,
    opts: RedisLockerOptions,
  ) {
    this.leaseMs = opts.leaseMs ?? LEASE_MS;
    this.retryMs = opts.retryMs ?? 250;
    commands.defineCommand('dexExtendLock', { numberOfKeys: 1, lua: EXTEND_SCRIPT });
    commands.defineCommand('dexReleaseLock', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    subscriber.on('pmessage', (_pattern: string, channel: string) => this.onReleaseRequest(channel));
    subscriber.on('message', (channel: string) => this.onReleased(channel));
    // What this instance published while the subscription was down was never heard back.
    subscriber.on('ready', () => this.ownRequests.clear());
    this.watch(commands, 'commands');
    this.watch(subscriber, 'subscriber');
  }

  /** Connects, PINGs and subscribes to release requests; throws (a fatal start-up error) when Redis cannot be reached. */
  static async connect(url: string, opts: RedisLockerOptions): Promise<RedisLocker> {
    const options: RedisOptions = {
      lazyConnect: true,
      // No offline queue and no retries: while Redis is down a command fails at once (the request answers 503).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 5000,
      commandTimeout: 2000,
      // Concurrent requests' commands travel together: one write and one read for many locks.
      enableAutoPipelining: true,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
      connectionName: 'dex-upload-locker',
      ...opts.redis,
    };
    const commands = new Redis(url, options);
    const subscriber = commands.duplicate({ enableAutoPipelining: false });
    const locker = new RedisLocker(commands, subscriber, opts.log, opts);
    try {
      await Promise.all([commands.connect(), subscriber.connect()]);
      await commands.ping();
      await subscriber.psubscribe(RELEASE_REQUEST_PATTERN);
    } catch (err) {
      commands.disconnect();
      subscriber.disconnect();
      throw new Error(`Redis locker: cannot reach Redis: ${(err as Error).message}`);
    }
    return locker;
  }

  /** Logs an outage once and its end once; keeps the last error for /health. The URL (it may hold a password) never is. */
  private watch(conn: Redis, name: string): void {
    let down = false;
    conn.on('error', (err: Error) => {
      this.lastError = err.message;
      if (down) return;
      down = true;
      this.log.warn({ connection: name, err: err.message }, 'Redis connection lost: requests that need an upload lock answer 503 until it is back');
    });
    conn.on('close', () => {
      if (!down && conn.status !== 'end') {
        down = true;
        this.log.warn({ connection: name }, 'Redis connection closed: reconnecting');
      }
    });
    conn.on('ready', () => {
      if (!down) return;
      down = false;
      this.log.info({ connection: name }, 'Redis connection back');
    });
  }

  newLock(id: string): Lock {
    return new RedisLock(this, id);
  }

  async health(): Promise<void> {
    for (const [name, conn] of [['command', this.commands], ['subscriber', this.subscriber]] as const) {
      if (conn.status !== 'ready') throw new Error(`Redis ${name} connection is ${conn.status}${this.lastError ? `: ${this.lastError}` : ''}`);
    }
    await this.commands.ping();
  }

  async close(): Promise<void> {
    for (const lock of this.held.values()) lock.forget();
    const quit = (conn: Redis) => (conn.status === 'ready' ? conn.quit().then(() => undefined, () => conn.disconnect()) : conn.disconnect());
    await Promise.all([quit(this.subscriber), quit(this.commands)]);
  }

  // ---- used by RedisLock ----

  get scripts(): Scripts {
    return this.commands as unknown as Scripts;
  }

  async trySet(id: string, token: string): Promise<boolean> {
    return (await this.commands.set(lockKey(id), token, 'PX', this.leaseMs, 'NX')) === 'OK';
  }

  hold(id: string, lock: RedisLock): void {
    this.held.set(id, lock);
  }

  letGo(id: string, lock: RedisLock): void {
    if (this.held.get(id) === lock) this.held.delete(id);
  }

  /** Asks the holder to let go: directly when it is on this instance, on the request channel for everyone else. */
  async requestRelease(id: string): Promise<void> {
    this.held.get(id)?.releaseRequested();
    this.ownRequests.set(id, (this.ownRequests.get(id) ?? 0) + 1);
    try {
      await this.commands.publish(releaseRequestChannel(id), id);
    } catch (err) {
      this.forgetOwnRequest(id);
      throw err;
    }
  }

  private forgetOwnRequest(id: string): boolean {
    const n = this.ownRequests.get(id);
    if (!n) return false;
    if (n === 1) this.ownRequests.delete(id);
    else this.ownRequests.set(id, n - 1);
    return true;
  }

  private onReleaseRequest(channel: string): void {
    const id = idOfReleaseRequest(channel);
    if (id === undefined || this.forgetOwnRequest(id)) return;
    this.held.get(id)?.releaseRequested();
  }

  private onReleased(channel: string): void {
    const id = idOfReleased(channel);
    const waiters = id === undefined ? undefined : this.notices.get(id);
    if (waiters) for (const wake of [...waiters]) wake();
  }

  /** Subscribes to the lock's notice channel (once for all its waiters on this instance). */
  async listenForRelease(id: string): Promise<void> {
    let sub = this.subscriptions.get(id);
    if (!sub) {
      const created = { waiters: 0, ready: this.subscriber.subscribe(releasedChannel(id)) };
      created.ready.catch(() => {
        if (this.subscriptions.get(id) === created) this.subscriptions.delete(id);
      });
      this.subscriptions.set(id, created);
      sub = created;
    }
    sub.waiters++;
    try {
      await sub.ready;
    } catch (err) {
      sub.waiters--;
      throw err;
    }
  }

  stopListeningForRelease(id: string): void {
    const sub = this.subscriptions.get(id);
    if (!sub || --sub.waiters > 0) return;
    this.subscriptions.delete(id);
    this.subscriber.unsubscribe(releasedChannel(id)).catch(() => undefined);
  }

  /**
   * Resolves on the lock's next release notice, or after `retryMs` without one; rejects when `signal` aborts.
   * Armed before the attempt it follows, so a notice that arrives during that attempt is not lost.
   */
  nextRelease(id: string, signal: AbortSignal): { promise: Promise<void>; cancel(): void } {
    let waiters = this.notices.get(id);
    if (!waiters) this.notices.set(id, (waiters = new Set()));
    const set = waiters;
    let cleanup = () => {};
    const promise = new Promise<void>((resolve, reject) => {
      const wake = () => {
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(new LockTimeoutError(id));
      };
      const timer = setTimeout(wake, this.retryMs);
      cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        set.delete(wake);
        if (set.size === 0 && this.notices.get(id) === set) this.notices.delete(id);
      };
      set.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
    });
    promise.catch(() => undefined);
    return { promise, cancel: () => cleanup() };
  }
}

class RedisLock implements Lock {
  private token: string | null = null;
  /** Until when the lock is surely ours (redsync: start + lease − drift). */
  private validUntil = 0;
  private keepAlive: NodeJS.Timeout | null = null;
  private onReleaseRequested: (() => void) | null = null;

  constructor(
    private readonly locker: RedisLocker,
    private readonly id: string,
  ) {}

  async lock(signal: AbortSignal, onReleaseRequested: () => void): Promise<void> {
    if (this.token) throw new Error(`lock of ${this.id}: already held`);
    if (signal.aborted) throw new LockTimeoutError(this.id);
    if (await this.acquire(onReleaseRequested)) return;
    await this.locker.listenForRelease(this.id);
    try {
      for (;;) {
        const released = this.locker.nextRelease(this.id, signal);
        try {
          // Also right after subscribing: a release between the first attempt and the subscription sent no notice we heard.
          if (await this.acquire(onReleaseRequested)) return;
          await this.locker.requestRelease(this.id);
          await released.promise;
        } finally {
          released.cancel();
        }
      }
    } finally {
      this.locker.stopListeningForRelease(this.id);
    }
  }

  private async acquire(onReleaseRequested: () => void): Promise<boolean> {
    const token = randomBytes(16).toString('base64');
    const start = Date.now();
    if (!(await this.locker.trySet(this.id, token))) return false;
    this.token = token;
    this.validUntil = start + this.locker.leaseMs - driftMs(this.locker.leaseMs);
    this.onReleaseRequested = onReleaseRequested;
    this.locker.hold(this.id, this);
    this.scheduleKeepAlive((this.validUntil - Date.now()) / 2);
    return true;
  }

  /** Another request wants the lock (or the lease could not be kept): the holder is told once. */
  releaseRequested(): void {
    const cb = this.onReleaseRequested;
    this.onReleaseRequested = null;
    cb?.();
  }

  private scheduleKeepAlive(delayMs: number): void {
    this.keepAlive = setTimeout(() => void this.extend(), Math.max(0, delayMs));
    this.keepAlive.unref();
  }

  private async extend(): Promise<void> {
    const token = this.token;
    if (!token) return;
    const start = Date.now();
    const lease = this.locker.leaseMs;
    let extended: boolean;
    try {
      extended = (await this.locker.scripts.dexExtendLock(lockKey(this.id), token, lease)) === 1;
    } catch (err) {
      if (this.token !== token) return;
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
    if (this.token !== token) return;
    if (!extended) {
      this.lost('the lease ran out before it was extended');
      return;
    }
    this.validUntil = start + lease - driftMs(lease);
    this.scheduleKeepAlive((this.validUntil - Date.now()) / 2);
  }

  private lost(why: string): void {
    this.locker.log.warn({ uploadId: this.id, why }, 'upload lock lost: the request holding it is stopped');
    this.releaseRequested();
  }

  /** Stops keeping the lease (at shutdown, for locks still held). */
  forget(): void {
    if (this.keepAlive) clearTimeout(this.keepAlive);
    this.keepAlive = null;
  }

  async unlock(): Promise<void> {
    const token = this.token;
    if (!token) throw new Error(`unlock of ${this.id}: lock not held`);
    this.token = null;
    this.onReleaseRequested = null;
    this.forget();
    this.locker.letGo(this.id, this);
    await this.locker.scripts.dexReleaseLock(lockKey(this.id), token, releasedChannel(this.id), this.id);
  }
}
