import type { Logger } from '../logging/logger.js';
import { MAX_PENDING, RetryQueue } from '../retry/retry-queue.js';
import type { Report } from './report.js';
import type { ReportSink } from './sinks.js';

export { MAX_PENDING };

/**
 * Fans every report out to every sink, each with its own ordered, retrying queue (internal/retry): reports are written
 * in the order they were published (so per upload too), off the request path; a failing sink is retried with back-off
 * (1 s … 60 s) for as long as the process runs, and beyond MAX_PENDING waiting reports the oldest are dropped and
 * counted. Never throws at the caller.
 */
export class ReportPublisher {
  private readonly queues: RetryQueue<Report>[];
  private readonly sinkNames: string[];

  constructor(sinks: ReportSink[], log: Logger, onDrop: (sink: string) => void = () => {}) {
    this.sinkNames = sinks.map((s) => s.name);
    this.queues = sinks.map(
      (sink) =>
        new RetryQueue<Report>({
          handle: (r) => sink.publish(r),
          handleBatch: sink.publishBatch ? (rs) => sink.publishBatch!(rs) : undefined,
          maxPending: sink.maxPending,
          log,
          labels: { sink: sink.name },
          describe: (r) => ({ uploadId: r.upload_id, stage: r.stage_info.action }),
          messages: { dropped: 'report dropped: sink backlog full', retrying: 'report sink failed; retrying' },
          onDrop: () => onDrop(sink.name),
        }),
    );
  }

  /** Reports dropped so far, per sink (dex_reports_dropped_total). */
  dropped(): Array<{ sink: string; count: number }> {
    return this.queues.map((q, i) => ({ sink: this.sinkNames[i]!, count: q.dropped }));
  }

  /** Reports waiting for the first sink, the durable record (the file sink). */
  backlog(): number {
    return this.queues[0]?.pending ?? 0;
  }

  publish(report: Report): void {
    for (const q of this.queues) q.push(report);
  }

  /**
   * Resolves once every report published so far is in the first sink, the durable record (the file sink; reports
   * published later do not hold it up). Broker subscribers wait for it before settling a message, so a message is
   * never gone while the reports of its delivery are not yet written.
   */
  recorded(): Promise<void> {
    return this.queues[0]?.settled() ?? Promise.resolve();
  }

  /** Resolves when every queued report has been written (shutdown, tests). */
  async drain(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.idle()));
  }
}
