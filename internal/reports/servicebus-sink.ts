import type { ServiceBusSenderConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { ServiceBusEntitySender } from '../servicebus/entity-sender.js';
import type { Report } from './report.js';
import type { ReportSink } from './sinks.js';

/**
 * REPORTER_* (dex-pipeline.md §2.4): each report as one message on REPORTER_QUEUE or else REPORTER_TOPIC.
 *
 * The body is the compact report JSON as bytes (a Buffer, one AMQP data section), not the object or the string:
 * the SDK would JSON-encode a string a second time (`"{\"report…"`), and a Buffer pins the exact bytes the file sink
 * writes (minus the newline), whatever the SDK's serialiser does. JavaScript receivers still get the parsed object;
 * other clients get the JSON text, as from the original server. No subject, content type, message id or properties.
 */
export class ServiceBusReportSink implements ReportSink {
  readonly name: string;
  readonly link: ServiceBusEntitySender;

  constructor(cfg: ServiceBusSenderConfig, log: Logger) {
    this.link = new ServiceBusEntitySender(cfg, 'REPORTER_CONNECTION_STRING', log);
    this.name = `servicebus:${cfg.entity}`;
  }

  async publish(report: Report): Promise<void> {
    await this.link.send(Buffer.from(JSON.stringify(report), 'utf8'));
  }
}
