import type { AwsArn } from '../aws/arn.js';
import { SnsTopic } from '../aws/sns-topic.js';
import type { Logger } from '../logging/logger.js';
import type { Report } from './report.js';
import type { ReportSink } from './sinks.js';

/** SNS_REPORTER_EVENT_ARN (dex-pipeline.md §2.4): each report as one SNS message, its JSON plus "\n", no attributes. */
export class SnsReportSink implements ReportSink {
  readonly name: string;
  readonly topic: SnsTopic;

  constructor(cfg: AwsArn, log: Logger) {
    this.topic = SnsTopic.acquire(cfg, log);
    this.name = `sns:${cfg.arn}`;
  }

  async publish(report: Report): Promise<void> {
    await this.topic.publish(`${JSON.stringify(report)}\n`, { uploadId: report.upload_id, stage: report.stage_info.action });
  }
}
