import { mkdir } from 'node:fs/promises';
import { appendText, type TextAppender } from '../fsutil/fast-fs.js';
import path from 'node:path';
import type { Logger } from '../logging/logger.js';
import type { FileReady } from './event.js';

/** Publishes FileReady events (in-memory bus, file, Service Bus …). */
export interface EventPublisher {
  readonly name: string;
  publish(e: FileReady): Promise<void>;
}

/** What a subscriber hands each event to (the delivery worker). A throw means "try again later". */
export type EventConsumer = (e: FileReady) => Promise<void>;

const SAFE_ID = /^[0-9a-f-]{36}$/;

/** Appends one JSON line per event to `<folder>/<upload_id>_FileReady` (local mode's record of what was published). */
export class FileEventPublisher implements EventPublisher {
  readonly name = 'file';
  constructor(
    private readonly folder: string,
    private readonly appendFile: TextAppender = appendText,
  ) {}

  async publish(e: FileReady): Promise<void> {
    await appendLine(this.folder, e, this.appendFile);
  }
}

/** Folders known to exist: one mkdir per folder, not one per event (made again if one vanishes). */
const madeFolders = new Set<string>();

async function appendLine(folder: string, e: FileReady, appendFile: TextAppender = appendText): Promise<void> {
  if (!SAFE_ID.test(e.upload_id)) throw new Error(`refusing event for id ${JSON.stringify(e.upload_id)}`);
  const file = path.join(folder, `${e.upload_id}_${e.type}`);
  const line = `${JSON.stringify(e)}\n`;
  if (madeFolders.has(folder)) {
    try {
      await appendFile(file, line, 0o644);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      madeFolders.delete(folder);
    }
  }
  await mkdir(folder, { recursive: true, mode: 0o750 });
  madeFolders.add(folder);
  await appendFile(file, line, 0o644);
}

export interface MemoryBusOptions {
  workers: number;
  /** Attempts per event are 1 + maxRetries (EVENT_MAX_RETRY_COUNT). */
  maxRetries: number;
  /** Where events that used every attempt go: `<folder>/<upload_id>_FileReady` lines with their retry_count. */
  deadLetterFolder: string;
  log: Logger;
  /** Waits between attempts: 1 s, 2 s, 4 s … at most 60 s (decisions.md); tests shorten them. */
  backoffMs?: (attempt: number) => number;
}

export const defaultBackoff = (attempt: number) => Math.min(1000 * 2 ** (attempt - 1), 60_000);

/**
 * The in-process FileReady channel: a publisher (it never blocks the caller) and LISTENER_WORKERS subscribers that
 * hand events to the consumer, retry failures with back-off, and dead-letter an event after its last attempt.
 */
export class MemoryBus implements EventPublisher {
  readonly name = 'memory';
  private readonly queue: FileReady[] = [];
  private readonly waiting: Array<() => void> = [];
  private consumer: EventConsumer | null = null;
  private stopped = false;
  private busy = 0;
  private delayed = 0;
  private idleWaiters: Array<() => void> = [];
  private notBusyWaiters: Array<() => void> = [];
  private readonly backoff: (attempt: number) => number;

  constructor(private readonly opts: MemoryBusOptions) {
    this.backoff = opts.backoffMs ?? defaultBackoff;
  }

  async publish(e: FileReady): Promise<void> {
    if (this.stopped) throw new Error('the event bus is stopped');
    this.queue.push({ ...e });
    this.waiting.shift()?.();
  }

  /** Starts the workers (once). */
  subscribe(consumer: EventConsumer): void {
    if (this.consumer) throw new Error('the bus already has a consumer');
    this.consumer = consumer;
    for (let i = 0; i < this.opts.workers; i++) void this.work();
  }

  private async next(): Promise<FileReady | null> {
    while (!this.stopped) {
      const e = this.queue.shift();
      if (e) {
        // Counted as busy from the moment it leaves the queue, so idle() cannot slip in between.
        this.busy++;
        return e;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    return null;
  }

  private async work(): Promise<void> {
    for (let e = await this.next(); e; e = await this.next()) {
      try {
        await this.consumer!(e);
      } catch (err) {
        await this.failed(e, err as Error);
      } finally {
        this.busy--;
        if (this.busy === 0) for (const w of this.notBusyWaiters.splice(0)) w();
        this.checkIdle();
      }
    }
  }

  private async failed(e: FileReady, err: Error): Promise<void> {
    const attempt = e.retry_count + 1;
    if (attempt > this.opts.maxRetries) {
      this.opts.log.error({ err, uploadId: e.upload_id, target: e.deliver_target, attempts: attempt }, 'event dead-lettered after its last attempt');
      await appendLine(this.opts.deadLetterFolder, e).catch((writeErr: unknown) =>
        this.opts.log.error({ err: writeErr, uploadId: e.upload_id }, 'could not write the dead-letter record'),
      );
      return;
    }
    const wait = this.backoff(attempt);
    this.opts.log.warn({ err, uploadId: e.upload_id, target: e.deliver_target, attempt, retryInMs: wait }, 'event processing failed; retrying');
    this.delayed++;
    setTimeout(() => {
      this.delayed--;
      if (!this.stopped) {
        this.queue.push({ ...e, retry_count: attempt });
        this.waiting.shift()?.();
      }
      this.checkIdle();
    }, wait).unref();
  }

  private checkIdle(): void {
    if (this.busy === 0 && this.delayed === 0 && this.queue.length === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Events waiting for a worker or being handled now (retries waiting for their back-off are not counted). */
  get backlog(): number {
    return this.queue.length + this.busy;
  }

  /** Resolves when no event is queued, in flight or waiting for a retry. */
  idle(): Promise<void> {
    if (this.busy === 0 && this.delayed === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves when no attempt is running (after stop(), none starts again; waiting retries are abandoned). */
  notBusy(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.notBusyWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.waiting.splice(0)) w();
  }
}
