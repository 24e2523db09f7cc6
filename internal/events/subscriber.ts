import type { HealthCheck } from '../health/check.js';
import type { LinkHealth } from '../health/link-health.js';
import type { Logger } from '../logging/logger.js';
import { MAX_BACKOFF_MS, MIN_BACKOFF_MS } from '../retry/retry-queue.js';
import { sleep } from '../retry/sleep.js';
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

export interface PollingSubscriberParts {
  health: LinkHealth;
  log: Logger;
  /** Messages asked for per receive call, at most (never more than there are free workers). */
  maxMessages: number;
  /** Log wording: `<broker> receive failed; retrying`, and the line logged when receiving works again. */
  broker: string;
  upMessage: string;
}

/**
 * The receive loop shared by the broker subscribers: it asks for as many messages as there are free workers (at most
 * maxMessages), runs each in a worker slot, and never ends the process on a receive error: the entry goes DOWN, the
 * loop waits (1 s … 60 s) and tries again; the next successful receive turns it UP.
 */
export abstract class PollingSubscriber<M> implements Subscriber {
  readonly health: LinkHealth;
  protected readonly log: Logger;
  protected consumer: EventConsumer | null = null;
  protected stopped = false;
  protected readonly slots: WorkerSlots;
  protected loopDone: Promise<void> = Promise.resolve();
  private endPause: () => void = () => {};

  constructor(
    protected readonly opts: SubscriberOptions,
    private readonly parts: PollingSubscriberParts,
  ) {
    this.health = parts.health;
    this.log = parts.log;
    this.slots = new WorkerSlots(opts.workers);
  }

  /** One receive call for at most `room` messages (close() may abort it). */
  protected abstract receive(room: number): Promise<M[]>;
  /** Handles one message in a worker slot, settling it with the broker. */
  protected abstract process(m: M): Promise<void>;
  /** Gives back a message received while close() was stopping the loop. */
  protected abstract handBack(m: M): Promise<void>;
  protected abstract idOf(m: M): string;
  /** After a failed receive, before the wait (a receiver the SDK gave up on is dropped, say). */
  protected receiveFailed(_err: unknown): void {}

  start(consumer: EventConsumer): void {
    if (this.consumer) throw new Error('the subscriber already has a consumer');
    this.consumer = consumer;
    this.loopDone = this.loop();
  }

  private async loop(): Promise<void> {
    let retryIn = MIN_BACKOFF_MS;
    while (!this.stopped) {
      await this.slots.waitForFree(() => this.stopped);
      if (this.stopped) break;
      let messages: M[];
      try {
        messages = await this.receive(Math.min(this.parts.maxMessages, this.slots.free));
      } catch (err) {
        if (this.stopped) break;
        this.health.down(err);
        this.log.warn({ err, retryInMs: retryIn }, `${this.parts.broker} receive failed; retrying`);
        this.receiveFailed(err);
        await this.pause(retryIn);
        retryIn = Math.min(retryIn * 2, MAX_BACKOFF_MS);
        continue;
      }
      if (!this.health.isUp) this.log.info(this.parts.upMessage);
      this.health.up();
      retryIn = MIN_BACKOFF_MS;
      for (const m of messages) {
        if (this.stopped) await this.handBack(m);
        else this.slots.run(() => this.process(m), (err) => this.log.error({ err, messageId: this.idOf(m) }, 'FileReady message handling failed'));
      }
    }
  }

  /** The receive loop's wait after an error; close() cuts it short. */
  private async pause(ms: number): Promise<void> {
    const wait = sleep(ms);
    this.endPause = wait.cancel;
    await wait.done;
  }

  /** Resolves when no message is being processed (or waiting for its next attempt). */
  idle(): Promise<void> {
    return this.slots.idle();
  }

  /** The first step of close(): nothing more is received or waited for. False when already closing. */
  protected beginClose(): boolean {
    if (this.stopped) return false;
    this.stopped = true;
    this.endPause();
    this.slots.wake();
    return true;
  }

  abstract close(graceMs: number): Promise<void>;
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
