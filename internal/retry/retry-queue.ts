import type { Logger } from '../logging/logger.js';
import { sleep } from './sleep.js';

export const MAX_PENDING = 10_000;
export const MIN_BACKOFF_MS = 1_000;
export const MAX_BACKOFF_MS = 60_000;

export interface RetryQueueOptions<T> {
  /** Writes one item; a throw means "not written, try the same item again later". */
  handle(item: T): Promise<void>;
  /**
   * Optional: writes several waiting items at once (at most `maxBatch`, in queue order) and resolves with those NOT
   * written, which stay first in the queue and are retried after the back-off. For a destination where items are
   * independent apart from an order the handler keeps itself (the file sink: one file per upload and stage).
   */
  handleBatch?(items: T[]): Promise<{ failed: T[]; error?: unknown }>;
  maxBatch?: number;
  log: Logger;
  /** Fields on every log record of this queue (e.g. `{ sink: 'file' }`). */
  labels: Record<string, unknown>;
  /** Fields that identify an item in the logs (ids only, never payloads). */
  describe(item: T): Record<string, unknown>;
  /** Log messages, so each user keeps its own wording. */
  messages: { dropped: string; retrying: string };
  /** Called once per item dropped because the backlog was full. */
  onDrop?: (item: T) => void;
  maxPending?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * An ordered, retrying queue (decisions.md "Reports, events, delivery"): items are handled one at a time in the order
 * they were pushed, off the caller's path. A failing handler is retried with exponential back-off (1 s … 60 s) for as
 * long as the process runs; beyond `maxPending` waiting items the oldest are dropped and counted. Used by every report
 * sink and by the Service Bus FileReady publisher.
 */
export class RetryQueue<T> {
  /** Waiting items in push order, each with its push number (failed ones keep their place at the front). */
  private readonly queue: Array<Entry<T>> = [];
  private running = false;
  /** The item handed to the handler and not yet settled: it cannot be recalled, so it is never the one dropped. */
  private inFlight: Entry<T> | null = null;
  /** The same for a batch: its items are never the ones dropped. */
  private inFlightBatch: Set<Entry<T>> | null = null;
  private idleWaiters: Array<() => void> = [];
  private settledWaiters: Array<{ upTo: number; resolve: () => void; reject: (err: Error) => void }> = [];
  private wakeUp: (() => void) | null = null;
  private readonly maxPending: number;
  private stopped = false;
  private pushed = 0;
  dropped = 0;
  lastError: Error | null = null;

  constructor(private readonly opts: RetryQueueOptions<T>) {
    this.maxPending = opts.maxPending ?? MAX_PENDING;
  }

  push(item: T): void {
    if (this.queue.length >= this.maxPending) {
      let at = 0;
      while (at < this.queue.length && (this.queue[at] === this.inFlight || this.inFlightBatch?.has(this.queue[at]!))) at++;
      const [old] = this.queue.splice(at, 1) as [Entry<T>];
      this.dropped++;
      this.opts.onDrop?.(old.item);
      this.opts.log.warn({ ...this.opts.labels, ...this.opts.describe(old.item) }, this.opts.messages.dropped);
      this.releaseSettled();
    }
    this.queue.push({ item, seq: this.pushed++ });
    if (!this.running && !this.stopped) void this.run();
  }

  get pending(): number {
    return this.queue.length;
  }

  idle(): Promise<void> {
    if (!this.running && (this.queue.length === 0 || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Resolves once every item pushed before the call has left the queue: written, or dropped because the backlog was
   * full (counted and logged). Unlike idle(), later pushes do not hold it up, so it also serves under constant load
   * (a broker subscriber settles a message only once its delivery reports are in the file sink). Rejects when the
   * queue is stopped first.
   */
  settled(): Promise<void> {
    const upTo = this.pushed;
    if (this.oldestWaiting() >= upTo) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('the queue is stopped'));
    return new Promise((resolve, reject) => this.settledWaiters.push({ upTo, resolve, reject }));
  }

  /** Push number of the oldest item still waiting; items stay in push order, so all older ones have left. */
  private oldestWaiting(): number {
    return this.queue[0]?.seq ?? this.pushed;
  }

  private releaseSettled(): void {
    const oldest = this.oldestWaiting();
    // Waiters are in call order, so their `upTo` only grows.
    while (this.settledWaiters.length > 0 && this.settledWaiters[0]!.upTo <= oldest) this.settledWaiters.shift()!.resolve();
  }

  /** Cuts a back-off wait short (the destination is known to be back, or shutdown wants one last try). */
  retryNow(): void {
    this.wakeUp?.();
  }

  /** Stops retrying (shutdown): items still waiting stay unsent; idle() waiters are released, settled() ones rejected. */
  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
    for (const w of this.settledWaiters.splice(0)) w.reject(new Error('the queue is stopped'));
  }

  /** Hands the waiting items (up to maxBatch) over at once; throws when some were not written. */
  private async runBatch(): Promise<void> {
    const batch = this.queue.slice(0, this.opts.maxBatch ?? 256);
    this.inFlightBatch = new Set(batch);
    let failed: T[];
    let error: unknown;
    try {
      ({ failed, error } = await this.opts.handleBatch!(batch.map((e) => e.item)));
    } catch (err) {
      failed = batch.map((e) => e.item);
      error = err;
    } finally {
      this.inFlightBatch = null;
    }
    // The batch is still the head of the queue (drops never touch it; pushes go to the end): written items leave,
    // failed ones keep their place at the front.
    this.queue.splice(0, batch.length);
    if (failed.length > 0) {
      const failedSet = new Set(failed);
      this.queue.unshift(...batch.filter((e) => failedSet.has(e.item)));
    }
    this.releaseSettled();
    if (failed.length > 0) throw error instanceof Error ? error : new BatchError(failed.length, batch.length);
  }

  private async run(): Promise<void> {
    this.running = true;
    const min = this.opts.minBackoffMs ?? MIN_BACKOFF_MS;
    const max = this.opts.maxBackoffMs ?? MAX_BACKOFF_MS;
    let backoff = min;
    while (this.queue.length > 0 && !this.stopped) {
      const entry = this.queue[0]!;
      try {
        if (this.opts.handleBatch) {
          await this.runBatch();
        } else {
          this.inFlight = entry;
          await this.opts.handle(entry.item);
          this.inFlight = null;
          this.queue.shift();
          this.releaseSettled();
        }
        this.lastError = null;
        backoff = min;
      } catch (err) {
        this.inFlight = null;
        this.inFlightBatch = null;
        this.lastError = err as Error;
        this.opts.log.warn({ ...this.opts.labels, err, retryInMs: backoff, pending: this.queue.length }, this.opts.messages.retrying);
        const wait = sleep(backoff, { unref: true });
        this.wakeUp = wait.cancel;
        await wait.done;
        this.wakeUp = null;
        backoff = Math.min(backoff * 2, max);
      }
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

interface Entry<T> {
  item: T;
  seq: number;
}

/** Some items of a batch were not written (the handler logged or returned why). */
export class BatchError extends Error {
  constructor(failed: number, total: number) {
    super(`${failed} of ${total} items were not written`);
    this.name = 'BatchError';
  }
}
