import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { SqsSubscriberConfig } from '../config/config.js';
import { awsClientConfig, awsErrorName, endpointInUse } from '../aws/client-config.js';
import { LinkHealth } from '../health/link-health.js';
import type { Logger } from '../logging/logger.js';
import { MAX_BACKOFF_MS, MIN_BACKOFF_MS } from '../retry/retry-queue.js';
import { sleep } from '../retry/sleep.js';
import { decodeFileReady, type FileReady } from './event.js';
import type { EventConsumer } from './local.js';
import { reportsWritten, within, WorkerSlots, type Subscriber, type SubscriberOptions } from './subscriber.js';

/** SQS's longest long poll: the fewest empty receives while idle. */
const RECEIVE_WAIT_MS = 20_000;
/** When the queue's own VisibilityTimeout cannot be read (no sqs:GetQueueAttributes): the original's 30 s. */
const DEFAULT_VISIBILITY_S = 30;
/** SQS's limit for a visibility timeout: 12 h. */
const MAX_VISIBILITY_S = 12 * 60 * 60;

/**
 * SQS_SUBSCRIBER_EVENT_ARN (dex-pipeline.md §3.4): a long-polling receiver on one queue, feeding the delivery workers.
 * - The queue URL comes from GetQueueUrl with the ARN's name and account; the ARN's region is the client's. The queue
 *   and its subscription to the FileReady topic are infrastructure: they are not created here.
 * - A body is either the FileReady JSON (raw message delivery) or an SNS envelope (`{"Type":"Notification",
 *   "Message":"<the FileReady JSON>"}`; a base64 `Message`, as older publishers sent, is accepted too). The event's `id`
 *   is the SQS MessageId and its `retry_count` is the message's receive count − 1.
 * - One attempt per receive. While it runs, the message is kept invisible (its visibility is renewed every half of
 *   the queue's VisibilityTimeout). Success → the attempt's reports are written → DeleteMessage. Failure → the message
 *   becomes visible again after the back-off of decisions.md (1 s, 2 s, 4 s … 60 s, by receive count), so a retry
 *   survives a crash and may be taken by any instance; after the queue's maxReceiveCount receives its redrive policy
 *   moves it to the dead-letter queue. SQS has no call to dead-letter a message at once, and deleting one would lose
 *   it, so a poison message (not a FileReady) goes the same way: never processed, logged, and left to the redrive
 *   policy, where an operator finds it.
 * - A receive error never ends the process: the entry goes DOWN, the loop waits (1 s … 60 s) and tries again.
 */
export class SqsSubscriber implements Subscriber {
  readonly health: LinkHealth;
  private readonly client: SQSClient;
  private readonly log: Logger;
  private readonly slots: WorkerSlots;
  private readonly abort = new AbortController();
  /** For the calls close() cuts short: the long poll and the queue look-up. */
  private readonly abortable = { abortSignal: this.abort.signal };
  private queueUrl: string | null = null;
  private visibilityS = DEFAULT_VISIBILITY_S;
  private consumer: EventConsumer | null = null;
  private stopped = false;
  private endPause: () => void = () => {};
  private loopDone: Promise<void> = Promise.resolve();
  private readonly heartbeats = new Set<NodeJS.Timeout>();

  constructor(
    private readonly cfg: SqsSubscriberConfig,
    private readonly opts: SubscriberOptions,
  ) {
    const waitMs = opts.receiveWaitMs ?? RECEIVE_WAIT_MS;
    this.client = new SQSClient({
      ...awsClientConfig(cfg.queue.region, waitMs + 15_000),
      // The request goes to the region's endpoint (or the override); the queue URL only names the queue.
      useQueueUrlAsEndpoint: false,
    });
    this.health = new LinkHealth(`SQS - ${cfg.queue.arn}`, cfg.queue.arn);
    this.log = opts.log.child({ queueArn: cfg.queue.arn });
    this.slots = new WorkerSlots(opts.workers);
  }

  start(consumer: EventConsumer): void {
    if (this.consumer) throw new Error('the subscriber already has a consumer');
    this.consumer = consumer;
    this.log.info({ region: this.cfg.queue.region, endpoint: endpointInUse('SQS'), workers: this.opts.workers, maxMessages: this.cfg.maxMessages }, 'FileReady events are received from SQS');
    this.loopDone = this.loop();
  }

  /** GetQueueUrl, then the queue's visibility timeout and redrive policy (read only to size renewals and to warn). */
  private async findQueue(): Promise<string> {
    const { name, account } = this.cfg.queue;
    const { QueueUrl } = await this.client.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }), this.abortable);
    if (!QueueUrl) throw new Error(`GetQueueUrl returned no URL for ${name}`);
    let redrive: RedrivePolicy | null = null;
    try {
      const { Attributes: a = {} } = await this.client.send(
        new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['VisibilityTimeout', 'RedrivePolicy'] }),
        this.abortable,
      );
      const v = Number(a['VisibilityTimeout']);
      if (Number.isInteger(v) && v > 0) this.visibilityS = v;
      if (a['RedrivePolicy']) redrive = JSON.parse(a['RedrivePolicy']) as RedrivePolicy;
    } catch (err) {
      if (this.stopped) throw err;
      this.log.warn({ err, visibilityTimeoutS: this.visibilityS }, 'cannot read the SQS queue attributes; assuming its visibility timeout');
    }
    const attempts = 1 + this.opts.maxRetries;
    this.log.info({ queueUrl: QueueUrl, visibilityTimeoutS: this.visibilityS, redrivePolicy: redrive }, 'SQS queue found');
    if (!redrive) {
      this.log.warn(`the SQS queue has no redrive policy: a FileReady that keeps failing, or cannot be decoded, is received again and again (at most every 60 s); give it a dead-letter queue with maxReceiveCount ${attempts} (1 + EVENT_MAX_RETRY_COUNT)`);
    } else if (Number(redrive.maxReceiveCount) !== attempts) {
      this.log.info({ maxReceiveCount: redrive.maxReceiveCount, eventMaxRetryCount: this.opts.maxRetries }, "attempts per SQS message follow the queue's maxReceiveCount");
    }
    return QueueUrl;
  }

  private async loop(): Promise<void> {
    let retryIn = MIN_BACKOFF_MS;
    const waitS = Math.round((this.opts.receiveWaitMs ?? RECEIVE_WAIT_MS) / 1000);
    while (!this.stopped) {
      await this.slots.waitForFree(() => this.stopped);
      if (this.stopped) break;
      let messages: Message[];
      let queueUrl: string;
      try {
        queueUrl = this.queueUrl ??= await this.findQueue();
        const out = await this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: Math.min(this.cfg.maxMessages, this.slots.free),
            WaitTimeSeconds: waitS,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          this.abortable,
        );
        messages = out.Messages ?? [];
      } catch (err) {
        if (this.stopped) break;
        this.health.down(err);
        this.log.warn({ err, retryInMs: retryIn }, 'SQS receive failed; retrying');
        // A queue deleted (and maybe made again) has a new URL.
        if (/NonExistentQueue|QueueDoesNotExist/.test(awsErrorName(err))) this.queueUrl = null;
        await this.pause(retryIn);
        retryIn = Math.min(retryIn * 2, MAX_BACKOFF_MS);
        continue;
      }
      if (!this.health.isUp) this.log.info('SQS queue reachable');
      this.health.up();
      retryIn = MIN_BACKOFF_MS;
      for (const m of messages) {
        const received = { ...m, queueUrl };
        // Received while close() aborted the call: visible again at once for another instance (or our restart).
        if (this.stopped) await this.setVisibility(received, 0, 'release');
        else this.slots.run(() => this.process(received), (err) => this.log.error({ err, messageId: m.MessageId }, 'FileReady message handling failed'));
      }
    }
  }

  private async process(m: Received): Promise<void> {
    const messageId = m.MessageId ?? '';
    const receiveCount = Math.max(1, Number(m.Attributes?.ApproximateReceiveCount ?? 1) || 1);
    const log = this.log.child({ messageId, receiveCount });
    log.debug('SQS message received');
    const heartbeat = this.keepInvisible(m, log);
    try {
      let event: FileReady;
      try {
        event = { ...decodeSqsBody(m.Body ?? ''), id: messageId, retry_count: receiveCount - 1 };
      } catch (err) {
        log.error({ err: (err as Error).message }, "SQS message is not a FileReady event: not processed; left to the queue's redrive policy");
        await this.retryLater(m, receiveCount);
        return;
      }
      const eventLog = log.child({ uploadId: event.upload_id, target: event.deliver_target });
      try {
        await this.consumer!(event);
      } catch (err) {
        const last = receiveCount >= 1 + this.opts.maxRetries;
        if (last) eventLog.error({ err, attempts: receiveCount }, "event processing failed its last attempt; left to the queue's redrive policy");
        else eventLog.warn({ err, attempt: receiveCount }, 'event processing failed; it will be received again');
        await this.retryLater(m, receiveCount);
        return;
      }
      if (!(await reportsWritten(this.opts, eventLog))) return;
      try {
        // Not tied to the abort signal: an attempt that ends within close()'s grace period still deletes its message.
        await this.client.send(new DeleteMessageCommand({ QueueUrl: m.queueUrl, ReceiptHandle: m.ReceiptHandle }));
      } catch (err) {
        this.health.down(err);
        eventLog.error({ err }, 'deleting a delivered SQS message failed; it will be received (and delivered) again');
      }
    } finally {
      clearInterval(heartbeat);
      this.heartbeats.delete(heartbeat);
    }
  }

  /** Renews the message's visibility every half timeout while its attempt runs. */
  private keepInvisible(m: Received, log: Logger): NodeJS.Timeout {
    const timer = setInterval(() => void this.setVisibility(m, this.visibilityS, 'renew', log), Math.max(500, (this.visibilityS * 1000) / 2));
    this.heartbeats.add(timer);
    return timer;
  }

  /** Visible again after the back-off for its attempt (receive count n → backoffMs(n), whole seconds). */
  private retryLater(m: Received, receiveCount: number): Promise<void> {
    return this.setVisibility(m, Math.min(MAX_VISIBILITY_S, Math.ceil(this.opts.backoffMs(receiveCount) / 1000)), 'retry');
  }

  /** A failure is logged and shown in /health; the message then becomes visible when its current timeout ends. */
  private async setVisibility(m: Received, seconds: number, why: string, log: Logger = this.log): Promise<void> {
    try {
      // Not tied to the abort signal: a message handed back at shutdown must still be handed back.
      await this.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: m.queueUrl, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds }));
    } catch (err) {
      this.health.down(err);
      log.warn({ err, messageId: m.MessageId, visibilityTimeoutS: seconds, change: why }, 'changing an SQS message visibility failed');
    }
  }

  /** The receive loop's wait after an error; close() cuts it short. */
  private async pause(ms: number): Promise<void> {
    const wait = sleep(ms);
    this.endPause = wait.cancel;
    await wait.done;
  }

  idle(): Promise<void> {
    return this.slots.idle();
  }

  /**
   * Stops receiving (the long poll is aborted), gives running attempts `graceMs`, then closes. An attempt cut short
   * is neither deleted nor renewed any more: the message is received again once its visibility timeout ends.
   */
  async close(graceMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.endPause();
    this.slots.wake();
    this.abort.abort();
    await this.loopDone;
    await within(this.idle(), graceMs);
    if (this.slots.inUse > 0) this.log.warn({ inFlight: this.slots.inUse }, 'closing with FileReady messages still in process; they will be received again');
    for (const t of this.heartbeats) clearInterval(t);
    this.client.destroy();
  }
}

interface RedrivePolicy {
  maxReceiveCount?: number | string;
  deadLetterTargetArn?: string;
}

/** A received message and the URL of the queue it came from (settled there even if the loop looks the queue up again). */
type Received = Message & { queueUrl: string };

/**
 * A FileReady from an SQS body: the event JSON itself (raw delivery), or an SNS envelope whose `Message` is the
 * event JSON, or its base64 (older publishers). Anything else throws (a poison message).
 */
export function decodeSqsBody(body: string): FileReady {
  const json = (text: string, what: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${what} is not JSON`);
    }
  };
  const v = json(body, 'the body');
  if (!isEnvelope(v)) return decodeFileReady(v);
  const text = v.Message.trimStart().startsWith('{') ? v.Message : Buffer.from(v.Message, 'base64').toString('utf8');
  return decodeFileReady(json(text, 'the SNS envelope Message'));
}

function isEnvelope(v: unknown): v is { Type: 'Notification'; Message: string } {
  const e = v as { Type?: unknown; Message?: unknown } | null;
  return typeof e === 'object' && e !== null && e.Type === 'Notification' && typeof e.Message === 'string';
}
