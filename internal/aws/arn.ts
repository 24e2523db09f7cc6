import { ConfigError } from '../config/env.js';

/** An SNS topic or SQS queue ARN, `arn:<partition>:<service>:<region>:<account>:<name>`, split into its parts. */
export interface AwsArn {
  arn: string;
  partition: string;
  service: 'sns' | 'sqs';
  region: string;
  account: string;
  /** The topic or queue name. */
  name: string;
}

// Topic and queue names: letters, digits, `-` and `_`, up to 256 (topics) / 80 (queues) characters, `.fifo` allowed.
const ARN = /^arn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(?:\.fifo)?)$/;

/**
 * Validates an ARN from `variable` at start-up (dex-pipeline.md §3.2: "given arn is not an arn"). The region is the
 * one the clients talk to; the account is the queue owner passed to GetQueueUrl.
 */
export function parseArn(value: string, variable: string, service: 'sns' | 'sqs'): AwsArn {
  const m = ARN.exec(value);
  if (!m) {
    throw new ConfigError(
      `${variable}: given arn is not an arn (expected arn:aws:${service}:<region>:<12-digit account>:<${service === 'sns' ? 'topic' : 'queue'} name>, got ${JSON.stringify(value)})`,
    );
  }
  const [, partition, got, region, account, name] = m as unknown as [string, string, string, string, string, string];
  if (got !== service) {
    throw new ConfigError(`${variable}: expected an ${service.toUpperCase()} ARN (arn:aws:${service}:...), got one for ${got}`);
  }
  return { arn: value, partition, service, region, account, name };
}
