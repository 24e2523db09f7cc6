// SNS_* / SQS_* settings (dex-pipeline.md §1.2, §3.2): ARNs validated at start-up ("given arn is not an arn"), the
// region taken from the ARN, SQS_SUBSCRIBER_MAX_MESSAGES; and the SQS body decoder (raw FileReady, SNS envelope).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../internal/config/config.js';
import { decodeSqsBody } from '../../internal/events/sqs-subscriber.js';
import { fileReady } from '../../internal/events/event.js';
import { runToExit } from '../helpers/server.js';

const TOPIC = 'arn:aws:sns:eu-west-3:123456789012:dex-reports';
const QUEUE = 'arn:aws:sqs:us-gov-west-1:210987654321:dex-file-ready';

const throwsNaming = (env: Record<string, string>, message: RegExp) => assert.throws(() => loadConfig(env), { name: 'ConfigError', message });

describe('config: SNS and SQS', () => {
  it('off by default', () => {
    assert.deepEqual(loadConfig({}).aws, { snsReporter: undefined, snsPublisher: undefined, sqsSubscriber: undefined });
  });

  it('topic and queue ARNs are split into partition, region, account and name', () => {
    const c = loadConfig({ SNS_REPORTER_EVENT_ARN: TOPIC, SNS_PUBLISHER_EVENT_ARN: `${TOPIC}-events`, SQS_SUBSCRIBER_EVENT_ARN: QUEUE });
    assert.deepEqual(c.aws.snsReporter, { arn: TOPIC, partition: 'aws', service: 'sns', region: 'eu-west-3', account: '123456789012', name: 'dex-reports' });
    assert.equal(c.aws.snsPublisher?.name, 'dex-reports-events');
    assert.deepEqual(c.aws.sqsSubscriber, {
      queue: { arn: QUEUE, partition: 'aws', service: 'sqs', region: 'us-gov-west-1', account: '210987654321', name: 'dex-file-ready' },
      maxMessages: 3,
    });
    assert.equal(loadConfig({ SNS_PUBLISHER_EVENT_ARN: 'arn:aws-cn:sns:cn-north-1:123456789012:t.fifo' }).aws.snsPublisher?.partition, 'aws-cn');
    // Surrounding blanks are trimmed like every value.
    assert.equal(loadConfig({ SNS_REPORTER_EVENT_ARN: ` ${TOPIC} ` }).aws.snsReporter?.arn, TOPIC);
  });

  it('a value that is not an ARN stops the start: "given arn is not an arn", naming the variable', () => {
    const bad = [
      'x',
      'dex-reports',
      'arn:aws:sns:eu-west-3:123:dex-reports', // account not 12 digits
      'arn:aws:sns::123456789012:dex-reports', // no region
      'arn:aws:sns:eu-west-3:123456789012:', // no name
      'arn:aws:sns:eu-west-3:123456789012:a:b', // a subscription ARN, not a topic
      'arn:aws:sns:eu-west-3:123456789012:has space',
      'arn:aws:sns:eu-west-3:123456789012:../x',
      'https://sqs.us-east-1.amazonaws.com/123456789012/q',
    ];
    for (const v of bad) {
      throwsNaming({ SNS_REPORTER_EVENT_ARN: v }, /^SNS_REPORTER_EVENT_ARN: given arn is not an arn/);
      throwsNaming({ SNS_PUBLISHER_EVENT_ARN: v }, /^SNS_PUBLISHER_EVENT_ARN: given arn is not an arn/);
      throwsNaming({ SQS_SUBSCRIBER_EVENT_ARN: v }, /^SQS_SUBSCRIBER_EVENT_ARN: given arn is not an arn/);
    }
  });

  it('an ARN of the wrong service is refused', () => {
    throwsNaming({ SNS_PUBLISHER_EVENT_ARN: QUEUE }, /^SNS_PUBLISHER_EVENT_ARN: expected an SNS ARN .* got one for sqs/);
    throwsNaming({ SQS_SUBSCRIBER_EVENT_ARN: TOPIC }, /^SQS_SUBSCRIBER_EVENT_ARN: expected an SQS ARN .* got one for sns/);
  });

  it('SQS_SUBSCRIBER_MAX_MESSAGES: 0 or unset → 3, at most 10, and only with the queue ARN', () => {
    const max = (v: string) => loadConfig({ SQS_SUBSCRIBER_EVENT_ARN: QUEUE, SQS_SUBSCRIBER_MAX_MESSAGES: v }).aws.sqsSubscriber?.maxMessages;
    assert.equal(max('0'), 3);
    assert.equal(max(''), 3);
    assert.equal(max('1'), 1);
    assert.equal(max('10'), 10);
    throwsNaming({ SQS_SUBSCRIBER_EVENT_ARN: QUEUE, SQS_SUBSCRIBER_MAX_MESSAGES: '11' }, /SQS_SUBSCRIBER_MAX_MESSAGES/);
    throwsNaming({ SQS_SUBSCRIBER_EVENT_ARN: QUEUE, SQS_SUBSCRIBER_MAX_MESSAGES: 'many' }, /SQS_SUBSCRIBER_MAX_MESSAGES/);
    throwsNaming({ SQS_SUBSCRIBER_MAX_MESSAGES: '5' }, /SQS_SUBSCRIBER_EVENT_ARN: required/);
  });

  it('the real binary exits 1 with the message for a bad ARN', async () => {
    for (const name of ['SNS_REPORTER_EVENT_ARN', 'SNS_PUBLISHER_EVENT_ARN', 'SQS_SUBSCRIBER_EVENT_ARN']) {
      const r = await runToExit({ [name]: 'not-an-arn' });
      assert.equal(r.code, 1, `${name}: ${r.output}`);
      assert.match(r.output, new RegExp(`${name}: given arn is not an arn`), r.output);
    }
  });
});

describe('SQS bodies', () => {
  const e = fileReady({ uploadId: '0b7c6b7e-1a4c-4f3e-9d6a-2f7e5c1b9a10', path: 'a/b.txt', target: 'edav', metadata: { b: '2', a: '1' } });
  const json = JSON.stringify(e);

  it('a raw FileReady (with or without the trailing newline SNS publishers add)', () => {
    assert.deepEqual(decodeSqsBody(json), e);
    assert.deepEqual(decodeSqsBody(`${json}\n`), e);
  });

  it('an SNS envelope: its Message is the FileReady JSON, or the base64 of it (older publishers)', () => {
    const envelope = (message: string) => JSON.stringify({ Type: 'Notification', MessageId: 'sns-id', TopicArn: TOPIC, Message: message, Timestamp: '2026-01-01T00:00:00Z' });
    assert.deepEqual(decodeSqsBody(envelope(`${json}\n`)), e);
    assert.deepEqual(decodeSqsBody(envelope(Buffer.from(json).toString('base64'))), e);
  });

  it('anything else is refused with a reason', () => {
    const refused: Array<[string, RegExp]> = [
      ['', /the body is not JSON/],
      ['not json', /the body is not JSON/],
      ['null', /not a FileReady event/],
      ['[]', /not a FileReady event/],
      ['{"type":"Other","upload_id":"x","deliver_target":"t"}', /not a FileReady event/],
      [JSON.stringify({ Type: 'Notification', Message: 'bm90IGpzb24=' }), /the SNS envelope Message is not JSON/],
      [JSON.stringify({ Type: 'Notification', Message: '{"type":"Other"}' }), /not a FileReady event/],
      [JSON.stringify({ Type: 'SubscriptionConfirmation', Message: json }), /not a FileReady event/],
    ];
    for (const [body, why] of refused) assert.throws(() => decodeSqsBody(body), why, body);
  });
});
