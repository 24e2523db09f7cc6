import type { Logger } from '../logging/logger.js';

export const MAX_PENDING = 10_000;
export const MIN_BACKOFF_MS = 1_000;
export const MAX_BACKOFF_MS = 60_000;

export interface RetryQueueOptions<T> {
  /** Writes one item; a throw means "not written, try the same item again later". */
  handle(item: T): Promise<void>;
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
  private readonly queue: T[] = [];
  private running = false;
  /** The item handed to the handler and not yet settled: it cannot be recalled, so it is never the one dropped. */
  private inFlight: T | null = null;
  private idleWaiters: Array<() => void> = [];
  private wakeUp: (() => void) | null = null;
  private readonly maxPending: number;
  private stopped = false;
  dropped = 0;
  lastError: Error | null = null;

  constructor(private readonly opts: RetryQueueOptions<T>) {
    this.maxPending = opts.maxPending ?? MAX_PENDING;
  }

  push(item: T): void {
    if (this.queue.length >= this.maxPending) {
      const [old] = this.queue.splice(this.queue[0] === this.inFlight ? 1 : 0, 1) as [T];
      this.dropped++;
      this.opts.onDrop?.(old);
      this.opts.log.warn({ ...this.opts.labels, ...this.opts.describe(old) }, this.opts.messages.dropped);
    }
    this.queue.push(item);
    if (!this.running && !this.stopped) void this.run();
  }

  get pending(): number {
    return this.queue.length;
  }

  idle(): Promise<void> {
    if (!this.running && (this.queue.length === 0 || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cuts a back-off wait short (the destination is known to be back, or shutdown wants one last try). */
  retryNow(): void {
    this.wakeUp?.();
  }

  /** Stops retrying (shutdown): items still waiting stay unsent; idle() waiters are released. */
  stop(): void {
    this.stopped = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    this.running = true;
    const min = this.opts.minBackoffMs ?? MIN_BACKOFF_MS;
    const max = this.opts.maxBackoffMs ?? MAX_BACKOFF_MS;
    let backoff = min;
    while (this.queue.length > 0 && !this.stopped) {
      const item = this.queue[0]!;
      try {
        this.inFlight = item;
        await this.opts.handle(item);
        this.inFlight = null;
        this.queue.shift();
        this.lastError = null;
        backoff = min;
      } catch (err) {
        this.inFlight = null;
        this.lastError = err as Error;
        this.opts.log.warn({ ...this.opts.labels, err, retryInMs: backoff, pending: this.queue.length }, this.opts.messages.retrying);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          timer.unref();
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
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
