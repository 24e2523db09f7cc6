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
import { decodeFileReady, type FileReady } from './event.js';
import type { EventConsumer } from './local.js';
import { PollingSubscriber, reportsWritten, within, type SubscriberOptions } from './subscriber.js';

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
 * - The receive loop is PollingSubscriber's: a receive error never ends the process, the entry goes DOWN and the
 *   loop tries again after 1 s … 60 s.
 */
export class SqsSubscriber extends PollingSubscriber<Received> {
  private readonly client: SQSClient;
  private readonly abort = new AbortController();
  /** For the calls close() cuts short: the long poll and the queue look-up. */
  private readonly abortable = { abortSignal: this.abort.signal };
  private queueUrl: string | null = null;
  private visibilityS = DEFAULT_VISIBILITY_S;
  private readonly renewals = new Set<NodeJS.Timeout>();

  constructor(
    private readonly cfg: SqsSubscriberConfig,
    opts: SubscriberOptions,
  ) {
    super(opts, {
      health: new LinkHealth(`SQS - ${cfg.queue.arn}`, cfg.queue.arn),
      log: opts.log.child({ queueArn: cfg.queue.arn }),
      maxMessages: cfg.maxMessages,
      broker: 'SQS',
      upMessage: 'SQS queue reachable',
    });
    this.client = new SQSClient({
      ...awsClientConfig(cfg.queue.region, (opts.receiveWaitMs ?? RECEIVE_WAIT_MS) + 15_000),
      // The request goes to the region's endpoint (or the override); the queue URL only names the queue.
      useQueueUrlAsEndpoint: false,
    });
  }

  override start(consumer: EventConsumer): void {
    this.log.info({ region: this.cfg.queue.region, endpoint: endpointInUse('SQS'), workers: this.opts.workers, maxMessages: this.cfg.maxMessages }, 'FileReady events are received from SQS');
    super.start(consumer);
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

  /**
   * Long polls, except while the entry is DOWN (at start, after an error): then a short poll, which answers at once,
   * so the entry turns UP as soon as SQS is reachable rather than after a whole long poll. Each message keeps the URL
   * of the queue it came from: it is settled there even if the queue is looked up again.
   */
  protected async receive(room: number): Promise<Received[]> {
    const queueUrl = (this.queueUrl ??= await this.findQueue());
    const out = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: room,
        WaitTimeSeconds: this.health.isUp ? Math.round((this.opts.receiveWaitMs ?? RECEIVE_WAIT_MS) / 1000) : 0,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      this.abortable,
    );
    return (out.Messages ?? []).map((m) => ({ ...m, queueUrl }));
  }

  protected override receiveFailed(err: unknown): void {
    // A queue deleted (and maybe made again) has a new URL.
    if (/NonExistentQueue|QueueDoesNotExist/.test(awsErrorName(err))) this.queueUrl = null;
  }

  /** Received while close() aborted the call: visible again at once for another instance (or our restart). */
  protected handBack(m: Received): Promise<void> {
    return this.setVisibility(m, 0, 'release');
  }

  protected idOf(m: Received): string {
    return m.MessageId ?? '';
  }

  protected async process(m: Received): Promise<void> {
    const receiveCount = Math.max(1, Number(m.Attributes?.ApproximateReceiveCount ?? 1) || 1);
    const log = this.log.child({ messageId: m.MessageId ?? '', receiveCount });
    log.debug('SQS message received');
    const renewal = this.keepInvisible(m, log);
    let outcome: 'delete' | 'retry' | 'leave';
    try {
      outcome = await this.attempt(m, receiveCount, log);
    } finally {
      // No renewal may land after the settlement below.
      await renewal.stop();
    }
    if (outcome === 'retry') await this.retryLater(m, receiveCount);
    if (outcome !== 'delete') return;
    try {
      // Not tied to the abort signal: an attempt that ends within close()'s grace period still deletes its message.
      await this.client.send(new DeleteMessageCommand({ QueueUrl: m.queueUrl, ReceiptHandle: m.ReceiptHandle }));
    } catch (err) {
      this.health.down(err);
      log.error({ err }, 'deleting a delivered SQS message failed; it will be received (and delivered) again');
    }
  }

  /** One attempt, while the message is kept invisible: what to do with the message next. */
  private async attempt(m: Received, receiveCount: number, log: Logger): Promise<'delete' | 'retry' | 'leave'> {
    let event: FileReady;
    try {
      event = { ...decodeSqsBody(m.Body ?? ''), id: m.MessageId ?? '', retry_count: receiveCount - 1 };
    } catch (err) {
      log.error({ err: (err as Error).message }, "SQS message is not a FileReady event: not processed; left to the queue's redrive policy");
      return 'retry';
    }
    const eventLog = log.child({ uploadId: event.upload_id, target: event.deliver_target });
    try {
      await this.consumer!(event);
    } catch (err) {
      if (receiveCount >= 1 + this.opts.maxRetries) eventLog.error({ err, attempts: receiveCount }, "event processing failed its last attempt; left to the queue's redrive policy");
      else eventLog.warn({ err, attempt: receiveCount }, 'event processing failed; it will be received again');
      return 'retry';
    }
    return (await reportsWritten(this.opts, eventLog)) ? 'delete' : 'leave';
  }

  /** Renews the message's visibility every half timeout while its attempt runs; stop() waits for a renewal under way. */
  private keepInvisible(m: Received, log: Logger): { stop(): Promise<void> } {
    let renewing: Promise<void> = Promise.resolve();
    const timer = setInterval(() => (renewing = this.setVisibility(m, this.visibilityS, 'renew', log)), Math.max(500, (this.visibilityS * 1000) / 2));
    this.renewals.add(timer);
    return {
      stop: async () => {
        clearInterval(timer);
        this.renewals.delete(timer);
        await renewing;
      },
    };
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

  /**
   * Stops receiving (the long poll is aborted), gives running attempts `graceMs`, then closes. An attempt cut short
   * is neither deleted nor renewed any more: the message is received again once its visibility timeout ends.
   */
  async close(graceMs: number): Promise<void> {
    if (!this.beginClose()) return;
    this.abort.abort();
    await this.loopDone;
    await within(this.idle(), graceMs);
    if (this.slots.inUse > 0) this.log.warn({ inFlight: this.slots.inUse }, 'closing with FileReady messages still in process; they will be received again');
    for (const t of this.renewals) clearInterval(t);
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
