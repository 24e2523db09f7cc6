import type { ServiceBusSenderConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { ServiceBusEntitySender } from '../servicebus/entity-sender.js';
import { QueuedEventPublisher } from './queued-publisher.js';

/**
 * PUBLISHER_* (dex-pipeline.md §3.2/§3.3): each FileReady as one message on PUBLISHER_QUEUE or else PUBLISHER_TOPIC,
 * body = the compact event JSON as bytes (see ServiceBusReportSink for why bytes), through the ordered retrying queue.
 */
export function serviceBusEventPublisher(cfg: ServiceBusSenderConfig, log: Logger): QueuedEventPublisher {
  const link = new ServiceBusEntitySender(cfg, 'PUBLISHER_CONNECTION_STRING', log);
  return new QueuedEventPublisher(
    `servicebus:${cfg.entity}`,
    {
      health: link.health,
      start: () => link.start(),
      send: (e) => link.send(Buffer.from(JSON.stringify(e), 'utf8')),
      close: () => link.close(),
    },
    log,
  );
}
