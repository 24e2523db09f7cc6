import path from 'node:path';
import type { Config } from '../config/config.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import type { FileReady } from './event.js';
import type { TextAppender } from '../fsutil/fast-fs.js';
import { defaultBackoff, FileEventPublisher, MemoryBus, type EventConsumer } from './local.js';
import type { QueuedEventPublisher } from './queued-publisher.js';
import type { Subscriber } from './subscriber.js';
// The broker modules are loaded only when configured: the Service Bus SDK alone costs about 25 MiB of memory.

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
  /** Events of this instance's memory channel waiting for a worker or being delivered now (0 with brokers only). */
  backlog(): number;
  close(): Promise<void>;
}

export interface EventBusOptions {
  /** Waits between delivery attempts; tests shorten them. */
  backoffMs?: (attempt: number) => number;
  /** How long close() lets running attempts and unsent events finish. Default 10 s. */
  closeGraceMs?: number;
  /** How long one broker receive call waits for messages (Service Bus 5 s, SQS 20 s); tests shorten it. */
  receiveWaitMs?: number;
  /** Writes the event files (default: libuv's thread pool). */
  appendFile?: TextAppender;
  /** Resolves once the reports published so far are written: broker messages are settled only after. */
  reportsRecorded?: () => Promise<void>;
}

/**
 * Publishers (dex-pipeline.md §3.3): SNS_PUBLISHER_EVENT_ARN → SNS; PUBLISHER_* → Azure Service Bus (both when both
 * are set); with either, events go to the brokers only (no event files, as in the original). Otherwise local:
 * `<LOCAL_EVENTS_FOLDER>/<id>_FileReady` lines plus the in-memory channel.
 * Subscriber (§3.4), first of: SQS_SUBSCRIBER_EVENT_ARN → one SQS receiver; SUBSCRIBER_* → one Service Bus receiver;
 * otherwise the in-memory channel's workers.
 *
 * Mixed set-ups, decided here:
 * - local publisher + broker subscriber: this instance's events stay on the memory channel and are delivered by its
 *   local workers (they reach no broker, so nobody else could deliver them), and the subscriber also delivers what
 *   other publishers put on the broker. One consumer serves both.
 * - broker publisher + local subscriber: events go to the broker only and this instance delivers nothing itself
 *   (whoever subscribes does), as in the original; logged as a warning at start-up.
 */
export async function buildEventBus(config: Config, log: Logger, opts: EventBusOptions = {}): Promise<EventBus> {
  const { publisher: pubCfg, subscriber: subCfg } = config.serviceBus;
  const { snsPublisher: snsCfg, sqsSubscriber: sqsCfg } = config.aws;
  const backoffMs = opts.backoffMs ?? defaultBackoff;
  const graceMs = opts.closeGraceMs ?? 10_000;
  const folder = config.events.localEventsFolder;
  const pubLog = log.child({ component: 'event-publisher' });

  const remotes: QueuedEventPublisher[] = [];
  if (snsCfg) remotes.push((await import('./sns.js')).snsEventPublisher(snsCfg, pubLog));
  if (pubCfg) remotes.push((await import('./servicebus.js')).serviceBusEventPublisher(pubCfg, pubLog));
  const subOpts = {
    workers: config.events.listenerWorkers,
    maxRetries: config.events.maxRetryCount,
    backoffMs,
    log: log.child({ component: 'event-subscriber' }),
    receiveWaitMs: opts.receiveWaitMs,
    reportsRecorded: opts.reportsRecorded,
  };
  let subscriber: Subscriber | null = null;
  if (sqsCfg) {
    subscriber = new (await import('./sqs-subscriber.js')).SqsSubscriber(sqsCfg, subOpts);
    if (subCfg) log.warn({ topic: subCfg.topic, subscription: subCfg.subscription }, 'SQS_SUBSCRIBER_EVENT_ARN is set: the SUBSCRIBER_ Service Bus subscription is not read');
  } else if (subCfg) {
    subscriber = new (await import('./servicebus-subscriber.js')).ServiceBusSubscriber(subCfg, subOpts);
    log.info({ topic: subCfg.topic, subscription: subCfg.subscription, workers: config.events.listenerWorkers, maxMessages: subCfg.maxMessages }, 'FileReady events are received from Azure Service Bus');
  }
  const remote = remotes.length > 0;
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

  for (const r of remotes) r.start();
  if (snsCfg) log.info({ topicArn: snsCfg.arn }, 'FileReady events go to AWS SNS');
  if (pubCfg) log.info({ entity: pubCfg.entity, kind: pubCfg.kind }, 'FileReady events go to Azure Service Bus');
  if (remote && !subscriber) {
    log.warn('FileReady events go to a broker but no SUBSCRIBER_ is set (nor SQS_SUBSCRIBER_EVENT_ARN): this instance delivers nothing itself; a subscriber of the broker must');
  }
  if (subscriber && !remote) log.info('FileReady events are published locally: they are delivered by local workers, besides those received from the broker');

  return {
    async publish(e) {
      if (remote) {
        await Promise.all(remotes.map((r) => r.publish(e)));
        return;
      }
      // The file line is the record of what was published; it is written before the workers can act on the event.
      await file!.publish(e).catch((err: unknown) => log.error({ err, uploadId: e.upload_id }, 'could not record the FileReady event'));
      await memory!.publish(e);
    },
    subscribe(consumer) {
      memory?.subscribe(consumer);
      subscriber?.start(consumer);
    },
    health: [...remotes.map((r) => r.health), ...(subscriber ? [subscriber.health] : [])],
    backlog: () => memory?.backlog ?? 0,
    async idle() {
      await Promise.all([memory?.idle(), ...remotes.map((r) => r.idle()), subscriber?.idle()]);
    },
    async close() {
      memory?.stop();
      // Running deliveries may finish (and write their reports) within the grace period; an attempt cut short has no
      // SUCCESS report, so the next start delivers it again.
      await Promise.all([
        memory ? Promise.race([memory.notBusy(), new Promise((r) => setTimeout(r, graceMs).unref())]) : undefined,
        subscriber?.close(graceMs),
        ...remotes.map((r) => r.close(graceMs)),
      ]);
    },
  };
}
