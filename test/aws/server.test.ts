// The real server (`node dist/cmd/main.js`) on AWS SNS/SQS, against a real SNS/SQS-compatible server (fauxqs,
// test/helpers/local-aws.ts) that the server's official AWS SDK v3 clients reach through AWS_ENDPOINT_URL_SNS/_SQS:
// - reports on SNS_REPORTER_EVENT_ARN are the very lines of the report files, in order; FileReady events go to
//   SNS_PUBLISHER_EVENT_ARN → a subscribed queue → SQS_SUBSCRIBER_EVENT_ARN → the delivery worker → a file target;
// - a poison message is refused without harm and ends in the dead-letter queue;
// - the server killed in the middle of a delivery: the message is received again once, and delivered;
// - the broker down (at start, and later) then up: /health `SNS - <arn>` / `SQS - <arn>` DOWN then UP, nothing lost.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';
import { LocalAws, type QueueInfo } from '../helpers/local-aws.js';
import { health, reportFiles } from '../helpers/server-state.js';
import { S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, startS3rver, type S3rver } from '../helpers/s3.js';
import { TcpGate } from '../helpers/tcp-gate.js';
import { waitUntil } from '../helpers/wait.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const metadata = encodeManifest(DEXTESTING);
const STAGES = ['metadata-transform', 'metadata-verify', 'upload-started', 'upload-status', 'upload-completed', 'blob-file-copy'];
const sorted = (m: Map<string, string[]>) => new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

/** The broker side of one set-up: a reports topic, an events topic, the delivery queue and two audit queues. */
interface Wiring {
  reportsArn: string;
  eventsArn: string;
  delivery: QueueInfo;
  reportsAudit: QueueInfo;
  eventsAudit: QueueInfo;
  env: Record<string, string>;
}

async function wire(aws: LocalAws, prefix: string, visibilityTimeoutS = 5): Promise<Wiring> {
  const reportsArn = await aws.createTopic(`${prefix}-reports`);
  const eventsArn = await aws.createTopic(`${prefix}-file-ready`);
  const delivery = await aws.createQueue(`${prefix}-delivery`, { visibilityTimeoutS, maxReceiveCount: 4 });
  const reportsAudit = await aws.createQueue(`${prefix}-reports-audit`);
  const eventsAudit = await aws.createQueue(`${prefix}-events-audit`);
  await aws.subscribe(eventsArn, delivery, 'raw');
  await aws.subscribe(eventsArn, eventsAudit, 'raw');
  await aws.subscribe(reportsArn, reportsAudit, 'raw');
  const env = {
    UPLOAD_MANIFEST_VALIDATION: 'true',
    SNS_REPORTER_EVENT_ARN: reportsArn,
    SNS_PUBLISHER_EVENT_ARN: eventsArn,
    SQS_SUBSCRIBER_EVENT_ARN: delivery.arn,
    ...aws.env(),
  };
  return { reportsArn, eventsArn, delivery, reportsAudit, eventsAudit, env };
}

/** The audit queue's report lines for `id`, in arrival order: each message is the JSON plus "\n", as a file line. */
async function reportsAt(aws: LocalAws, w: Wiring, id: string): Promise<string[]> {
  const bodies = (await aws.bodies(w.reportsAudit.name)).filter((b) => (JSON.parse(b) as Json)['upload_id'] === id);
  for (const b of bodies) assert.ok(b.endsWith('}\n'), JSON.stringify(b.slice(-20)));
  return bodies.map((b) => b.slice(0, -1));
}

function byStage(lines: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const l of lines) {
    const stage = (JSON.parse(l) as Json)['stage_info']['action'] as string;
    out.set(stage, [...(out.get(stage) ?? []), l]);
  }
  return out;
}

/**
 * Waits until the broker holds exactly the report lines the files hold for `id` (each once, every stage there), and
 * checks their order: the file of a stage keeps publish order, the broker keeps it across stages.
 */
async function sameReports(s: RunningServer, aws: LocalAws, w: Wiring, id: string): Promise<string[]> {
  const atBroker = await waitUntil(
    `the reports of ${id} at the broker`,
    async () => {
      const files = await reportFiles(s, id);
      if (!STAGES.every((st) => files.has(st))) return undefined;
      const lines = await reportsAt(aws, w, id);
      return JSON.stringify([...sorted(files)]) === JSON.stringify([...sorted(byStage(lines))]) ? lines : undefined;
    },
    90_000,
  );
  const stages = atBroker.map((l) => (JSON.parse(l) as Json)['stage_info']['action'] as string);
  assert.deepEqual(stages.slice(0, 3), ['metadata-transform', 'metadata-verify', 'upload-started']);
  assert.deepEqual(stages.slice(-3), ['upload-completed', 'upload-status', 'blob-file-copy']);
  // (Two reports can be the same text, e.g. the upload-status of the last PATCH and of the finish in one millisecond:
  // "once" is "as many times as in the files", which the comparison above checks.)
  return atBroker;
}

/** The SUCCESS blob-file-copy report of `id` (waits for it) and the file it delivered. */
async function delivered(s: RunningServer, id: string): Promise<{ report: Json; text: string }> {
  const report = await waitUntil(
    `the delivery of ${id}`,
    async () => {
      const lines = (await reportFiles(s, id)).get('blob-file-copy') ?? [];
      return lines.map((l) => JSON.parse(l) as Json).find((r) => r['stage_info']['status'] === 'SUCCESS');
    },
    90_000,
  );
  return { report, text: await readFile(path.join(s.dir, report['content']['file_destination_blob_url'] as string), 'utf8') };
}

const queueEmpty = async (aws: LocalAws, q: QueueInfo) => {
  const st = await aws.inspect(q.name);
  return st.ready.length + st.inflight.length + st.delayed.length === 0;
};

const allUp = async (s: RunningServer, names: string[]) => {
  const h = await health(s);
  return names.every((n) => h.services.find((e) => e.service === n)?.status === 'UP') ? h : undefined;
};

describe('the real server with SNS reports, SNS events and an SQS subscriber', () => {
  let aws: LocalAws;
  let w: Wiring;
  let s: RunningServer;
  before(async () => {
    aws = new LocalAws();
    await aws.start();
    w = await wire(aws, 'e2e');
    s = await startServer({ env: w.env });
  });
  after(async () => {
    await s.cleanup();
    await aws.close();
  });

  it('an upload end to end: reports on SNS as in the files, FileReady via SNS → SQS delivered to the file target, message deleted', async () => {
    const body = 'Hello SNS and SQS!';
    const { id } = await createUpload(s.url, { length: body.length, metadata, body });
    const { report, text } = await delivered(s, id);
    assert.equal(text, body);
    assert.equal(report['content']['destination_name'], 'edav');
    await sameReports(s, aws, w, id);

    const [event] = (await aws.bodies(w.eventsAudit.name)).map((b) => JSON.parse(b) as Json).filter((e) => e['upload_id'] === id);
    assert.ok(event, 'the FileReady on the events topic');
    assert.deepEqual(Object.keys(event), ['id', 'type', 'retry_count', 'upload_id', 'src_url', 'path', 'deliver_target', 'Metadata']);
    assert.equal(event['id'], '');
    assert.equal(event['deliver_target'], 'edav');
    assert.equal(event['Metadata']['data_stream_id'], 'dextesting');
    await waitUntil('the message deleted', async () => ((await queueEmpty(aws, w.delivery)) ? true : undefined));
    assert.equal((await aws.bodies(w.delivery.dlq!.name)).length, 0);
    // With an SNS publisher the broker is the only record: no local event file (dex-pipeline.md §3.3).
    const events = await readdir(path.join(s.dir, 'uploads', 'events')).catch(() => [] as string[]);
    assert.ok(!events.some((n) => n.startsWith(id)), events.join(','));
  });

  it('/health lists SNS - <arn> for each topic and SQS - <arn> for the queue, each once, UP, after the upload storage', async () => {
    const names = [`SNS - ${w.reportsArn}`, `SNS - ${w.eventsArn}`, `SQS - ${w.delivery.arn}`];
    const h = await waitUntil('all UP', () => allUp(s, names));
    assert.equal(h.status, 'UP');
    assert.deepEqual(h.services.slice(0, 4).map((e) => e.service), ['File Storage', ...names]);
    for (const n of names) assert.equal(h.services.filter((e) => e.service === n).length, 1);
    assert.deepEqual(h.services[1], { service: names[0], status: 'UP', health_issue: 'None reported' });
  });

  it('a poison message on the queue is refused without harm, never processed, and ends in the dead-letter queue', async () => {
    const poison = ['{"not": "an event"}', 'garbage \u00ff bytes', '{"type":"FileReady","upload_id":"../../etc/passwd","deliver_target":"edav"}'];
    for (const p of poison) await aws.sendMessage(w.delivery, p);
    const dead = await waitUntil('the poison dead-lettered', async () => {
      const b = await aws.bodies(w.delivery.dlq!.name);
      return b.length >= poison.length ? b : undefined;
    }, 90_000);
    assert.deepEqual([...dead].sort(), [...poison].sort());
    assert.match(s.logs(), /SQS message is not a FileReady event: not processed/);
    // The hostile id reached the worker and was refused there (its blob-file-copy FAILURE names no file of ours).
    assert.equal(s.proc.exitCode, null, 'still running');
    const body = 'after the poison';
    const { id } = await createUpload(s.url, { length: body.length, metadata, body });
    assert.equal((await delivered(s, id)).text, body);
    await waitUntil('the queue empty', async () => ((await queueEmpty(aws, w.delivery)) ? true : undefined), 60_000);
  });
});

describe('the real server with the SNS/SQS broker down, at start and later', () => {
  let aws: LocalAws;
  let w: Wiring;
  let s: RunningServer;
  let names: string[];
  before(async () => {
    aws = new LocalAws();
    await aws.start();
    w = await wire(aws, 'outage');
    names = [`SNS - ${w.reportsArn}`, `SNS - ${w.eventsArn}`, `SQS - ${w.delivery.arn}`];
    await aws.stop(); // the port is known; nothing listens; topics and queues are kept
    s = await startServer({ env: w.env });
  });
  after(async () => {
    await s.cleanup();
    await aws.close();
  });

  it('starts anyway with the entries DOWN, keeps reports and events, sends each once in order when it is back; entries UP', async () => {
    const down = await health(s);
    assert.equal(down.status, 'DEGRADED');
    for (const n of names) {
      const e = down.services.find((x) => x.service === n);
      assert.equal(e?.status, 'DOWN', n);
      assert.notEqual(e?.health_issue, 'None reported');
    }
    const body = 'sent while the broker was down';
    const { id } = await createUpload(s.url, { length: body.length, metadata, body });
    await waitUntil('the upload-completed report file', async () => ((await reportFiles(s, id)).has('upload-completed') ? true : undefined));
    assert.deepEqual(await aws.bodies(w.reportsAudit.name), [], 'nothing reached the broker');

    await aws.start();
    assert.equal((await delivered(s, id)).text, body);
    await sameReports(s, aws, w, id);
    await waitUntil('all UP', () => allUp(s, names), 90_000);
    await waitUntil('the message deleted', async () => ((await queueEmpty(aws, w.delivery)) ? true : undefined));
  });

  it('down again while running: entries DOWN, then UP by themselves; every report line exactly once, in order', async () => {
    const before = await aws.bodies(w.reportsAudit.name);
    await aws.stop();
    const bodies = ['one while down', 'two while down'];
    const ids: string[] = [];
    for (const body of bodies) ids.push((await createUpload(s.url, { length: body.length, metadata, body })).id);
    await waitUntil(
      'all DOWN',
      async () => {
        const h = await health(s);
        return names.every((n) => h.services.find((e) => e.service === n)?.status === 'DOWN') ? true : undefined;
      },
      60_000,
    );
    await aws.start();
    let sent = 0;
    for (const [i, id] of ids.entries()) {
      assert.equal((await delivered(s, id)).text, bodies[i]);
      sent += (await sameReports(s, aws, w, id)).length;
    }
    await waitUntil('all UP again', () => allUp(s, names), 90_000);
    const after = await aws.bodies(w.reportsAudit.name);
    assert.deepEqual(after.slice(0, before.length), before, 'what was there before is untouched');
    assert.equal(after.length, before.length + sent, 'nothing else arrived: no line repeated');
    await waitUntil('the queue empty', async () => ((await queueEmpty(aws, w.delivery)) ? true : undefined), 60_000);
    assert.equal((await aws.bodies(w.delivery.dlq!.name)).length, 0);
  });
});

describe('the real server killed in the middle of an SQS delivery', () => {
  let aws: LocalAws;
  let s3: S3rver;
  let gate: TcpGate;
  let w: Wiring;
  let env: Record<string, string>;
  const servers: RunningServer[] = [];
  before(async () => {
    aws = new LocalAws();
    await aws.start();
    s3 = await startS3rver();
    await s3.createBucket('slow');
    // The target is s3rver behind a gate that holds every connection: the delivery is certainly under way, and stuck.
    gate = new TcpGate(s3.port);
    await gate.start();
    w = await wire(aws, 'kill', 4);
    const deliverYml = path.join(s3.directory, 'deliver.yml');
    await writeFile(
      deliverYml,
      [
        'targets:',
        `  slow: {name: slow, type: s3, bucket_name: slow, access_key_id: ${S3RVER_ACCESS_KEY}, secret_access_key: ${S3RVER_SECRET_KEY}, endpoint: "http://127.0.0.1:${gate.port}", region: us-east-1}`,
        'routing_groups:',
        '  - {data_stream_id: dextesting, data_stream_route: testevent1, delivery_targets: [{name: slow, path_template: "{{.UploadId}}"}]}',
        '',
      ].join('\n'),
    );
    env = { ...w.env, DEX_DELIVERY_CONFIG_FILE: deliverYml, LOGGER_DEBUG_ON: 'true' };
  });
  after(async () => {
    for (const x of servers) await x.cleanup();
    await gate.close();
    await s3.cleanup();
    await aws.close();
  });

  /** `SQS message received` lines of a server's log: message id and receive count. */
  const receipts = (x: RunningServer) =>
    x
      .logs()
      .split('\n')
      .filter((l) => l.includes('"msg":"SQS message received"'))
      .map((l) => JSON.parse(l) as { messageId: string; receiveCount: number });

  it('kill -9 mid-delivery: after the visibility timeout the restarted server receives the message a second time, once, and delivers it', async () => {
    const first = await startServer({ env });
    servers.push(first);
    const body = 'delivered after a crash';
    const { id } = await createUpload(first.url, { length: body.length, metadata, body });
    await waitUntil('the delivery held at the target', () => (gate.waiting > 0 ? true : undefined), 60_000);
    const [received] = await waitUntil('the message received', () => {
      const r = receipts(first);
      return r.length > 0 ? r : undefined;
    });
    assert.equal(received!.receiveCount, 1);
    assert.equal((await aws.inspect(w.delivery.name)).inflight.length, 1, 'in flight, not deleted');
    await first.kill9();

    gate.open();
    const second = await startServer({ env, dir: first.dir });
    servers.push(second);
    // Delivered once the gate is open: the copy in the bucket is the upload.
    const report = await waitUntil(
      'a SUCCESS blob-file-copy report',
      async () => ((await reportFiles(second, id)).get('blob-file-copy') ?? []).map((l) => JSON.parse(l) as Json).find((r) => r['stage_info']['status'] === 'SUCCESS'),
      90_000,
    );
    const key = new URL(report['content']['file_destination_blob_url'] as string).pathname.replace(/^\/slow\//, '');
    const c = s3.client();
    try {
      const o = await c.send(new GetObjectCommand({ Bucket: 'slow', Key: key }));
      assert.equal(await o.Body!.transformToString(), body);
    } finally {
      c.destroy();
    }
    await waitUntil('the original message received again and deleted', async () =>
      receipts(second).some((r) => r.messageId === received!.messageId) && (await queueEmpty(aws, w.delivery)) ? true : undefined,
      90_000,
    );
    const again = [...receipts(first), ...receipts(second)].filter((r) => r.messageId === received!.messageId);
    assert.deepEqual(again.map((r) => r.receiveCount), [1, 2], 'received twice in all: once more after the crash');
    // The restarted server also delivers the upload once more on its own (start-up redelivery: no SUCCESS report
    // yet), as a new FileReady with its own message id; both copies are the same object.
    const reports = ((await reportFiles(second, id)).get('blob-file-copy') ?? []).map((l) => JSON.parse(l) as Json);
    assert.ok(reports.length >= 1 && reports.every((r) => r['stage_info']['status'] === 'SUCCESS'), JSON.stringify(reports));
    assert.equal((await aws.bodies(w.delivery.dlq!.name)).length, 0);
    assert.equal(await second.stop(), 0, second.logs());
  });
});
