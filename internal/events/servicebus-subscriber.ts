import type { ServiceBusClient, ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { ServiceBusSubscriberConfig } from '../config/config.js';
import { closeQuietly, createServiceBusClient } from '../servicebus/client.js';
import { sleep } from '../retry/sleep.js';
import { LinkHealth } from '../health/link-health.js';
import { scrubSecrets } from '../servicebus/connection-string.js';
import { decodeFileReady, type FileReady } from './event.js';
import { PollingSubscriber, reportsWritten, within, type SubscriberOptions } from './subscriber.js';

export type ServiceBusSubscriberOptions = SubscriberOptions;

const RECEIVE_WAIT_MS = 5_000;
/** Lock renewal budget per attempt (a delivery of a very large file can take long); renewal stops at settlement. */
const LOCK_BUDGET_PER_ATTEMPT_MS = 60 * 60_000;
/** Service Bus limits the dead-letter description; ours carries the last error. */
const MAX_DESCRIPTION = 1024;

/**
 * One peek-lock receiver on `<topic>/Subscriptions/<subscription>` feeding the FileReady consumer (dex-pipeline.md §3.4,
 * with decisions.md's retries instead of the original's dead-letter-on-first-failure):
 * - a loop receives up to SUBSCRIBER_MAX_MESSAGES per call, but never more than there are free workers;
 * - each message is decoded (id = the broker's message id); one that is not a FileReady is dead-lettered at once and
 *   never reaches the consumer;
 * - the consumer gets up to 1 + maxRetries attempts (retry_count = attempt − 1) with back-off between them; success →
 *   complete, last failure → dead-letter with the reason and the last error;
 * - the lock is kept by the SDK's auto-renewal (maxAutoLockRenewalDurationInMs covers every attempt and wait), so a
 *   message stays ours while it is retried in-process instead of being redelivered behind our back;
 * - a receive error never ends the process: the entry goes DOWN, the loop waits (1 s … 60 s) and tries again.
 */
export class ServiceBusSubscriber extends PollingSubscriber<Received> {
  private readonly client: ServiceBusClient;
  private receiver: ServiceBusReceiver | null = null;
  private readonly abort = new AbortController();
  private readonly retryWaits = new Set<() => void>();

  constructor(
    private readonly cfg: ServiceBusSubscriberConfig,
    opts: ServiceBusSubscriberOptions,
  ) {
    super(opts, {
      health: new LinkHealth(`${cfg.subscription} Event Subscriber`, `${cfg.topic}/Subscriptions/${cfg.subscription}`, scrubSecrets),
      log: opts.log.child({ topic: cfg.topic, subscription: cfg.subscription }),
      maxMessages: cfg.maxMessages,
      broker: 'Service Bus',
      upMessage: 'Service Bus receiver link open',
    });
    this.client = createServiceBusClient(cfg.connectionString, 'SUBSCRIBER_CONNECTION_STRING');
  }

  private createReceiver(): ServiceBusReceiver {
    let waits = 0;
    for (let a = 1; a <= this.opts.maxRetries; a++) waits += this.opts.backoffMs(a);
    return this.client.createReceiver(this.cfg.topic, this.cfg.subscription, {
      receiveMode: 'peekLock',
      maxAutoLockRenewalDurationInMs: waits + (1 + this.opts.maxRetries) * LOCK_BUDGET_PER_ATTEMPT_MS,
      // The body's exact bytes: we decode (and judge poison) ourselves.
      skipParsingBodyAsJson: true,
    });
  }

  /** Each message keeps the receiver it came from: it is settled through that one. */
  protected async receive(room: number): Promise<Received[]> {
    const receiver = (this.receiver ??= this.createReceiver());
    const messages = await receiver.receiveMessages(room, { maxWaitTimeInMs: this.opts.receiveWaitMs ?? RECEIVE_WAIT_MS, abortSignal: this.abort.signal });
    return messages.map((m) => ({ m, receiver }));
  }

  protected override receiveFailed(): void {
    // A receiver the SDK gave up on cannot be used again: the next round makes a new one.
    if (this.receiver?.isClosed) this.receiver = null;
  }

  /** Received while close() waited for the receive call to end: straight back to the subscription. */
  protected handBack({ m, receiver }: Received): Promise<void> {
    return this.settle(m, 'abandon', () => receiver.abandonMessage(m));
  }

  protected idOf({ m }: Received): string {
    return String(m.messageId ?? '');
  }

  protected async process({ m, receiver }: Received): Promise<void> {
    const messageId = String(m.messageId ?? '');
    let event: FileReady;
    try {
      event = { ...decodeFileReady(bodyText(m.body)), id: messageId };
    } catch (err) {
      this.log.error({ messageId, err }, 'FileReady message cannot be decoded: dead-lettered without processing');
      const description = `the body is not a FileReady event: ${(err as Error).message}`;
      await this.settle(m, 'dead-letter', () => receiver.deadLetterMessage(m, { deadLetterReason: 'InvalidFileReadyEvent', deadLetterErrorDescription: description }));
      return;
    }
    const attempts = 1 + this.opts.maxRetries;
    const log = this.log.child({ messageId, uploadId: event.upload_id, target: event.deliver_target });
    let lastError: Error | null = null;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        await this.consumer!({ ...event, retry_count: attempt - 1 });
        lastError = null;
      } catch (err) {
        lastError = err as Error;
      }
      if (!lastError) {
        if (await reportsWritten(this.opts, log)) await this.settle(m, 'complete', () => receiver.completeMessage(m));
        return;
      }
      if (attempt === attempts) break;
      const wait = this.opts.backoffMs(attempt);
      log.warn({ err: lastError, attempt, retryInMs: wait }, 'event processing failed; retrying');
      if (!(await this.retryWait(wait))) {
        // Shutting down: hand the message back so another instance (or our restart) takes it at once.
        await this.settle(m, 'abandon', () => receiver.abandonMessage(m));
        return;
      }
    }
    log.error({ err: lastError, attempts }, 'event dead-lettered after its last attempt');
    const description = `${attempts} attempt(s) failed; last error: ${lastError?.message ?? 'unknown'}`.slice(0, MAX_DESCRIPTION);
    await this.settle(m, 'dead-letter', () => receiver.deadLetterMessage(m, { deadLetterReason: 'MaxRetryCountExceeded', deadLetterErrorDescription: description }));
  }

  /** A failed settlement is logged and shown in /health; the broker redelivers the message when its lock ends. */
  private async settle(m: ServiceBusReceivedMessage, what: string, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      this.health.down(err);
      this.log.error({ err, messageId: String(m.messageId ?? ''), settlement: what }, 'settling a FileReady message failed; it will be redelivered');
    }
  }

  /** Waits between attempts; resolves false when shutdown cuts the wait short. */
  private async retryWait(ms: number): Promise<boolean> {
    if (this.stopped) return false;
    const wait = sleep(ms);
    this.retryWaits.add(wait.cancel);
    try {
      return await wait.done;
    } finally {
      this.retryWaits.delete(wait.cancel);
    }
  }

  /** Stops receiving, abandons messages waiting for a retry, gives running attempts `graceMs`, then closes. */
  async close(graceMs: number): Promise<void> {
    if (!this.beginClose()) return;
    // The current receive call is let finish (≤ receiveWaitMs): it drains the link's credit, so a message abandoned
    // below is not sent straight back to this link (an aborted receive leaves its credit open). Aborted only when slow.
    if (!(await within(this.loopDone, graceMs))) this.abort.abort();
    await this.loopDone;
    for (const cancel of [...this.retryWaits]) cancel();
    await within(this.idle(), graceMs);
    if (this.slots.inUse > 0) this.log.warn({ inFlight: this.slots.inUse }, 'closing with FileReady messages still in process; they will be redelivered');
    const receiver = this.receiver;
    if (receiver) await closeQuietly('receiver', () => receiver.close(), this.log);
    await closeQuietly('client', () => this.client.close(), this.log);
  }
}

interface Received {
  m: ServiceBusReceivedMessage;
  receiver: ServiceBusReceiver;
}

/** The message body as text when it is bytes (a data section), else as the SDK decoded it (an AMQP value). */
function bodyText(body: unknown): unknown {
  if (Buffer.isBuffer(body)) return body.toString('utf8');
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  return body;
}
