// FileReady over Azure Service Bus at the EventBus level (dex-pipeline.md §3, decisions.md "Reports, events,
// delivery"): publisher → topic → subscription → consumer with the real @azure/service-bus client against the mini
// broker. Message ids, retries with retry_count, dead-lettering (exhausted and poison), batches, concurrency, lock
// renewal while retrying, a broker outage, idle() and close().
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { ServiceBusClient } from '@azure/service-bus';
import { buildEventBus, type EventBus } from '../../internal/events/select.js';
import { MiniServiceBus } from '../helpers/mini-servicebus.js';
import { captureLogger, type CapturedLog } from '../helpers/delivery.js';
import { event, gatedConsumer, recorder } from '../helpers/consumers.js';
import { configFrom, connectionString, healthOf, SECRET, waitUntil } from './support.js';

describe('FileReady over Service Bus', () => {
  let broker: MiniServiceBus;
  let dir: string;
  let logs: CapturedLog;
  const buses: EventBus[] = [];

  before(async () => {
    broker = new MiniServiceBus({ lockDurationMs: 2_000 });
    await broker.start();
    dir = await mkdtemp(path.join(tmpdir(), 'dex-sb-events-'));
  });
  afterEach(async () => {
    for (const b of buses.splice(0)) await b.close();
    assert.ok(!logs.text().includes(SECRET), 'the shared access key was logged');
  });
  after(async () => {
    await broker.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A bus publishing to `<topic>` and subscribed to `<topic>/Subscriptions/delivery` (both declared on the broker). */
  async function busFor(topic: string, env: Record<string, string> = {}, b: MiniServiceBus = broker, backoffMs = () => 50): Promise<EventBus> {
    b.createSubscription(topic, 'delivery');
    b.createSubscription(topic, 'audit');
    logs = captureLogger();
    const cs = connectionString(b);
    const config = configFrom({
      LOCAL_EVENTS_FOLDER: path.join(dir, randomUUID()),
      PUBLISHER_CONNECTION_STRING: cs,
      PUBLISHER_TOPIC: topic,
      SUBSCRIBER_CONNECTION_STRING: cs,
      SUBSCRIBER_TOPIC: topic,
      SUBSCRIBER_SUBSCRIPTION: 'delivery',
      EVENT_MAX_RETRY_COUNT: '3',
      ...env,
    });
    const bus = await buildEventBus(config, logs.log, { backoffMs, closeGraceMs: 5_000, receiveWaitMs: 1_000 });
    buses.push(bus);
    return bus;
  }

  it('publisher → topic → subscriber → consumer: body = compact JSON, id = message id, retry_count 0, completed', async () => {
    const bus = await busFor('fr-basic');
    assert.deepEqual(bus.health.map((h) => h.name), ['Event Publishing fr-basic', 'delivery Event Subscriber']);
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const sent = [event(), event('ehdi'), event()];
    for (const e of sent) await bus.publish(e);
    const onTopic = await broker.waitFor('fr-basic', 3);
    assert.deepEqual(onTopic.map((m) => m.text), sent.map((e) => JSON.stringify(e)), 'exact bodies, in order');
    assert.deepEqual(onTopic[0]!.applicationProperties, {});
    await waitUntil('3 events consumed', () => (rec.calls.length >= 3 ? true : undefined));
    await bus.idle();

    const ids = broker.messages('fr-basic/Subscriptions/delivery').map((m) => m.messageId);
    assert.equal(new Set(ids).size, 3);
    const byUpload = new Map(rec.calls.map((c) => [c.upload_id, c]));
    for (const e of sent) {
      const got = byUpload.get(e.upload_id)!;
      assert.deepEqual(Object.keys(got), ['id', 'type', 'retry_count', 'upload_id', 'src_url', 'path', 'deliver_target', 'Metadata']);
      assert.ok(ids.includes(got.id), `id ${got.id} is a broker message id`);
      assert.deepEqual({ ...got, id: '' }, e);
    }
    await waitUntil('all completed', () => (broker.completed('fr-basic/Subscriptions/delivery').length === 3 ? true : undefined));
    assert.deepEqual(broker.depth('fr-basic/Subscriptions/delivery'), { available: 0, locked: 0 });
    assert.equal(broker.deadLetters('fr-basic/Subscriptions/delivery').length, 0);
    // The other subscription got its own copy, untouched.
    assert.equal(broker.depth('fr-basic/Subscriptions/audit').available, 3);
    await waitUntil('both entries UP', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h === 'UP') ? true : undefined));
  });

  it('a consumer failing twice then succeeding: 3 attempts with retry_count 0, 1, 2, then completed', async () => {
    const bus = await busFor('fr-retry');
    const tries = new Map<string, number>();
    const rec = recorder((e) => {
      const n = (tries.get(e.upload_id) ?? 0) + 1;
      tries.set(e.upload_id, n);
      return n <= 2;
    });
    bus.subscribe(rec.consumer);
    const e = event();
    await bus.publish(e);
    await waitUntil('3 attempts', () => (rec.calls.length >= 3 ? true : undefined));
    await bus.idle();
    assert.deepEqual(rec.calls.map((c) => c.retry_count), [0, 1, 2]);
    assert.equal(new Set(rec.calls.map((c) => c.id)).size, 1, 'the same message each time');
    assert.equal(broker.completed('fr-retry/Subscriptions/delivery').length, 1);
    assert.equal(broker.deadLetters('fr-retry/Subscriptions/delivery').length, 0);
    assert.deepEqual(broker.depth('fr-retry/Subscriptions/delivery'), { available: 0, locked: 0 });
  });

  it('a consumer that always fails: 1 + EVENT_MAX_RETRY_COUNT attempts, then dead-lettered with the reason', async () => {
    const bus = await busFor('fr-dead', { EVENT_MAX_RETRY_COUNT: '2' });
    const rec = recorder(() => true);
    bus.subscribe(rec.consumer);
    const e = event();
    await bus.publish(e);
    const [dead] = await broker.waitFor('fr-dead/Subscriptions/delivery/$DeadLetterQueue', 1);
    await bus.idle();
    assert.deepEqual(rec.calls.map((c) => c.retry_count), [0, 1, 2]);
    assert.equal(dead!.text, JSON.stringify(e), 'the original body');
    assert.equal(dead!.messageId, rec.calls[0]!.id);
    assert.equal(dead!.applicationProperties['DeadLetterReason'], 'MaxRetryCountExceeded');
    assert.equal(dead!.applicationProperties['DeadLetterErrorDescription'], `3 attempt(s) failed; last error: target down for ${e.upload_id}`);
    assert.deepEqual(broker.depth('fr-dead/Subscriptions/delivery'), { available: 0, locked: 0 });
    assert.equal(broker.completed('fr-dead/Subscriptions/delivery').length, 0);
  });

  it('poison messages are dead-lettered at once, never reach the consumer, and the next good message is processed', async () => {
    const bus = await busFor('fr-poison');
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const sub = 'fr-poison/Subscriptions/delivery';
    broker.inject(sub, { body: 'this is not JSON', messageId: 'poison-1' });
    broker.inject(sub, { body: '{"type":"Other","upload_id":"x","deliver_target":"edav"}', messageId: 'poison-2' });
    broker.inject(sub, { body: Buffer.from([0xff, 0x00, 0x7b]), messageId: 'poison-3' });
    const good = event();
    await bus.publish(good);
    const dead = await broker.waitFor(`${sub}/$DeadLetterQueue`, 3);
    await waitUntil('the good event', () => (rec.calls.length >= 1 ? true : undefined));
    await bus.idle();
    assert.deepEqual(dead.map((d) => d.messageId).sort(), ['poison-1', 'poison-2', 'poison-3']);
    for (const d of dead) {
      assert.equal(d.applicationProperties['DeadLetterReason'], 'InvalidFileReadyEvent');
      assert.match(String(d.applicationProperties['DeadLetterErrorDescription']), /^the body is not a FileReady event: /);
    }
    assert.deepEqual(rec.calls.map((c) => c.upload_id), [good.upload_id]);
    assert.equal(broker.completed(sub).length, 1);
    assert.ok(logs.text().includes('FileReady message cannot be decoded'));
  });

  it('a batch sent with sendMessages([...]) is unpacked: each event is consumed on its own, with its own id', async () => {
    const bus = await busFor('fr-batch');
    const rec = recorder();
    bus.subscribe(rec.consumer);
    const sent = [event(), event(), event(), event()];
    const client = new ServiceBusClient(connectionString(broker));
    try {
      await client.createSender('fr-batch').sendMessages(sent.map((e) => ({ body: Buffer.from(JSON.stringify(e)) })));
    } finally {
      await client.close();
    }
    await waitUntil('4 events', () => (rec.calls.length >= 4 ? true : undefined));
    await bus.idle();
    assert.deepEqual(rec.calls.map((c) => c.upload_id).sort(), sent.map((e) => e.upload_id).sort());
    assert.equal(new Set(rec.calls.map((c) => c.id)).size, 4);
  });

  it('asks for at most SUBSCRIBER_MAX_MESSAGES per receive call', async () => {
    const bus = await busFor('fr-max', { LISTENER_WORKERS: '10', SUBSCRIBER_MAX_MESSAGES: '2' });
    let running = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    bus.subscribe(async () => {
      running++;
      await gate;
    });
    for (let i = 0; i < 7; i++) await bus.publish(event());
    // Several receive calls of at most 2 fill the 10 workers with all 7 messages.
    await waitUntil('all 7 in process', () => (running === 7 ? true : undefined));
    assert.equal(broker.maxCredit('fr-max/Subscriptions/delivery'), 2);
    release();
    await bus.idle();
  });

  it('processes at most LISTENER_WORKERS messages at once, taking only as many as there are free workers', async () => {
    const bus = await busFor('fr-workers', { LISTENER_WORKERS: '2', SUBSCRIBER_MAX_MESSAGES: '10' });
    const g = gatedConsumer();
    bus.subscribe(g.consumer);
    for (let i = 0; i < 6; i++) await bus.publish(event());
    const sub = 'fr-workers/Subscriptions/delivery';
    await broker.waitFor(sub, 6);
    await waitUntil('two messages in process', () => (g.running === 2 ? true : undefined));
    // Only as many messages are taken (and locked) as there are free workers; the rest wait on the broker.
    await waitUntil('2 locked, 4 waiting', () => (broker.depth(sub).locked === 2 && broker.depth(sub).available === 4 ? true : undefined));
    g.release();
    await waitUntil('6 done', () => (g.done.length === 6 ? true : undefined));
    await bus.idle();
    assert.equal(g.most, 2);
  });

  it('keeps the message lock while waiting between attempts (lock shorter than the retries): no redelivery', async () => {
    // The broker's lock lasts 2 s; three waits of 1.5 s need the SDK's renewal to keep the message ours.
    const bus = await busFor('fr-lock', {}, broker, () => 1_500);
    const tries = new Map<string, number>();
    const rec = recorder((e) => {
      const n = (tries.get(e.upload_id) ?? 0) + 1;
      tries.set(e.upload_id, n);
      return n <= 3;
    });
    bus.subscribe(rec.consumer);
    await bus.publish(event());
    await waitUntil('4 attempts', () => (rec.calls.length >= 4 ? true : undefined));
    await bus.idle();
    assert.deepEqual(rec.calls.map((c) => c.retry_count), [0, 1, 2, 3], 'no duplicate attempt from a redelivery');
    assert.equal(broker.completed('fr-lock/Subscriptions/delivery').length, 1);
    const [m] = broker.messages('fr-lock/Subscriptions/delivery');
    assert.ok(m);
    assert.deepEqual(broker.depth('fr-lock/Subscriptions/delivery'), { available: 0, locked: 0 });
  });

  it('a broker outage: entries go DOWN, events published meanwhile are held, then sent and consumed; entries UP', async () => {
    const own = new MiniServiceBus();
    await own.start();
    try {
      const bus = await busFor('fr-outage', {}, own);
      const rec = recorder();
      bus.subscribe(rec.consumer);
      const first = event();
      await bus.publish(first);
      await waitUntil('the first event', () => (rec.calls.length === 1 ? true : undefined));
      await waitUntil('both UP', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h === 'UP') ? true : undefined));

      await own.stop();
      const during = [event(), event()];
      for (const e of during) await bus.publish(e); // accepted at once, held by the publisher's queue
      await waitUntil(
        'both DOWN',
        async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h.startsWith('DOWN: ')) ? true : undefined),
        60_000,
      );
      await own.start();
      await waitUntil('the held events consumed', () => (rec.calls.length === 3 ? true : undefined), 90_000);
      await bus.idle();
      assert.deepEqual(rec.calls.slice(1).map((c) => c.upload_id), during.map((e) => e.upload_id), 'in order');
      await waitUntil('both UP again', async () => ((await Promise.all(bus.health.map(healthOf))).every((h) => h === 'UP') ? true : undefined), 60_000);
      assert.ok(logs.text().includes('Service Bus receive failed; retrying'));
    } finally {
      await own.close();
    }
  });

  it('close() while a message waits for its next attempt abandons it (back on the subscription) and returns', async () => {
    const bus = await busFor('fr-close', {}, broker, () => 60_000);
    const rec = recorder(() => true);
    bus.subscribe(rec.consumer);
    await bus.publish(event());
    await waitUntil('the first attempt', () => (rec.calls.length === 1 ? true : undefined));
    buses.splice(buses.indexOf(bus), 1);
    await bus.close();
    assert.deepEqual(broker.depth('fr-close/Subscriptions/delivery'), { available: 1, locked: 0 });
    assert.equal(rec.calls.length, 1);
  });
});
