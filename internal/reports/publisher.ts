import type { Logger } from '../logging/logger.js';
import type { Report } from './report.js';
import type { ReportSink } from './sinks.js';

export const MAX_PENDING = 10_000;
const MIN_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 60_000;

/**
 * One sink's queue: reports are written in the order they were published (so per upload too), off the request path.
 * A failing sink is retried with exponential back-off (1 s … 60 s) for as long as the process runs; beyond
 * MAX_PENDING waiting reports the oldest are dropped and counted.
 */
class SinkQueue {
  private readonly queue: Report[] = [];
  private running = false;
  /** The report handed to the sink and not yet settled: it cannot be recalled, so it is never the one dropped. */
  private inFlight: Report | null = null;
  private idleWaiters: Array<() => void> = [];
  dropped = 0;
  lastError: Error | null = null;

  constructor(
    readonly sink: ReportSink,
    private readonly log: Logger,
    private readonly onDrop: (sink: string) => void,
  ) {}

  push(report: Report): void {
    if (this.queue.length >= MAX_PENDING) {
      const [old] = this.queue.splice(this.queue[0] === this.inFlight ? 1 : 0, 1) as [Report];
      this.dropped++;
      this.onDrop(this.sink.name);
      this.log.warn({ sink: this.sink.name, uploadId: old.upload_id, stage: old.stage_info.action }, 'report dropped: sink backlog full');
    }
    this.queue.push(report);
    if (!this.running) void this.run();
  }

  get pending(): number {
    return this.queue.length;
  }

  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    this.running = true;
    let backoff = MIN_BACKOFF_MS;
    while (this.queue.length > 0) {
      const report = this.queue[0]!;
      try {
        this.inFlight = report;
        await this.sink.publish(report);
        this.inFlight = null;
        this.queue.shift();
        this.lastError = null;
        backoff = MIN_BACKOFF_MS;
      } catch (err) {
        this.inFlight = null;
        this.lastError = err as Error;
        this.log.warn({ sink: this.sink.name, err, retryInMs: backoff, pending: this.queue.length }, 'report sink failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

/** Fans every report out to every sink, each with its own ordered, retrying queue. Never throws at the caller. */
export class ReportPublisher {
  private readonly queues: SinkQueue[];

  constructor(sinks: ReportSink[], log: Logger, onDrop: (sink: string) => void = () => {}) {
    this.queues = sinks.map((s) => new SinkQueue(s, log, onDrop));
  }

  publish(report: Report): void {
    for (const q of this.queues) q.push(report);
  }

  /** Resolves when every queued report has been written (shutdown, tests). */
  async drain(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.idle()));
  }
}
