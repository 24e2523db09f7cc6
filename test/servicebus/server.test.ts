// The real server (`node dist/cmd/main.js`) with Azure Service Bus: reports on REPORTER_QUEUE are the same lines as
// the report files, a broker that is down at start neither stops the server nor loses reports, and FileReady events
// go through PUBLISHER_TOPIC → SUBSCRIBER_SUBSCRIPTION to the delivery worker. /health shows the links.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';
import { MiniServiceBus, type ArrivedMessage } from '../helpers/mini-servicebus.js';
import { entry, health, reportFiles } from '../helpers/server-state.js';
import { connectionString, SECRET, waitUntil } from './support.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const metadata = encodeManifest(DEXTESTING);
const BODY = 'Hello Service Bus!';

/** The queue's messages for `id`, by stage, in queue order. */
function byStage(messages: ArrivedMessage[], id: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of messages) {
    const r = JSON.parse(m.text) as Json;
    if (r['upload_id'] !== id) continue;
    const stage = r['stage_info']['action'] as string;
    out.set(stage, [...(out.get(stage) ?? []), m.text]);
  }
  return out;
}

const sorted = (m: Map<string, string[]>) => new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

/** Waits until the queue holds exactly the report lines the files hold for `id` (the upload's last report written). */
async function sameReports(s: RunningServer, broker: MiniServiceBus, queue: string, id: string, stages: string[]): Promise<Map<string, string[]>> {
  return waitUntil(
    `the reports of ${id} on ${queue}`,
    async () => {
      const files = await reportFiles(s, id);
      if (!stages.every((st) => files.has(st))) return undefined;
      const onQueue = byStage(broker.messages(queue), id);
      return JSON.stringify([...sorted(files)]) === JSON.stringify([...sorted(onQueue)]) ? files : undefined;
    },
    60_000,
  );
}

describe('the real server with REPORTER_QUEUE on Service Bus', () => {
  let broker: MiniServiceBus;
  let s: RunningServer;
  before(async () => {
    broker = new MiniServiceBus();
    await broker.start();
    s = await startServer({
      env: { UPLOAD_MANIFEST_VALIDATION: 'true', REPORTER_CONNECTION_STRING: connectionString(broker), REPORTER_QUEUE: 'dex-reports' },
    });
  });
  after(async () => {
    await s.cleanup();
    await broker.close();
  });

  it('a tus upload: the same report lines arrive on the queue as in the report files, in order', async () => {
    const { id } = await createUpload(s.url, { length: BODY.length, metadata, body: BODY });
    const stages = ['metadata-transform', 'metadata-verify', 'upload-started', 'upload-status', 'upload-completed', 'blob-file-copy'];
    const files = await sameReports(s, broker, 'dex-reports', id, stages);
    assert.deepEqual([...files.keys()].sort(), [...stages].sort());
    for (const m of broker.messages('dex-reports')) assert.deepEqual(m.applicationProperties, {});
  });

  it('/health lists "Event Publishing dex-reports" UP, right after the upload storage', async () => {
    const h = await waitUntil('the entry UP', async () => ((await entry(s, 'Event Publishing dex-reports'))?.status === 'UP' ? health(s) : undefined));
    assert.deepEqual(h.services[1], { service: 'Event Publishing dex-reports', status: 'UP', health_issue: 'None reported' });
    assert.equal(h.services[0]!.service, 'File Storage');
    assert.ok(!s.logs().includes(SECRET), 'the shared access key was logged');
  });
});

describe('the real server when the Service Bus broker is down at start', () => {
  let broker: MiniServiceBus;
  let s: RunningServer;
  before(async () => {
    broker = new MiniServiceBus();
    await broker.start();
    await broker.stop(); // the port is known; nothing listens
    s = await startServer({
      env: { UPLOAD_MANIFEST_VALIDATION: 'true', REPORTER_CONNECTION_STRING: connectionString(broker), REPORTER_TOPIC: 'dex-reports-t' },
    });
  });
  after(async () => {
    await s.cleanup();
    await broker.close();
  });

  it('starts anyway, shows the entry DOWN, keeps the reports in the files, and sends them all once the broker is back', async () => {
    const down = await health(s);
    assert.equal(down.status, 'DEGRADED');
    const e = down.services.find((x) => x.service === 'Event Publishing dex-reports-t')!;
    assert.equal(e.status, 'DOWN');
    assert.notEqual(e.health_issue, 'None reported');

    const { id } = await createUpload(s.url, { length: BODY.length, metadata, body: BODY });
    await waitUntil('the upload-completed report file', async () => ((await reportFiles(s, id)).has('upload-completed') ? true : undefined));

    broker.createSubscription('dex-reports-t', 'audit');
    await broker.start();
    const stages = ['metadata-transform', 'metadata-verify', 'upload-started', 'upload-status', 'upload-completed', 'blob-file-copy'];
    await sameReports(s, broker, 'dex-reports-t/Subscriptions/audit', id, stages);
    await waitUntil('the entry UP', async () => ((await entry(s, 'Event Publishing dex-reports-t'))?.status === 'UP' ? true : undefined), 60_000);
    assert.ok(!s.logs().includes(SECRET), 'the shared access key was logged');
  });
});

describe('the real server with FileReady events on Service Bus', () => {
  let broker: MiniServiceBus;
  let s: RunningServer;
  before(async () => {
    broker = new MiniServiceBus();
    await broker.start();
    broker.createSubscription('file-ready', 'delivery');
    broker.createSubscription('file-ready', 'audit');
    const cs = connectionString(broker);
    s = await startServer({
      env: {
        UPLOAD_MANIFEST_VALIDATION: 'true',
        PUBLISHER_CONNECTION_STRING: cs,
        PUBLISHER_TOPIC: 'file-ready',
        SUBSCRIBER_CONNECTION_STRING: cs,
        SUBSCRIBER_TOPIC: 'file-ready',
        SUBSCRIBER_SUBSCRIPTION: 'delivery',
      },
    });
  });
  after(async () => {
    await s.cleanup();
    await broker.close();
  });

  it('an upload is published as FileReady on the topic, received from the subscription and delivered', async () => {
    const { id } = await createUpload(s.url, { length: BODY.length, metadata, body: BODY });
    const [published] = await broker.waitFor('file-ready', 1);
    const event = JSON.parse(published!.text) as Json;
    assert.deepEqual(Object.keys(event), ['id', 'type', 'retry_count', 'upload_id', 'src_url', 'path', 'deliver_target', 'Metadata']);
    assert.equal(event['upload_id'], id);
    assert.equal(event['deliver_target'], 'edav');
    assert.equal(event['id'], '');

    const copy = await waitUntil('the blob-file-copy report', async () => (await reportFiles(s, id)).get('blob-file-copy'), 60_000);
    const report = JSON.parse(copy[0]!) as Json;
    assert.equal(report['stage_info']['status'], 'SUCCESS');
    assert.equal(await readFile(path.join(s.dir, report['content']['file_destination_blob_url'] as string), 'utf8'), BODY);
    await waitUntil('the message completed', () => (broker.completed('file-ready/Subscriptions/delivery').length === 1 ? true : undefined));
    // With a Service Bus publisher the broker is the only record: no local event file (dex-pipeline.md §3.3).
    const events = await readdir(path.join(s.dir, 'uploads', 'events')).catch(() => [] as string[]);
    assert.ok(!events.some((n) => n.startsWith(id)), events.join(','));
  });

  it('/health lists the publisher and the subscriber, each once, UP', async () => {
    const h = await waitUntil('both UP', async () => {
      const x = await health(s);
      const names = ['Event Publishing file-ready', 'delivery Event Subscriber'];
      return names.every((n) => x.services.find((e) => e.service === n)?.status === 'UP') ? x : undefined;
    });
    const names = h.services.map((e) => e.service);
    assert.deepEqual(names.slice(0, 3), ['File Storage', 'Event Publishing file-ready', 'delivery Event Subscriber']);
    assert.equal(names.filter((n) => n.endsWith('Event Subscriber')).length, 1);
  });

  it('SIGTERM with the broker gone still shuts down cleanly (closing the links cannot hang the exit)', async () => {
    await broker.stop();
    assert.equal(await s.stop(), 0, s.logs());
    assert.match(s.logs(), /"msg":"stopped"/);
    assert.ok(!s.logs().includes(SECRET), 'the shared access key was logged');
  });
});
