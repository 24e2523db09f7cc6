import type { Config } from '../config/config.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import { FileReportSink, type ReportSink } from './sinks.js';
import type { TextAppender } from '../fsutil/fast-fs.js';

export interface ReportSinks {
  /** In fan-out order: the file sink first (always), then any broker. */
  sinks: ReportSink[];
  /** /health entries of broker sinks (the file sink has none). */
  health: HealthCheck[];
  close(): Promise<void>;
}

/**
 * dex-pipeline.md §2.4: the file sink always, then AWS SNS when SNS_REPORTER_EVENT_ARN is set, then Azure Service Bus
 * when REPORTER_CONNECTION_STRING is set. A malformed connection string throws here (start-up error naming the
 * variable); an unreachable broker does not: its link opens in the background and the publisher's queue holds and
 * retries the reports until it is back.
 */
export async function buildReportSinks(config: Config, log: Logger, appendFile?: TextAppender): Promise<ReportSinks> {
  const sinks: ReportSink[] = [new FileReportSink(config.reports.localReportsFolder, appendFile)];
  const brokers: Array<{ health: HealthCheck; close(): Promise<void> }> = [];
  const topic = config.aws.snsReporter;
  if (topic) {
    // Loaded only when configured, like the Service Bus SDK.
    const { SnsReportSink } = await import('./sns-sink.js');
    const sink = new SnsReportSink(topic, log.child({ component: 'report-sink' }));
    sinks.push(sink);
    brokers.push(sink.topic);
    sink.topic.start();
    log.info({ topicArn: topic.arn }, 'reports also go to AWS SNS');
  }
  const reporter = config.serviceBus.reporter;
  if (reporter) {
    // Loaded only when configured: the Service Bus SDK costs about 25 MiB of memory.
    const { ServiceBusReportSink } = await import('./servicebus-sink.js');
    const sink = new ServiceBusReportSink(reporter, log.child({ component: 'report-sink' }));
    sinks.push(sink);
    brokers.push(sink.link);
    sink.link.start();
    log.info({ entity: reporter.entity, kind: reporter.kind }, 'reports also go to Azure Service Bus');
  }
  return {
    sinks,
    health: brokers.map((b) => b.health),
    async close() {
      await Promise.all(brokers.map((b) => b.close()));
    },
  };
}
