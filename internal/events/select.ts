import path from 'node:path';
import type { Config } from '../config/config.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import type { FileReady } from './event.js';
import type { TextAppender } from '../fsutil/fast-fs.js';
import { defaultBackoff, FileEventPublisher, MemoryBus, type EventConsumer } from './local.js';
// The Service Bus modules are loaded only when configured: the SDK costs about 25 MiB of memory.

/** The FileReady channel as the rest of the server sees it: publishers on one side, delivery workers on the other. */
export interface EventBus {
  /** Hands the event to every publisher of the set (post-finish routing, /route). */
  publish(e: FileReady): Promise<void>;
  /** Starts LISTENER_WORKERS workers that hand each event to the consumer (a throw = a failed attempt). */
  subscribe(consumer: EventConsumer): void;
  /** /health entries of the broker links (none in local mode): the publisher's, then the subscriber's. */
  readonly health: HealthCheck[];
  /** Resolves when nothing is queued, in flight, waiting for a retry or waiting to be published (tests, benchmark). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface EventBusOptions {
  /** Waits between delivery attempts; tests shorten them. */
  backoffMs?: (attempt: number) => number;
  /** How long close() lets running attempts and unsent events finish. Default 10 s. */
  closeGraceMs?: number;
  /** How long one Service Bus receive call waits for messages (default 5 s); tests shorten it. */
  receiveWaitMs?: number;
  /** Writes the event files (default: libuv's thread pool). */
  appendFile?: TextAppender;
}

/**
 * Publisher (dex-pipeline.md §3.3, no SNS): PUBLISHER_* set → Service Bus only (no event files, as in the original);
 * otherwise local: `<LOCAL_EVENTS_FOLDER>/<id>_FileReady` lines plus the in-memory channel.
 * Subscriber (§3.4, no SQS): SUBSCRIBER_* set → one Service Bus receiver; otherwise the in-memory channel's workers.
 *
 * Mixed set-ups, decided here:
 * - local publisher + Service Bus subscriber: this instance's events stay on the memory channel and are delivered by
 *   its local workers (they reach no broker, so nobody else could deliver them), and the Service Bus subscriber also
 *   delivers what other publishers put on the topic. One consumer serves both.
 * - Service Bus publisher + local subscriber: events go to the broker only and this instance delivers nothing itself
 *   (whoever subscribes to the topic does), as in the original; logged as a warning at start-up.
 */
export async function buildEventBus(config: Config, log: Logger, opts: EventBusOptions = {}): Promise<EventBus> {
  const { publisher: pubCfg, subscriber: subCfg } = config.serviceBus;
  const backoffMs = opts.backoffMs ?? defaultBackoff;
  const graceMs = opts.closeGraceMs ?? 10_000;
  const folder = config.events.localEventsFolder;

  const remote = pubCfg ? new (await import('./servicebus.js')).ServiceBusEventPublisher(pubCfg, log.child({ component: 'event-publisher' })) : null;
  const subscriber = subCfg
    ? new (await import('./servicebus-subscriber.js')).ServiceBusSubscriber(subCfg, {
        workers: config.events.listenerWorkers,
        maxRetries: config.events.maxRetryCount,
        backoffMs,
        log: log.child({ component: 'event-subscriber' }),
        receiveWaitMs: opts.receiveWaitMs,
      })
    : null;
  const file = remote ? null : new FileEventPublisher(folder, opts.appendFile);
  // The memory channel exists whenever events are published locally, or when nothing else would feed the workers.
  const memory =
    remote && subscriber
      ? null
      : new MemoryBus({
          workers: config.events.listenerWorkers,
          maxRetries: config.events.maxRetryCount,
          deadLetterFolder: path.join(folder, 'dead-letter'),
          log,
          backoffMs,
        });

  if (remote && pubCfg) {
    remote.start();
    log.info({ entity: pubCfg.entity, kind: pubCfg.kind }, 'FileReady events go to Azure Service Bus');
    if (!subscriber) {
      log.warn({ entity: pubCfg.entity }, 'FileReady events go to Service Bus but no SUBSCRIBER_ is set: this instance delivers nothing itself; a subscriber of the topic must');
    }
  }
  if (subscriber && subCfg) {
    log.info({ topic: subCfg.topic, subscription: subCfg.subscription, workers: config.events.listenerWorkers, maxMessages: subCfg.maxMessages }, 'FileReady events are received from Azure Service Bus');
    if (!remote) log.info('FileReady events are published locally: they are delivered by local workers, besides those received from Service Bus');
  }

  return {
    async publish(e) {
      if (remote) return remote.publish(e);
      // The file line is the record of what was published; it is written before the workers can act on the event.
      await file!.publish(e).catch((err: unknown) => log.error({ err, uploadId: e.upload_id }, 'could not record the FileReady event'));
      await memory!.publish(e);
    },
    subscribe(consumer) {
      memory?.subscribe(consumer);
      subscriber?.start(consumer);
    },
    health: [...(remote ? [remote.health] : []), ...(subscriber ? [subscriber.health] : [])],
    async idle() {
      await Promise.all([memory?.idle(), remote?.idle(), subscriber?.idle()]);
    },
    async close() {
      memory?.stop();
      // Running deliveries may finish (and write their reports) within the grace period; an attempt cut short has no
      // SUCCESS report, so the next start delivers it again.
      await Promise.all([
        memory ? Promise.race([memory.notBusy(), new Promise((r) => setTimeout(r, graceMs).unref())]) : undefined,
        subscriber?.close(graceMs),
        remote?.close(graceMs),
      ]);
    },
  };
}
