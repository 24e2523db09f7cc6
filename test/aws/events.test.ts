// FileReady over AWS at the EventBus level (dex-pipeline.md §3.2–3.4, decisions.md "Reports, events, delivery"):
// SNS publisher → topic → SQS queue → SQS subscriber → consumer, with the official AWS SDK v3 clients against a real
// SNS/SQS-compatible server (fauxqs, test/helpers/local-aws.ts). Raw and enveloped bodies, message ids, retries by
// visibility timeout with retry_count, redrive of failures and poison messages to the dead-letter queue, deletion
// only after the reports are written, concurrency, an outage, close().
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { buildEventBus, type EventBus } from '../../internal/events/select.js';
import { fileReady, type FileReady } from '../../internal/events/event.js';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { buildReportSinks } from '../../internal/reports/select.js';
import { ReportPublisher } from '../../internal/reports/publisher.js';
import { buildReport } from '../../internal/reports/report.js';
import { LocalAws, type QueueInfo } from '../helpers/local-aws.js';
import { captureLogger, type CapturedLog } from '../helpers/delivery.js';
import { event, gatedConsumer, recorder } from '../helpers/consumers.js';
import { configFrom, healthOf, waitUntil } from '../servicebus/support.js';

/** Fails the first `n` attempts of each upload. */
const failingFirst = (n: number) => {
  const tries = new Map<string, number>();
  return (e: FileReady) => {
    const t = (tries.get(e.upload_id) ?? 0) + 1;
    tries.set(e.upload_id, t);
    return t <= n;
  };
};

describe('FileReady over SNS and SQS', () => {
  let aws: LocalAws;
  let dir: string;
  let logs: CapturedLog;
  const buses: EventBus[] = [];
  const saved = { ...process.env };

  before(async () => {
    aws = new LocalAws();
    await aws.start();
    // The server's SDK clients take the endpoint and credentials from the environment, as in production.
    Object.assign(process.env, aws.env());
    dir = await mkdtemp(path.join(tmpdir(), 'dex-aws-events-'));
  });
  afterEach(async () => {
    for (const b of buses.splice(0)) await b.close();
  });
  after(async () => {
    await aws.close();
    await rm(dir, { recursive: true, force: true });
    for (const k of Object.keys(aws.env())) if (saved[k] === undefined) delete process.env[k];
  });

  interface Setup {
    bus: EventBus;
    topicArn: string;
    queue: QueueInfo;
  }

  /** A topic `<name>` with queue `<name>-q` subscribed (raw by default), and a bus publishing to one, receiving from the other. */
  async function busFor(
    name: string,
    opts: { env?: Record<string, string>; delivery?: 'raw' | 'envelope'; visibilityTimeoutS?: number; maxReceiveCount?: number; reportsRecorded?: () => Promise<void> } = {},
  ): Promise<Setup> {
    const topicArn = await aws.createTopic(name);
    const queue = await aws.createQueue(`${name}-q`, { visibilityTimeoutS: opts.visibilityTimeoutS ?? 10, maxReceiveCount: opts.maxReceiveCount });
    await aws.subscribe(topicArn, queue, opts.delivery ?? 'raw');
    logs = captureLogger();
    const config = configFrom({
      LOCAL_EVENTS_FOLDER: path.join(dir, randomUUID()),
      SNS_PUBLISHER_EVENT_ARN: topicArn,
      SQS_SUBSCRIBER_EVENT_ARN: queue.arn,
      EVENT_MAX_RETRY_COUNT: '2',
      ...opts.env,
    });
    const bus = await buildEventBus(config, logs.log, {
      backoffMs: () => 1_000,
      closeGraceMs: 5_000,
      receiveWaitMs: 1_000,
      reportsRecorded: opts.reportsRecorded,
    });
    buses.push(bus);
    return { bus, topicArn, queue };
  }

  const empty = async (q: string) => {
    const s = await aws.inspect(q);
    return s.ready.length + s.inflight.length + s.delayed.length === 0;
  };

  it('publisher → topic → queue → subscriber → consumer: body = JSON + "\\n", id = SQS MessageId, retry_count 0, deleted', async () => {
    const { bus, topicArn, queue } = await busFor('fr-basic');
    assert.deepEqual(bus.health.map((h) => h.name), [`SNS - ${topicArn}`, `SQS - ${queue.arn}`]);
    // An audit queue on the same topic keeps what was published, untouched.
    const audit = await aws.createQueue('fr-basic-audit');
    await aws.subscribe(topicArn, audit, 'raw');
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const sent = [event(), event('ehdi'), event()];
    for (const e of sent) await bus.publish(e);
    await waitUntil('3 events consumed', () => (rec.calls.length >= 3 ? true : undefined));
    await bus.idle();
    assert.deepEqual(await aws.bodies(audit.name), sent.map((e) => `${JSON.stringify(e)}\n`), 'exact bodies, in order');
    const byUpload = new Map(rec.calls.map((c) => [c.upload_id, c]));
    for (const e of sent) {
      const got = byUpload.get(e.upload_id)!;
      assert.deepEqual(Object.keys(got), ['id', 'type', 'retry_count', 'upload_id', 'src_url', 'path', 'deliver_target', 'Metadata']);
      assert.match(got.id, /^[0-9a-f-]{36}$/, 'the SQS MessageId');
      assert.deepEqual({ ...got, id: '' }, e);
    }
    assert.equal(new Set(rec.calls.map((c) => c.id)).size, 3);
    await waitUntil('all deleted', async () => ((await empty(queue.name)) ? true : undefined));
    await waitUntil('both entries UP', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h === 'UP') ? true : undefined));
  });

  it('a queue subscribed without raw delivery: the SNS envelope is opened and its Message is the event', async () => {
    const { bus } = await busFor('fr-envelope', { delivery: 'envelope' });
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const e = event();
    await bus.publish(e);
    await waitUntil('the event', () => (rec.calls.length >= 1 ? true : undefined));
    await bus.idle();
    assert.deepEqual({ ...rec.calls[0]!, id: '' }, e);
  });

  it('a failing attempt makes the message visible again after the back-off: retry_count 0, 1, 2 (receive count − 1), then deleted', async () => {
    const { bus, queue } = await busFor('fr-retry', { maxReceiveCount: 5 });
    const rec = recorder(failingFirst(2));
    bus.subscribe(rec.consumer);
    await bus.publish(event());
    await waitUntil('3 attempts', () => (rec.calls.length >= 3 ? true : undefined));
    await bus.idle();
    assert.deepEqual(rec.calls.map((c) => c.retry_count), [0, 1, 2]);
    assert.equal(new Set(rec.calls.map((c) => c.id)).size, 1, 'the same message each time');
    await waitUntil('deleted', async () => ((await empty(queue.name)) ? true : undefined));
    assert.equal((await aws.bodies(queue.dlq!.name)).length, 0);
    assert.ok(logs.text().includes('event processing failed; it will be received again'));
  });

  it('a consumer that always fails: after maxReceiveCount receives the redrive policy moves the message to the dead-letter queue', async () => {
    const { bus, queue } = await busFor('fr-dead', { maxReceiveCount: 3 });
    const rec = recorder(() => true);
    bus.subscribe(rec.consumer);
    const e = event();
    await bus.publish(e);
    // fauxqs moves a message at the receive after its last allowed one, as SQS does.
    const [dead] = await waitUntil('the dead letter', async () => {
      const b = await aws.bodies(queue.dlq!.name);
      return b.length > 0 ? b : undefined;
    }, 60_000);
    await bus.idle();
    assert.deepEqual(rec.calls.map((c) => c.retry_count), [0, 1, 2]);
    assert.equal(dead, `${JSON.stringify(e)}\n`, 'the original body');
    assert.ok(await empty(queue.name));
    assert.ok(logs.text().includes("event processing failed its last attempt; left to the queue's redrive policy"));
  });

  it('poison messages never reach the consumer, end in the dead-letter queue, and the next good message is processed', async () => {
    const { bus, queue } = await busFor('fr-poison', { maxReceiveCount: 2 });
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const poison = ['this is not JSON', '{"type":"Other","upload_id":"x","deliver_target":"edav"}', '{"Type":"Notification","Message":"bm90IGpzb24="}', '[]', 'null'];
    for (const p of poison) await aws.sendMessage(queue, p);
    const good = event();
    await bus.publish(good);
    await waitUntil('the good event', () => (rec.calls.length >= 1 ? true : undefined));
    const dead = await waitUntil('5 dead letters', async () => {
      const b = await aws.bodies(queue.dlq!.name);
      return b.length >= poison.length ? b : undefined;
    }, 60_000);
    await bus.idle();
    assert.deepEqual([...dead].sort(), [...poison].sort(), 'the poison bodies, untouched');
    assert.deepEqual(rec.calls.map((c) => c.upload_id), [good.upload_id]);
    assert.ok(logs.text().includes("SQS message is not a FileReady event: not processed; left to the queue's redrive policy"));
    await waitUntil('the queue empty', async () => ((await empty(queue.name)) ? true : undefined));
  });

  it('a message is deleted only once the reports published so far are written', async () => {
    let release!: () => void;
    const written = new Promise<void>((r) => (release = r));
    let asked = 0;
    const { bus, queue } = await busFor('fr-recorded', {
      reportsRecorded: () => {
        asked++;
        return written;
      },
    });
    const rec = recorder();
    bus.subscribe(rec.consumer);
    await bus.publish(event());
    await waitUntil('consumed and waiting for the reports', () => (rec.calls.length === 1 && asked === 1 ? true : undefined));
    // Still in flight (kept invisible) while the reports are not written.
    const s = await aws.inspect(queue.name);
    assert.equal(s.inflight.length, 1);
    release();
    await waitUntil('deleted', async () => ((await empty(queue.name)) ? true : undefined));
    await bus.idle();
    assert.equal(rec.calls.length, 1);
  });

  it('renews the visibility while an attempt runs longer than the queue visibility timeout: no second receive', async () => {
    const { bus, queue } = await busFor('fr-renew', { visibilityTimeoutS: 2 });
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const calls: FileReady[] = [];
    bus.subscribe(async (e) => {
      calls.push(e);
      await slow;
    });
    await bus.publish(event());
    await waitUntil('the attempt started', () => (calls.length === 1 ? true : undefined));
    // Three visibility timeouts pass (the renewal keeps pushing the deadline); the message stays in flight and ours.
    const first = (await aws.inspect(queue.name)).inflight[0]!.visibilityDeadline;
    await waitUntil('the deadline moved three times past the first', async () => {
      const d = (await aws.inspect(queue.name)).inflight[0]?.visibilityDeadline ?? 0;
      return d > first + 5_000 ? true : undefined;
    }, 60_000);
    assert.equal(calls.length, 1, 'not received again while in process');
    release();
    await waitUntil('deleted', async () => ((await empty(queue.name)) ? true : undefined));
    await bus.idle();
    assert.equal(calls.length, 1);
  });

  it('processes at most LISTENER_WORKERS messages at once, asking only for as many as there are free workers', async () => {
    const { bus, queue } = await busFor('fr-workers', { env: { LISTENER_WORKERS: '2', SQS_SUBSCRIBER_MAX_MESSAGES: '10' } });
    const g = gatedConsumer();
    bus.subscribe(g.consumer);
    for (let i = 0; i < 6; i++) await bus.publish(event());
    await waitUntil('two in process, four waiting on the queue', async () => {
      const s = await aws.inspect(queue.name);
      return g.running === 2 && s.inflight.length === 2 && s.ready.length === 4 ? true : undefined;
    });
    g.release();
    await waitUntil('6 done', () => (g.done.length === 6 ? true : undefined));
    await bus.idle();
    assert.equal(g.most, 2);
  });

  it('an outage: entries go DOWN, events published meanwhile are held, then sent and consumed once; entries UP', async () => {
    const { bus, queue } = await busFor('fr-outage');
    const rec = recorder();
    bus.subscribe(rec.consumer);
    await bus.publish(event());
    await waitUntil('the first event', () => (rec.calls.length === 1 ? true : undefined));
    await waitUntil('both UP', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h === 'UP') ? true : undefined));

    await aws.stop();
    try {
      const during = [event(), event(), event()];
      for (const e of during) await bus.publish(e); // accepted at once, held by the publisher's queue
      await waitUntil('both DOWN', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h.startsWith('DOWN: ')) ? true : undefined), 60_000);
      await aws.start();
      await waitUntil('the held events consumed', () => (rec.calls.length === 4 ? true : undefined), 90_000);
      await bus.idle();
      assert.deepEqual(rec.calls.slice(1).map((c) => c.upload_id).sort(), during.map((e) => e.upload_id).sort());
    } finally {
      await aws.start();
    }
    await waitUntil('both UP again', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h === 'UP') ? true : undefined), 60_000);
    await waitUntil('all deleted', async () => ((await empty(queue.name)) ? true : undefined));
    assert.equal(rec.calls.length, 4, 'each once');
    assert.ok(logs.text().includes('SQS receive failed; retrying'));
  });

  it('a topic that does not exist is created at start-up (as the original: named after the ARN, with its two tags)', async () => {
    const queue = await aws.createQueue('fr-made-q');
    logs = captureLogger();
    const arn = aws.topicArn('fr-made');
    const bus = await buildEventBus(configFrom({ SNS_PUBLISHER_EVENT_ARN: arn, SQS_SUBSCRIBER_EVENT_ARN: queue.arn }), logs.log, { receiveWaitMs: 1_000, closeGraceMs: 5_000 });
    buses.push(bus);
    await waitUntil('the SNS entry UP', async () => ((await healthOf(bus.health[0]!)) === 'UP' ? true : undefined));
    const { Tags } = await aws.sns.send(new ListTagsForResourceCommand({ ResourceArn: arn }));
    assert.deepEqual(Tags, [{ Key: 'auto-generated', Value: 'true' }, { Key: 'auto-generated-by', Value: 'phdo' }]);
    assert.ok(logs.text().includes('SNS topic did not exist: created'));
    // Subscribed now, it carries what is published.
    await aws.subscribe(arn, queue, 'raw');
    const rec = recorder();
    bus.subscribe(rec.consumer);
    await bus.publish(event());
    await waitUntil('the event', () => (rec.calls.length === 1 ? true : undefined));
  });

  it('a message SNS refuses as such (too large) is dropped and logged, and does not hold up the next one', async () => {
    const { bus } = await busFor('fr-too-big');
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const big = fileReady({ uploadId: randomUUID(), path: 'p', target: 'edav', metadata: { huge: 'x'.repeat(300 * 1024) } });
    const next = event();
    await bus.publish(big);
    await bus.publish(next);
    await waitUntil('the next event', () => (rec.calls.length === 1 ? true : undefined));
    assert.equal(rec.calls[0]!.upload_id, next.upload_id);
    assert.ok(logs.text().includes('SNS refused the message itself; dropped'));
    assert.equal(await healthOf(bus.health[0]!), 'UP');
  });

  it('reports and events naming the same topic share one link: one /health entry', async () => {
    const topicArn = await aws.createTopic('fr-shared');
    logs = captureLogger();
    const config = configFrom({ SNS_REPORTER_EVENT_ARN: topicArn, SNS_PUBLISHER_EVENT_ARN: topicArn, LOCAL_REPORTS_FOLDER: path.join(dir, randomUUID()) });
    const sinks = await buildReportSinks(config, logs.log);
    const bus = await buildEventBus(config, logs.log, { closeGraceMs: 5_000 });
    assert.equal(sinks.health[0], bus.health[0], 'the same link');
    assert.equal(sinks.health[0]!.name, `SNS - ${topicArn}`);
    // Closing the event side leaves the report side working (the link is closed by its last user).
    await bus.close();
    const audit = await aws.createQueue('fr-shared-audit');
    await aws.subscribe(topicArn, audit, 'raw');
    const pub = new ReportPublisher(sinks.sinks, logs.log);
    pub.publish(buildReport({ stage: 'upload-started', uploadId: randomUUID(), manifest: null, version: '0_test', content: { status: 'SUCCESS' } }));
    await pub.drain();
    assert.equal((await aws.bodies(audit.name)).length, 1);
    await sinks.close();
  });

  it('close() with an attempt still running returns after the grace period; the message is received again later', async () => {
    const { bus, queue } = await busFor('fr-close', { visibilityTimeoutS: 2 });
    const calls: FileReady[] = [];
    bus.subscribe(async (e) => {
      calls.push(e);
      await new Promise(() => {}); // never ends
    });
    await bus.publish(event());
    await waitUntil('the attempt started', () => (calls.length === 1 ? true : undefined));
    buses.splice(buses.indexOf(bus), 1);
    await bus.close();
    // Not deleted, no longer renewed: the next receiver gets it (its second receive).
    const [again] = await waitUntil('received again', async () => {
      const out = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
      return out.Messages?.length ? out.Messages : undefined;
    }, 30_000);
    assert.equal(again!.MessageId, calls[0]!.id);
    assert.equal(again!.Attributes?.ApproximateReceiveCount, '2');
    assert.ok(logs.text().includes('closing with FileReady messages still in process'));
  });
});
