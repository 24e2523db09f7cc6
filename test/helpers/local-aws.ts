// A real SNS/SQS-compatible server for the tests: fauxqs 1.9.2 (npm), which the official AWS SDK v3 clients talk to
// (SNS over the query protocol, SQS over JSON). Its own start function binds 0.0.0.0 (test-infrastructure.md §3), so
// the Fastify app it builds is listened on 127.0.0.1 here instead. It keeps topics, queues and messages in memory;
// stop() closes the socket (every connection cut, the state kept) and start() listens again on the same port: a
// broker that goes down and comes back with nothing lost. Topic → queue fan-out (raw or in the SNS envelope), long
// polling, visibility timeouts and redrive to a dead-letter queue are fauxqs's own. One thing is added: fauxqs keeps
// a long poll waiting after its client has gone (a server killed, or cut off by stop()), and such a poll would take
// the next message of the queue for nobody, raising its receive count; here a poll whose connection closes ends at
// once, so receive counts are those the clients saw.
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildApp } from 'fauxqs';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';

/** The account of every ARN fauxqs makes. */
export const ACCOUNT = '000000000000';
export const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'test-key-id', secretAccessKey: 'test-secret-key' };

export interface QueueInfo {
  name: string;
  arn: string;
  url: string;
  /** The dead-letter queue of its redrive policy, when made with maxReceiveCount. */
  dlq?: { name: string; arn: string; url: string };
}

/** What fauxqs holds in a queue, by state (its non-destructive inspection endpoint). */
export interface QueueState {
  ready: Array<{ messageId: string; body: string; approximateReceiveCount: number }>;
  delayed: Array<{ messageId: string; body: string }>;
  inflight: Array<{ message: { messageId: string; body: string; approximateReceiveCount: number }; visibilityDeadline: number }>;
}

// fauxqs's stores are not exported by name; they are taken from its files so the app can be given them (the queue
// of a poll is needed to end it).
interface SqsStoreLike {
  getQueue(url: string): { cancelWaiters(): void } | undefined;
}
const dist = path.dirname(fileURLToPath(import.meta.resolve('fauxqs')));
const load = async (file: string, name: string) => ((await import(pathToFileURL(path.join(dist, file)).href)) as Record<string, new () => unknown>)[name]!;
const [SqsStore, SnsStore, S3Store] = await Promise.all([
  load('sqs/sqsStore.js', 'SqsStore'),
  load('sns/snsStore.js', 'SnsStore'),
  load('s3/s3Store.js', 'S3Store'),
]);

export class LocalAws {
  private readonly sqsStore = new SqsStore() as SqsStoreLike;
  private readonly app = buildApp({
    logger: false,
    stores: { sqsStore: this.sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() } as unknown as NonNullable<Parameters<typeof buildApp>[0]>['stores'],
  });
  private listening = false;
  private started = false;
  port = 0;
  readonly sns: SNSClient;
  readonly sqs: SQSClient;

  constructor() {
    const endpoint = () => Promise.resolve({ protocol: 'http:', hostname: '127.0.0.1', port: this.port, path: '/' });
    this.sns = new SNSClient({ region: REGION, credentials: CREDENTIALS, endpoint });
    this.sqs = new SQSClient({ region: REGION, credentials: CREDENTIALS, endpoint, useQueueUrlAsEndpoint: false });
    this.app.addHook('preHandler', async (req, reply) => {
      if (req.headers['x-amz-target'] !== 'AmazonSQS.ReceiveMessage') return;
      const socket = req.raw.socket;
      const gone = () => {
        if (!reply.raw.writableEnded) this.sqsStore.getQueue(String((req.body as { QueueUrl?: unknown } | undefined)?.QueueUrl))?.cancelWaiters();
      };
      socket.once('close', gone);
      reply.raw.once('finish', () => socket.off('close', gone));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The variables that point the server's SDK clients here (the SDK's own endpoint and credential variables). */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_SNS: this.url,
      AWS_ENDPOINT_URL_SQS: this.url,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      // No shared config or credentials files of the machine.
      AWS_CONFIG_FILE: '/nonexistent/aws-config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    };
  }

  /** Listens on a free loopback port the first time, on the same port afterwards. */
  async start(): Promise<void> {
    if (this.listening) return;
    if (!this.started) {
      this.started = true;
      await this.app.ready();
      await new Promise<void>((resolve) => this.app.server.listen(0, '127.0.0.1', resolve));
      this.port = (this.app.server.address() as AddressInfo).port;
    } else {
      await new Promise<void>((resolve, reject) => {
        this.app.server.once('error', reject);
        this.app.server.listen(this.port, '127.0.0.1', () => {
          this.app.server.off('error', reject);
          resolve();
        });
      });
    }
    this.listening = true;
  }

  /** Down: nothing listens on the port and every open connection (long polls included) is cut. State is kept. */
  async stop(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.app.server.close(() => resolve()));
    this.app.server.closeAllConnections();
    await closed;
  }

  async close(): Promise<void> {
    await this.stop();
    this.sns.destroy();
    this.sqs.destroy();
    await this.app.close();
  }

  topicArn(name: string): string {
    return `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`;
  }

  queueArn(name: string): string {
    return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
  }

  async createTopic(name: string): Promise<string> {
    const { TopicArn } = await this.sns.send(new CreateTopicCommand({ Name: name }));
    return TopicArn!;
  }

  /** A standard queue; with `maxReceiveCount`, also `<name>-dlq` and a redrive policy to it. */
  async createQueue(name: string, opts: { visibilityTimeoutS?: number; maxReceiveCount?: number } = {}): Promise<QueueInfo> {
    const attributes: Record<string, string> = { VisibilityTimeout: String(opts.visibilityTimeoutS ?? 30) };
    let dlq: QueueInfo['dlq'];
    if (opts.maxReceiveCount) {
      const dlqName = `${name}-dlq`;
      const made = await this.sqs.send(new CreateQueueCommand({ QueueName: dlqName }));
      dlq = { name: dlqName, arn: this.queueArn(dlqName), url: made.QueueUrl! };
      attributes['RedrivePolicy'] = JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: opts.maxReceiveCount });
    }
    const { QueueUrl } = await this.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    return { name, arn: this.queueArn(name), url: QueueUrl!, dlq };
  }

  /** Subscribes a queue to a topic: raw message delivery (the body is the message) or the SNS JSON envelope. */
  async subscribe(topicArn: string, queue: QueueInfo, delivery: 'raw' | 'envelope'): Promise<void> {
    await this.sns.send(
      new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queue.arn, Attributes: { RawMessageDelivery: String(delivery === 'raw') } }),
    );
  }

  async sendMessage(queue: QueueInfo, body: string): Promise<string> {
    const { MessageId } = await this.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));
    return MessageId!;
  }

  /** What the queue holds now, without receiving anything (the broker is read directly, not over SQS). */
  async inspect(queueName: string): Promise<QueueState> {
    const res = await this.app.inject({ method: 'GET', url: `/_fauxqs/queues/${encodeURIComponent(queueName)}` });
    if (res.statusCode !== 200) throw new Error(`no queue ${queueName}: ${res.body}`);
    return (JSON.parse(res.body) as { messages: QueueState }).messages;
  }

  /** Bodies of every message in the queue, oldest first, whatever its state (an audit queue nobody receives from). */
  async bodies(queueName: string): Promise<string[]> {
    const q = await this.inspect(queueName);
    return [...q.ready.map((m) => m.body), ...q.inflight.map((m) => m.message.body), ...q.delayed.map((m) => m.body)];
  }
}
