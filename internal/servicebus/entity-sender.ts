import type { ServiceBusClient, ServiceBusSender } from '@azure/service-bus';
import type { ServiceBusSenderConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { closeQuietly, createServiceBusClient } from './client.js';
import { LinkHealth } from '../health/link-health.js';
import { scrubSecrets } from './connection-string.js';
import { retryUntil } from '../retry/retry-until.js';

/**
 * A sender to one queue or topic (REPORTER_* or PUBLISHER_*) with its /health entry `Event Publishing <entity>`.
 * `start()` opens the link in the background, so the entry turns UP without waiting for a first message, and an
 * unreachable broker never holds up the server's start: opening is retried with back-off until it works or a send
 * succeeds. Sends are not retried here: the caller's queue does that, in order.
 */
export class ServiceBusEntitySender {
  readonly health: LinkHealth;
  readonly entity: string;
  private readonly client: ServiceBusClient;
  private readonly sender: ServiceBusSender;
  private readonly log: Logger;
  private closed = false;
  private opening: { cancel(): void } | null = null;

  constructor(cfg: ServiceBusSenderConfig, variable: string, log: Logger) {
    this.entity = cfg.entity;
    this.client = createServiceBusClient(cfg.connectionString, variable);
    this.sender = this.client.createSender(cfg.entity);
    this.health = new LinkHealth(`Event Publishing ${cfg.entity}`, cfg.entity, scrubSecrets);
    this.log = log.child({ serviceBus: cfg.kind, entity: cfg.entity });
  }

  /** Opens the link in the background (never throws, never blocks). */
  start(): void {
    this.opening = retryUntil({
      // The SDK has no public open(); creating a batch opens the link (it needs the link's maximum message size).
      attempt: async () => void (await this.sender.createMessageBatch()),
      done: () => this.closed || this.health.isUp,
      onSuccess: () => {
        this.health.up();
        this.log.info('Service Bus sender link open');
      },
      onFailure: (err, retryInMs) => {
        this.health.down(err);
        this.log.warn({ err, retryInMs }, 'Service Bus sender link not open yet; retrying');
      },
    });
  }

  /**
   * Sends one message whose body is exactly `body` (one AMQP data section, no other properties), as the original
   * server did with `[]byte(json)`. A failure marks the link DOWN and is thrown for the caller to retry.
   */
  async send(body: Buffer): Promise<void> {
    if (this.closed) throw new Error(`the Service Bus sender for ${this.entity} is closed`);
    try {
      await this.sender.sendMessages({ body });
    } catch (err) {
      this.health.down(err);
      throw err;
    }
    this.health.up();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.opening?.cancel();
    await closeQuietly('sender', () => this.sender.close(), this.log);
    await closeQuietly('client', () => this.client.close(), this.log);
  }
}
