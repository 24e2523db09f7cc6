import path from 'node:path';
import type { Config } from '../config/config.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import type { FileReady } from './event.js';
import { FileEventPublisher, MemoryBus, type EventConsumer } from './local.js';

/** The FileReady channel as the rest of the server sees it: publishers on one side, delivery workers on the other. */
export interface EventBus {
  /** Hands the event to every publisher of the set (post-finish routing, /route). */
  publish(e: FileReady): Promise<void>;
  /** Starts LISTENER_WORKERS workers that hand each event to the consumer (a throw = a failed attempt). */
  subscribe(consumer: EventConsumer): void;
  /** /health entries of the broker links (none in local mode). */
  readonly health: HealthCheck[];
  /** Resolves when nothing is queued, in flight or waiting for a retry (tests, benchmark). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface EventBusOptions {
  /** Waits between delivery attempts; tests shorten them. */
  backoffMs?: (attempt: number) => number;
}

/** Local mode (dex-pipeline.md §3.3): the in-memory channel plus `<LOCAL_EVENTS_FOLDER>/<id>_FileReady` lines. */
export async function buildEventBus(config: Config, log: Logger, opts: EventBusOptions = {}): Promise<EventBus> {
  const folder = config.events.localEventsFolder;
  const file = new FileEventPublisher(folder);
  const memory = new MemoryBus({
    workers: config.events.listenerWorkers,
    maxRetries: config.events.maxRetryCount,
    deadLetterFolder: path.join(folder, 'dead-letter'),
    log,
    backoffMs: opts.backoffMs,
  });
  return {
    async publish(e) {
      // The file line is the record of what was published; it is written before the workers can act on the event.
      await file.publish(e).catch((err: unknown) => log.error({ err, uploadId: e.upload_id }, 'could not record the FileReady event'));
      await memory.publish(e);
    },
    subscribe: (consumer) => memory.subscribe(consumer),
    health: [],
    idle: () => memory.idle(),
    async close() {
      memory.stop();
    },
  };
}
