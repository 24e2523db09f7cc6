// Mixed FileReady set-ups (internal/events/select.ts): a local publisher with a Service Bus subscriber, and a Service
// Bus publisher without one. What each does is a decision documented in buildEventBus; these tests pin it down.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { buildEventBus } from '../../internal/events/select.js';
import { fileReady, type FileReady } from '../../internal/events/event.js';
import { MiniServiceBus } from '../helpers/mini-servicebus.js';
import { captureLogger } from '../helpers/delivery.js';
import { configFrom, connectionString, healthOf, waitUntil } from './support.js';

const event = (): FileReady => fileReady({ uploadId: randomUUID(), path: 'p/test.txt', target: 'edav', metadata: { a: '1' } });

describe('mixed FileReady set-ups', () => {
  let broker: MiniServiceBus;
  let dir: string;
  before(async () => {
    broker = new MiniServiceBus();
    await broker.start();
    dir = await mkdtemp(path.join(tmpdir(), 'dex-sb-mixed-'));
  });
  after(async () => {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('local publisher + Service Bus subscriber: local events are recorded and delivered locally, broker events too', async () => {
    broker.createSubscription('mixed-in', 'delivery');
    const { log, text } = captureLogger();
    const folder = path.join(dir, 'events-a');
    const config = configFrom({
      LOCAL_EVENTS_FOLDER: folder,
      SUBSCRIBER_CONNECTION_STRING: connectionString(broker),
      SUBSCRIBER_TOPIC: 'mixed-in',
      SUBSCRIBER_SUBSCRIPTION: 'delivery',
    });
    const bus = await buildEventBus(config, log, { backoffMs: () => 50, receiveWaitMs: 1_000 });
    try {
      assert.deepEqual(bus.health.map((h) => h.name), ['delivery Event Subscriber']);
      const seen: FileReady[] = [];
      bus.subscribe(async (e) => {
        seen.push(e);
      });
      const local = event();
      await bus.publish(local);
      const remote = event();
      broker.inject('mixed-in/Subscriptions/delivery', { body: JSON.stringify(remote), messageId: 'from-elsewhere' });
      await waitUntil('both events', () => (seen.length === 2 ? true : undefined));
      await bus.idle();
      const byUpload = new Map(seen.map((e) => [e.upload_id, e]));
      assert.equal(byUpload.get(local.upload_id)!.id, '', 'a local event has no broker id');
      assert.equal(byUpload.get(remote.upload_id)!.id, 'from-elsewhere');
      // The local record of what was published, as in pure local mode; nothing went to the broker.
      assert.equal(await readFile(path.join(folder, `${local.upload_id}_FileReady`), 'utf8'), `${JSON.stringify(local)}\n`);
      assert.equal(broker.messages('mixed-in').length, 0);
      assert.match(text(), /FileReady events are published locally: they are delivered by local workers/);
      await waitUntil('subscriber UP', async () => ((await healthOf(bus.health[0]!)) === 'UP' ? true : undefined));
    } finally {
      await bus.close();
    }
  });

  it('Service Bus publisher without a subscriber: events go to the broker only, with a start-up warning', async () => {
    broker.createSubscription('mixed-out', 'elsewhere');
    const { log, records } = captureLogger();
    const folder = path.join(dir, 'events-b');
    const config = configFrom({ LOCAL_EVENTS_FOLDER: folder, PUBLISHER_CONNECTION_STRING: connectionString(broker), PUBLISHER_QUEUE: 'mixed-q' });
    const bus = await buildEventBus(config, log, { backoffMs: () => 50 });
    try {
      assert.deepEqual(bus.health.map((h) => h.name), ['Event Publishing mixed-q']);
      const seen: FileReady[] = [];
      bus.subscribe(async (e) => {
        seen.push(e);
      });
      const e = event();
      await bus.publish(e);
      await bus.idle();
      const [m] = await broker.waitFor('mixed-q', 1);
      assert.equal(m!.text, JSON.stringify(e));
      assert.deepEqual(seen, [], 'this instance delivers nothing itself');
      await assert.rejects(readFile(path.join(folder, `${e.upload_id}_FileReady`)), 'no local event file');
      const warning = records().find((r) => r['level'] === 40 && String(r['msg']).includes('no SUBSCRIBER_ is set'));
      assert.ok(warning, 'the start-up warning');
      assert.equal(await healthOf(bus.health[0]!), 'UP');
    } finally {
      await bus.close();
    }
  });

  it('local mode is unchanged: no /health entries, memory + file', async () => {
    const folder = path.join(dir, 'events-c');
    const bus = await buildEventBus(configFrom({ LOCAL_EVENTS_FOLDER: folder }), captureLogger().log, { backoffMs: () => 50 });
    try {
      assert.deepEqual(bus.health, []);
      const seen: string[] = [];
      bus.subscribe(async (e) => {
        seen.push(e.upload_id);
      });
      const e = event();
      await bus.publish(e);
      await waitUntil('consumed', () => (seen.length === 1 ? true : undefined));
      await bus.idle();
      assert.equal(await readFile(path.join(folder, `${e.upload_id}_FileReady`), 'utf8'), `${JSON.stringify(e)}\n`);
    } finally {
      await bus.close();
    }
  });
});
