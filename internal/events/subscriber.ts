import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import type { EventConsumer } from './local.js';

/** A broker subscriber feeding the delivery workers (Service Bus subscription, SQS queue). */
export interface Subscriber {
  readonly health: HealthCheck;
  /** Starts the receive loop (once). */
  start(consumer: EventConsumer): void;
  /** Resolves when no message is being processed (or waiting for its next attempt). */
  idle(): Promise<void>;
  /** Stops receiving, gives running attempts `graceMs`, then closes the client. */
  close(graceMs: number): Promise<void>;
}

export interface SubscriberOptions {
  /** LISTENER_WORKERS: messages processed at the same time (and so at most this many held by this instance). */
  workers: number;
  /** EVENT_MAX_RETRY_COUNT: attempts per message are 1 + maxRetries. */
  maxRetries: number;
  /** Wait before attempt n + 1 after attempt n failed: 1 s, 2 s, 4 s … ≤ 60 s; tests shorten it. */
  backoffMs: (attempt: number) => number;
  log: Logger;
  /** How long one receive call waits for messages (also how soon the link shows UP on an idle subscription). */
  receiveWaitMs?: number;
  /** Resolves once the reports published so far are written (the file sink): a message is settled only after. */
  reportsRecorded?: () => Promise<void>;
}

/**
 * The worker slots of a subscriber: the receive loop asks for as many messages as there are free slots, waits while
 * all are taken, and close() waits for the running ones.
 */
export class WorkerSlots {
  private busy = 0;
  private freed: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly size: number) {}

  get free(): number {
    return this.size - this.busy;
  }

  get inUse(): number {
    return this.busy;
  }

  /** Resolves when a slot is free, or when wake() is called (shutdown). */
  async waitForFree(stopped: () => boolean): Promise<void> {
    while (this.busy >= this.size && !stopped()) await new Promise<void>((r) => (this.freed = r));
  }

  wake(): void {
    this.freed?.();
    this.freed = null;
  }

  /** Runs `task` in a slot; a throw is handed to `onError` (the task settles its message itself). */
  run(task: () => Promise<void>, onError: (err: unknown) => void): void {
    this.busy++;
    void task()
      .catch(onError)
      .finally(() => {
        this.busy--;
        this.wake();
        if (this.busy === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  idle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}

/**
 * Waits until the reports published so far (the delivery's blob-file-copy among them) are in the file sink, so a
 * message is settled only once its outcome is recorded. False, logged, when shutdown stopped the report queue first:
 * the message is then left to be delivered again.
 */
export async function reportsWritten(opts: SubscriberOptions, log: Logger): Promise<boolean> {
  try {
    await opts.reportsRecorded?.();
    return true;
  } catch (err) {
    log.warn({ err }, 'the delivery reports were not written before shutdown: the message is left for redelivery');
    return false;
  }
}

/** Whether `p` settled within `ms`. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
