import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import { RetryQueue } from '../retry/retry-queue.js';
import type { FileReady } from './event.js';
import type { EventPublisher } from './local.js';

/** A broker link that sends one FileReady (a Service Bus sender, an SNS topic). A throw = "try again later". */
export interface EventLink {
  readonly health: HealthCheck;
  /** Opens or checks the link in the background (never throws, never blocks). */
  start(): void;
  send(e: FileReady): Promise<void>;
  close(): Promise<void>;
}

/**
 * A FileReady publisher to a broker (dex-pipeline.md §3.2/§3.3). decisions.md: "The FileReady publisher retries the
 * same way" as the report sinks, so events go through the same ordered queue (back-off 1 s … 60 s, at most 10,000
 * waiting, oldest dropped and logged). `publish` therefore accepts the event and returns at once: a broker that is
 * down delays delivery, it does not fail the upload or POST /route.
 */
export class QueuedEventPublisher implements EventPublisher {
  private readonly queue: RetryQueue<FileReady>;
  dropped = 0;
  private closed = false;

  constructor(
    readonly name: string,
    private readonly link: EventLink,
    private readonly log: Logger,
  ) {
    this.queue = new RetryQueue<FileReady>({
      handle: (e) => this.link.send(e),
      log,
      labels: { publisher: this.name },
      describe: (e) => ({ uploadId: e.upload_id, target: e.deliver_target }),
      messages: { dropped: 'FileReady event dropped: publisher backlog full', retrying: 'FileReady publisher failed; retrying' },
      onDrop: () => this.dropped++,
    });
  }

  get health(): HealthCheck {
    return this.link.health;
  }

  start(): void {
    this.link.start();
  }

  async publish(e: FileReady): Promise<void> {
    if (this.closed) throw new Error('the event bus is stopped');
    this.queue.push({ ...e });
  }

  /** Resolves when every accepted event has been sent. */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Gives waiting events up to `graceMs` to go out (one immediate retry), then closes the link. */
  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.queue.pending > 0) {
      this.queue.retryNow();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.queue.idle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    if (this.queue.pending > 0) this.log.warn({ pending: this.queue.pending }, 'FileReady events not sent before shutdown');
    this.queue.stop();
    await this.link.close();
  }
}
