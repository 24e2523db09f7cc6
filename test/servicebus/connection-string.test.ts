// Service Bus connection strings are checked before any client exists: a malformed one is a start-up error that names
// the variable and never repeats the value (it holds the shared access key) — in-process and through the real server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConnectionString, scrubSecrets } from '../../internal/servicebus/connection-string.js';
import { createServiceBusClient } from '../../internal/servicebus/client.js';
import { buildReportSinks } from '../../internal/reports/select.js';
import { buildEventBus } from '../../internal/events/select.js';
import { composeServer } from '../../internal/server/compose.js';
import { runToExit } from '../helpers/server.js';
import { threadsStartedBy } from '../helpers/threads.js';
import { captureLogger } from '../helpers/delivery.js';
import { configFrom, SECRET } from './support.js';

const GOOD = `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=${SECRET}`;

describe('Service Bus connection string validation', () => {
  it('accepts a portal connection string, the emulator form and a SAS token form', () => {
    assert.deepEqual(parseConnectionString(GOOD, 'X'), { endpoint: 'sb://ns.servicebus.windows.net/', host: 'ns.servicebus.windows.net' });
    assert.equal(parseConnectionString(`Endpoint=sb://127.0.0.1:5672/;SharedAccessKeyName=x;SharedAccessKey=y;UseDevelopmentEmulator=true`, 'X').host, '127.0.0.1:5672');
    assert.equal(parseConnectionString(`Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=a&sig=b&se=1&skn=c`, 'X').host, 'ns');
    assert.equal(parseConnectionString(`${GOOD};EntityPath=reports;`, 'X').host, 'ns.servicebus.windows.net');
  });

  const cases: Array<[string, string, RegExp]> = [
    ['garbage', 'no key=value parts', /\(each part must be Key=Value\)$/],
    [`SharedAccessKeyName=send;SharedAccessKey=${SECRET}`, 'no Endpoint', /\(missing Endpoint\)$/],
    [`Endpoint=;SharedAccessKeyName=send;SharedAccessKey=${SECRET}`, 'an empty Endpoint', /\(missing Endpoint\)$/],
    [`Endpoint=ns.servicebus.windows.net;SharedAccessKeyName=send;SharedAccessKey=${SECRET}`, 'an Endpoint that is no URL', /\(Endpoint is not a URL; expected sb:\/\/<namespace>\/\)$/],
    [`Endpoint=https://ns/;SharedAccessKeyName=send;SharedAccessKey=${SECRET}`, 'an https Endpoint', /\(Endpoint must look like sb:\/\/<namespace>\/\)$/],
    ['Endpoint=sb://ns/', 'no credentials', /\(missing SharedAccessKeyName and SharedAccessKey, or SharedAccessSignature\)$/],
    [`Endpoint=sb://ns/;SharedAccessKeyName=send`, 'a key name without a key', /missing SharedAccessKeyName and SharedAccessKey/],
    [`Endpoint=sb://ns/;SharedAccessKeyName=a;SharedAccessKeyName=b;SharedAccessKey=${SECRET}`, 'a repeated key', /\(SharedAccessKeyName is given twice\)$/],
    [`Endpoint=sb://ns/;=${SECRET}`, 'a part without a key', /\(a part has no key before "="\)$/],
  ];
  for (const [value, what, expected] of cases) {
    it(`refuses ${what}, naming the variable and not the value`, () => {
      assert.throws(
        () => parseConnectionString(value, 'REPORTER_CONNECTION_STRING'),
        (err: Error) => {
          assert.equal(err.name, 'ConfigError');
          assert.match(err.message, /^REPORTER_CONNECTION_STRING: malformed Service Bus connection string \(/);
          assert.match(err.message, expected);
          assert.ok(!err.message.includes(SECRET), err.message);
          if (value !== 'garbage') assert.ok(!err.message.includes(value), err.message);
          return true;
        },
      );
    });
  }

  it('scrubs keys and signatures out of texts', () => {
    assert.equal(scrubSecrets(`oops ${GOOD}`), 'oops Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=[redacted]');
    assert.equal(scrubSecrets('sr=a&sig=abc123&se=1'), 'sr=a&sig=[redacted]&se=1');
  });

  it('the client factory validates first', () => {
    assert.throws(() => createServiceBusClient('Endpoint=sb://ns/', 'PUBLISHER_CONNECTION_STRING'), /^ConfigError: PUBLISHER_CONNECTION_STRING: malformed/);
  });

  it('buildReportSinks and buildEventBus refuse a malformed string for each block, with its variable', async () => {
    const { log, text } = captureLogger();
    const bad = `SharedAccessKeyName=x;SharedAccessKey=${SECRET}`;
    await assert.rejects(buildReportSinks(configFrom({ REPORTER_CONNECTION_STRING: bad, REPORTER_QUEUE: 'q' }), log), /^ConfigError: REPORTER_CONNECTION_STRING: malformed Service Bus connection string \(missing Endpoint\)$/);
    await assert.rejects(buildEventBus(configFrom({ PUBLISHER_CONNECTION_STRING: bad, PUBLISHER_TOPIC: 't' }), log), /^ConfigError: PUBLISHER_CONNECTION_STRING: malformed/);
    await assert.rejects(
      buildEventBus(configFrom({ SUBSCRIBER_CONNECTION_STRING: bad, SUBSCRIBER_TOPIC: 't', SUBSCRIBER_SUBSCRIPTION: 's' }), log),
      /^ConfigError: SUBSCRIBER_CONNECTION_STRING: malformed/,
    );
    assert.ok(!text().includes(SECRET));
  });
});

describe('the real server refuses to start with a malformed connection string', () => {
  it('composing the server refuses it before any I/O thread starts (the process then exits at once)', async () => {
    // Exiting while a worker thread is still starting can abort Node (nodejs/node#25007): none may be starting.
    const dir = await mkdtemp(path.join(tmpdir(), 'dex-sb-compose-'));
    try {
      const config = configFrom({
        LOCAL_FOLDER_UPLOADS_TUS: path.join(dir, 'uploads'),
        LOCAL_REPORTS_FOLDER: path.join(dir, 'reports'),
        LOCAL_EVENTS_FOLDER: path.join(dir, 'events'),
        REPORTER_CONNECTION_STRING: 'garbage',
        REPORTER_QUEUE: 'reports',
      });
      const { log } = captureLogger();
      const started = await threadsStartedBy(() => assert.rejects(composeServer(config, log), /^ConfigError: REPORTER_CONNECTION_STRING: malformed/));
      assert.equal(started, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const blocks: Array<[string, Record<string, string>]> = [
    ['REPORTER_CONNECTION_STRING', { REPORTER_QUEUE: 'reports' }],
    ['PUBLISHER_CONNECTION_STRING', { PUBLISHER_TOPIC: 'file-ready' }],
    ['SUBSCRIBER_CONNECTION_STRING', { SUBSCRIBER_TOPIC: 'file-ready', SUBSCRIBER_SUBSCRIPTION: 'delivery' }],
  ];
  for (const [variable, rest] of blocks) {
    it(`${variable}=garbage → exit 1 naming ${variable}`, async () => {
      const { code, output } = await runToExit({ [variable]: 'garbage', ...rest });
      assert.equal(code, 1, output);
      assert.match(output, new RegExp(`${variable}: malformed Service Bus connection string \\(each part must be Key=Value\\)`));
      assert.ok(!output.includes('"server listening"'), output);
    });
  }

  it('a string with a key but no Endpoint → exit 1, and the key is not printed', async () => {
    const { code, output } = await runToExit({ REPORTER_CONNECTION_STRING: `SharedAccessKeyName=x;SharedAccessKey=${SECRET}`, REPORTER_QUEUE: 'q' });
    assert.equal(code, 1, output);
    assert.match(output, /REPORTER_CONNECTION_STRING: malformed Service Bus connection string \(missing Endpoint\)/);
    assert.ok(!output.includes(SECRET), output);
  });
});
