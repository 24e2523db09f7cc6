// The Service Bus report sink (dex-pipeline.md §2.4, decisions.md "Reports, events, delivery" and "/info and /health")
// against the mini broker with the real @azure/service-bus client: exact bodies, order, queue and topic, a broker that
// is down at start or goes down mid-stream, the /health entry, and closing.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { buildReportSinks, type ReportSinks } from '../../internal/reports/select.js';
import { ReportPublisher } from '../../internal/reports/publisher.js';
import { buildReport, type Report, type Stage } from '../../internal/reports/report.js';
import { MiniServiceBus } from '../helpers/mini-servicebus.js';
import { captureLogger, type CapturedLog } from '../helpers/delivery.js';
import { configFrom, connectionString, healthOf, SECRET, waitUntil } from './support.js';

const STAGES: Stage[] = ['metadata-transform', 'metadata-verify', 'upload-started', 'upload-status', 'upload-completed'];
const manifest = (id: string) => ({ data_stream_id: 'dextesting', data_stream_route: 'testevent1', sender_id: 's', jurisdiction: 'j', upload_id: id });

/** `n` reports over a few uploads, every stage, in publish order. */
function reports(n: number): Report[] {
  const ids = [randomUUID(), randomUUID(), randomUUID()];
  return Array.from({ length: n }, (_, i) =>
    buildReport({ stage: STAGES[i % STAGES.length]!, uploadId: ids[i % ids.length]!, manifest: manifest(ids[i % ids.length]!), version: '0.1.0_abc', content: { seq: i, text: 'é ✓ "quoted"' } }),
  );
}

describe('Service Bus report sink', () => {
  let broker: MiniServiceBus;
  let dir: string;
  let logs: CapturedLog;
  const open: ReportSinks[] = [];

  before(async () => {
    broker = new MiniServiceBus();
    await broker.start();
    dir = await mkdtemp(path.join(tmpdir(), 'dex-sb-reports-'));
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    assert.ok(!logs.text().includes(SECRET), 'the shared access key was logged');
  });
  after(async () => {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function sinksFor(env: Record<string, string>): Promise<{ sinks: ReportSinks; publisher: ReportPublisher; folder: string }> {
    logs = captureLogger();
    const folder = path.join(dir, randomUUID());
    const sinks = await buildReportSinks(configFrom({ LOCAL_REPORTS_FOLDER: folder, ...env }), logs.log);
    open.push(sinks);
    return { sinks, publisher: new ReportPublisher(sinks.sinks, logs.log), folder };
  }

  it('sends every report to REPORTER_QUEUE after the file sink: body = the compact report JSON, in order, nothing else', async () => {
    const { sinks, publisher, folder } = await sinksFor({ REPORTER_CONNECTION_STRING: connectionString(broker), REPORTER_QUEUE: 'reports-q' });
    assert.deepEqual(sinks.sinks.map((s) => s.name), ['file', 'servicebus:reports-q']);
    assert.deepEqual(sinks.health.map((h) => h.name), ['Event Publishing reports-q']);
    const sent = reports(12);
    for (const r of sent) publisher.publish(r);
    const got = await broker.waitFor('reports-q', sent.length);
    assert.deepEqual(got.map((m) => m.text), sent.map((r) => JSON.stringify(r)));
    for (const m of got) {
      assert.deepEqual(m.applicationProperties, {}, 'no application properties');
      assert.equal(m.raw.subject, undefined);
      assert.equal(m.raw.content_type, undefined);
    }
    // The file sink got the same lines (it comes first and is the durable record).
    await publisher.drain();
    for (const r of sent) {
      const file = await readFile(path.join(folder, `${r.upload_id}_${r.stage_info.action}`), 'utf8');
      assert.ok(file.split('\n').includes(JSON.stringify(r)));
    }
    assert.equal(await healthOf(sinks.health[0]!), 'UP');
  });

  it('sends to REPORTER_TOPIC when no queue is set; a subscriber with the real client gets exactly the report object', async () => {
    broker.createSubscription('reports-t', 'audit');
    broker.createSubscription('reports-t', 'archive');
    const { sinks, publisher } = await sinksFor({ REPORTER_CONNECTION_STRING: connectionString(broker), REPORTER_TOPIC: 'reports-t' });
    assert.deepEqual(sinks.health.map((h) => h.name), ['Event Publishing reports-t']);
    const sent = reports(7);
    for (const r of sent) publisher.publish(r);
    for (const sub of ['audit', 'archive']) {
      const got = await broker.waitFor(`reports-t/Subscriptions/${sub}`, sent.length);
      assert.deepEqual(got.map((m) => m.text), sent.map((r) => JSON.stringify(r)), sub);
    }
    const client = new ServiceBusClient(connectionString(broker));
    try {
      const receiver = client.createReceiver('reports-t', 'audit', { receiveMode: 'receiveAndDelete' });
      const received: unknown[] = [];
      while (received.length < sent.length) {
        const batch = await receiver.receiveMessages(sent.length, { maxWaitTimeInMs: 2000 });
        received.push(...batch.map((m) => m.body));
      }
      assert.deepEqual(received, JSON.parse(JSON.stringify(sent)));
    } finally {
      await client.close();
    }
  });

  it('the health entry turns UP without any report (the link opens at start-up)', async () => {
    const { sinks } = await sinksFor({ REPORTER_CONNECTION_STRING: connectionString(broker), REPORTER_QUEUE: 'idle-q' });
    await waitUntil('Event Publishing idle-q UP', async () => ((await healthOf(sinks.health[0]!)) === 'UP' ? true : undefined));
    assert.equal(broker.messages('idle-q').length, 0);
  });

  it('broker down at start: no error, DOWN with the error text, reports held; broker back: all arrive in order, UP', async () => {
    const down = new MiniServiceBus();
    await down.start();
    await down.stop(); // the port is known and nothing listens on it
    try {
      const { sinks, publisher } = await sinksFor({ REPORTER_CONNECTION_STRING: connectionString(down), REPORTER_QUEUE: 'late-q' });
      const health = sinks.health[0]!;
      assert.match(await healthOf(health), /^DOWN: /);
      const sent = reports(25);
      for (const r of sent) publisher.publish(r);
      const issue = await waitUntil('a connection error in /health', async () => {
        const h = await healthOf(health);
        return h.startsWith('DOWN: ') && !h.includes('connecting to') ? h : undefined;
      });
      assert.ok(!issue.includes(SECRET));
      await waitUntil('a logged send failure', () => (logs.text().includes('report sink failed; retrying') ? true : undefined));
      assert.equal(down.messages('late-q').length, 0);

      await down.start();
      const got = await down.waitFor('late-q', sent.length, 90_000);
      assert.deepEqual(got.map((m) => m.text), sent.map((r) => JSON.stringify(r)), 'nothing lost, nothing repeated, order kept');
      await publisher.drain();
      assert.equal(await healthOf(health), 'UP');
    } finally {
      await down.close();
    }
  });

  it('broker goes down mid-stream and comes back: nothing lost, order kept, DOWN then UP', async () => {
    const flaky = new MiniServiceBus();
    await flaky.start();
    try {
      const { sinks, publisher } = await sinksFor({ REPORTER_CONNECTION_STRING: connectionString(flaky), REPORTER_QUEUE: 'flaky-q' });
      const health = sinks.health[0]!;
      const sent = reports(20);
      for (const r of sent.slice(0, 10)) publisher.publish(r);
      await flaky.waitFor('flaky-q', 10);
      await publisher.drain();
      assert.equal(await healthOf(health), 'UP');

      await flaky.stop();
      for (const r of sent.slice(10)) publisher.publish(r);
      await waitUntil('DOWN after a failed send', async () => ((await healthOf(health)).startsWith('DOWN: ') ? true : undefined));
      await flaky.start();
      const got = await flaky.waitFor('flaky-q', 20, 90_000);
      assert.deepEqual(got.map((m) => m.text), sent.map((r) => JSON.stringify(r)));
      await publisher.drain();
      assert.equal(await healthOf(health), 'UP');
    } finally {
      await flaky.close();
    }
  });

  it('close() closes the sender and its connection', async () => {
    const own = new MiniServiceBus();
    await own.start();
    try {
      const { sinks, publisher } = await sinksFor({ REPORTER_CONNECTION_STRING: connectionString(own), REPORTER_QUEUE: 'q' });
      publisher.publish(reports(1)[0]!);
      await own.waitFor('q', 1);
      assert.ok(own.connections > 0);
      await sinks.close();
      await waitUntil('no connection left', () => (own.connections === 0 ? true : undefined));
    } finally {
      await own.close();
    }
  });
});
