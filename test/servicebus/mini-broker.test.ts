// The test broker itself, driven by the real @azure/service-bus client: if these fail, the Service Bus suites
// would be testing the broker rather than the server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import { MiniServiceBus } from '../helpers/mini-servicebus.js';

describe('mini Service Bus broker with the real client', () => {
  let broker: MiniServiceBus;
  let client: ServiceBusClient;
  before(async () => {
    broker = new MiniServiceBus({ lockDurationMs: 3000 });
    await broker.start();
    client = new ServiceBusClient(broker.connectionString, { retryOptions: { maxRetries: 1, retryDelayInMs: 200, timeoutInMs: 5000 } });
  });
  after(async () => {
    await client.close();
    await broker.close();
  });

  it('queue: send, peek-lock receive, complete over the link', async () => {
    const sender = client.createSender('q1');
    await sender.sendMessages({ body: Buffer.from('{"a":1}') });
    const receiver = client.createReceiver('q1');
    const got = await receiver.receiveMessages(5, { maxWaitTimeInMs: 2000 });
    assert.equal(got.length, 1);
    assert.deepEqual(got[0]!.body, { a: 1 });
    assert.ok(got[0]!.messageId);
    assert.equal(broker.depth('q1').locked, 1);
    await receiver.completeMessage(got[0]!);
    assert.deepEqual(broker.depth('q1'), { available: 0, locked: 0 });
    assert.equal(broker.completed('q1').length, 1);
    const none = await receiver.receiveMessages(5, { maxWaitTimeInMs: 500 });
    assert.equal(none.length, 0);
    await receiver.close();
    await sender.close();
  });

  it('topic: fan-out to subscriptions, batch unpacking, dead-letter with reason, abandon re-queues', async () => {
    broker.createSubscription('t1', 's1');
    broker.createSubscription('t1', 's2');
    const sender = client.createSender('t1');
    await sender.sendMessages([{ body: Buffer.from('one') }, { body: Buffer.from('two') }, { body: Buffer.from('three') }]);
    await broker.waitFor('t1/Subscriptions/s2', 3);
    assert.deepEqual(broker.messages('t1/Subscriptions/s1').map((m) => m.text), ['one', 'two', 'three']);
    const r = client.createReceiver('t1', 's1');
    const got = await r.receiveMessages(3, { maxWaitTimeInMs: 2000 });
    assert.equal(got.length, 3);
    await r.deadLetterMessage(got[0]!, { deadLetterReason: 'Bad', deadLetterErrorDescription: 'really bad' });
    await r.abandonMessage(got[1]!);
    await r.completeMessage(got[2]!);
    const dl = broker.deadLetters('t1/Subscriptions/s1');
    assert.equal(dl.length, 1);
    assert.equal(dl[0]!.text, 'one');
    assert.equal(dl[0]!.applicationProperties['DeadLetterReason'], 'Bad');
    const again = await r.receiveMessages(3, { maxWaitTimeInMs: 2000 });
    assert.equal(again.length, 1);
    assert.equal(again[0]!.deliveryCount, 1);
    // Settlement over $management: the SDK uses it when the link the message came on is gone (reconnects). Closing
    // that link is the only way to get there from a test; it reaches into the SDK's internals on purpose.
    await (r as unknown as { _batchingReceiver: { link: { close(): Promise<void> } } })._batchingReceiver.link.close();
    await r.completeMessage(again[0]!);
    await r.close();
    assert.deepEqual(broker.depth('t1/Subscriptions/s1'), { available: 0, locked: 0 });
    const dlr = client.createReceiver('t1', 's1', { subQueueType: 'deadLetter', receiveMode: 'receiveAndDelete' });
    const dlm = await dlr.receiveMessages(5, { maxWaitTimeInMs: 1000 });
    assert.equal(dlm.length, 1);
    assert.equal(dlm[0]!.deadLetterReason, 'Bad');
    assert.equal(dlm[0]!.deadLetterErrorDescription, 'really bad');
    await dlr.close();
    await sender.close();
  });

  it('auto lock renewal keeps a message locked past its lock duration', async () => {
    const sender = client.createSender('q2');
    await sender.sendMessages({ body: 'x' });
    const r = client.createReceiver('q2', { maxAutoLockRenewalDurationInMs: 60_000 });
    const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 2000 });
    await new Promise((res) => setTimeout(res, 7000));
    assert.equal(broker.depth('q2').locked, 1);
    await r.completeMessage(m!);
    assert.deepEqual(broker.depth('q2'), { available: 0, locked: 0 });
    await r.close();
    await sender.close();
  });

  it('stop and start on the same port: the client reconnects', async () => {
    const sender = client.createSender('q3');
    await sender.sendMessages({ body: 'before' });
    const port = broker.port;
    await broker.stop();
    await assert.rejects(sender.sendMessages({ body: 'during' }, {}));
    await broker.start();
    assert.equal(broker.port, port);
    await sender.sendMessages({ body: 'after' });
    assert.deepEqual(broker.messages('q3').map((m) => m.text), ['"before"', '"after"']);
    await sender.close();
  });
});
