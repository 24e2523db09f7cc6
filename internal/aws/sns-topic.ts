import { CreateTopicCommand, GetTopicAttributesCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { AwsArn } from './arn.js';
import type { Logger } from '../logging/logger.js';
import { LinkHealth } from '../health/link-health.js';
import { retryUntil } from '../retry/retry-until.js';
import { awsClientConfig, awsErrorName, endpointInUse } from './client-config.js';

/** Publish errors that no retry can fix (the message itself is refused): the message is dropped and logged. */
const REFUSED = new Set(['InvalidParameterException', 'InvalidParameterValueException', 'InvalidParameter', 'ValidationException']);

/**
 * One SNS topic (SNS_REPORTER_EVENT_ARN, SNS_PUBLISHER_EVENT_ARN) and its /health entry `SNS - <arn>`.
 *
 * start() checks the topic in the background (GetTopicAttributes; a missing topic is created with the original's tags,
 * dex-pipeline.md §3.2), retrying with back-off (1 s … 60 s) until it works, so an unreachable SNS never holds up the
 * server's start. A failed publish marks the entry DOWN and starts that check again, so the entry turns UP by itself
 * once SNS is back, even with nothing left to publish. Publishes are not retried here: the caller's queue does that,
 * in order. Reports and events naming the same ARN share one topic (one client, one /health entry).
 */
export class SnsTopic {
  readonly health: LinkHealth;
  private arn: string;
  private readonly client: SNSClient;
  private readonly log: Logger;
  private users = 0;
  private closed = false;
  private checking: { cancel(): void } | null = null;

  private constructor(
    private readonly cfg: AwsArn,
    log: Logger,
  ) {
    this.arn = cfg.arn;
    this.client = new SNSClient(awsClientConfig(cfg.region));
    this.health = new LinkHealth(`SNS - ${cfg.arn}`, cfg.arn);
    this.log = log.child({ topicArn: cfg.arn });
  }

  private static readonly open = new Map<string, SnsTopic>();

  /** The topic for `cfg.arn`, shared by everyone who names it; each user calls close() once. */
  static acquire(cfg: AwsArn, log: Logger): SnsTopic {
    let topic = SnsTopic.open.get(cfg.arn);
    if (!topic) {
      topic = new SnsTopic(cfg, log);
      SnsTopic.open.set(cfg.arn, topic);
      topic.log.info({ region: cfg.region, endpoint: endpointInUse('SNS') }, 'SNS topic configured');
    }
    topic.users++;
    return topic;
  }

  /** Checks the topic in the background (never throws, never blocks). */
  start(): void {
    if (this.checking || this.closed || this.health.isUp) return;
    this.checking = retryUntil({
      attempt: () => this.check(),
      done: () => this.closed || this.health.isUp,
      onSuccess: () => {
        this.health.up();
        this.log.info('SNS topic reachable');
      },
      onFailure: (err, retryInMs) => {
        this.health.down(err);
        this.log.warn({ err, retryInMs }, 'SNS topic not reachable yet; retrying');
      },
      onEnd: () => (this.checking = null),
    });
  }

  private async check(): Promise<void> {
    try {
      await this.client.send(new GetTopicAttributesCommand({ TopicArn: this.arn }));
    } catch (err) {
      if (awsErrorName(err) !== 'NotFoundException') throw err;
      // As the original: a topic that does not exist is created under the ARN's name, tagged as made by the app.
      const made = await this.client.send(
        new CreateTopicCommand({
          Name: this.cfg.name,
          Tags: [
            { Key: 'auto-generated', Value: 'true' },
            { Key: 'auto-generated-by', Value: 'phdo' },
          ],
        }),
      );
      if (made.TopicArn && made.TopicArn !== this.arn) {
        this.log.warn({ createdArn: made.TopicArn }, 'the SNS topic was created under another ARN (region or account of the credentials); publishing there');
        this.arn = made.TopicArn;
      }
      this.log.info({ topicArn: this.arn }, 'SNS topic did not exist: created');
    }
  }

  /**
   * Publishes one message (the JSON text plus "\n", no attributes, as the original). A failure marks the entry DOWN
   * and is thrown for the caller to retry, except a message SNS refuses as such (too large, invalid): retrying could
   * never send it and would hold up every later one, so it is logged and dropped.
   */
  async publish(message: string, describe: Record<string, unknown>): Promise<void> {
    if (this.closed) throw new Error(`the SNS topic ${this.cfg.arn} is closed`);
    try {
      await this.client.send(new PublishCommand({ TopicArn: this.arn, Message: message }));
    } catch (err) {
      if (REFUSED.has(awsErrorName(err))) {
        this.log.error({ err, ...describe, bytes: Buffer.byteLength(message) }, 'SNS refused the message itself; dropped');
        return;
      }
      this.health.down(err);
      this.start();
      throw err;
    }
    this.health.up();
  }

  /** Called once by each user; the client is closed when the last one is done. */
  async close(): Promise<void> {
    if (--this.users > 0 || this.closed) return;
    this.closed = true;
    this.checking?.cancel();
    SnsTopic.open.delete(this.cfg.arn);
    this.client.destroy();
  }
}
