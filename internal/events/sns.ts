import type { AwsArn } from '../aws/arn.js';
import { SnsTopic } from '../aws/sns-topic.js';
import type { Logger } from '../logging/logger.js';
import { QueuedEventPublisher } from './queued-publisher.js';

/**
 * SNS_PUBLISHER_EVENT_ARN (dex-pipeline.md §3.2/§3.3): each FileReady as one SNS message, its JSON plus "\n", through
 * the ordered retrying queue. The topic is checked (and made if missing) at start-up, in the background.
 */
export function snsEventPublisher(cfg: AwsArn, log: Logger): QueuedEventPublisher {
  const topic = SnsTopic.acquire(cfg, log);
  return new QueuedEventPublisher(
    `sns:${cfg.arn}`,
    {
      health: topic.health,
      start: () => topic.start(),
      send: (e) => topic.publish(`${JSON.stringify(e)}\n`, { uploadId: e.upload_id, target: e.deliver_target }),
      close: () => topic.close(),
    },
    log,
  );
}
