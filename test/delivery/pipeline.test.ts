// Delivery through the real server (dex-pipeline.md §4.5–4.7, §9.2; decisions.md "Reports, events, delivery"):
// post-finish routing, FileReady events, the worker's blob-file-copy reports with sha256, delivered files at their
// templated paths, /route re-delivery and its error cases, retries, dead-lettering and start-up redelivery.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runToExit, startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, request } from '../helpers/http.js';
import { DEXTESTING, EICR_GOOD, encodeManifest, type Manifest } from '../helpers/dex-manifests.js';
import { sleep, waitUntil } from '../helpers/wait.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const EICR = EICR_GOOD;
const HELLO = 'Hello world!';
const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const encode = encodeManifest;
const waitFor = waitUntil;

/** Complete JSON lines of a report/event file, or [] while it does not exist. */
async function lines(file: string): Promise<Json[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Json);
}

const reportsOf = (s: RunningServer, id: string) => lines(path.join(s.dir, 'uploads', 'reports', `${id}_blob-file-copy`));
const eventsOf = (s: RunningServer, id: string) => lines(path.join(s.dir, 'uploads', 'events', `${id}_FileReady`));

/** Waits until the upload has `n` blob-file-copy lines and returns them. */
const copies = (s: RunningServer, id: string, n: number) =>
  waitFor(`${n} blob-file-copy report(s) for ${id}`, async () => {
    const r = await reportsOf(s, id);
    return r.length >= n ? r : undefined;
  });

async function upload(s: RunningServer, manifest: Manifest, body = HELLO): Promise<string> {
  const { id } = await createUpload(s.url, { length: Buffer.byteLength(body), metadata: encode(manifest), body });
  return id;
}

/** `YYYY/MM/DD` of the upload's dex_ingest_datetime. */
async function ingestDate(s: RunningServer, id: string): Promise<string> {
  const res = await request({ method: 'GET', url: `${s.url}/info/${id}` });
  const t = (JSON.parse(res.body) as { manifest: Manifest }).manifest['dex_ingest_datetime']!;
  return `${t.slice(0, 4)}/${t.slice(5, 7)}/${t.slice(8, 10)}`;
}

const route = (s: RunningServer, id: string, body: string, method = 'POST') =>
  request({ method, url: `${s.url}/route/${id}`, headers: { 'Content-Type': 'application/json' }, body });

describe('delivery with the shipped deliver.yml (file targets under ./uploads)', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
  });
  after(async () => {
    await s.cleanup();
  });

  it('a dextesting upload: one FileReady, the file at its templated path, one SUCCESS blob-file-copy report', async () => {
    const id = await upload(s, DEXTESTING);
    const [report] = await copies(s, id, 1);
    const day = await ingestDate(s, id);
    const rel = `uploads/edav/${day}/test_${id}.txt`;
    assert.equal(await readFile(path.join(s.dir, rel), 'utf8'), HELLO);

    // The report: the envelope from the stored manifest, the content keys in order with sha256 last.
    assert.equal(report!.upload_id, id);
    assert.equal(report!.sender_id, 'test sender');
    assert.equal(report!.data_stream_id, 'dextesting');
    assert.equal(report!.disposition_type, 'add');
    assert.equal(report!.stage_info.action, 'blob-file-copy');
    assert.equal(report!.stage_info.status, 'SUCCESS');
    assert.equal(report!.stage_info.issues, null);
    assert.deepEqual(Object.keys(report!.content), [
      'content_schema_name',
      'content_schema_version',
      'file_source_blob_url',
      'file_destination_blob_url',
      'destination_name',
      'sha256',
    ]);
    assert.deepEqual(report!.content, {
      content_schema_name: 'blob-file-copy',
      content_schema_version: '1.0.0',
      file_source_blob_url: '',
      file_destination_blob_url: rel,
      destination_name: 'edav',
      sha256: sha256(HELLO),
    });

    // The event: one line per designation of the group (dextesting → edav only), the wire format of §3.1.
    const events = await eventsOf(s, id);
    assert.equal(events.length, 1);
    assert.deepEqual(Object.keys(events[0]!), ['id', 'type', 'retry_count', 'upload_id', 'src_url', 'path', 'deliver_target', 'Metadata']);
    assert.equal(events[0]!.path, `${day}/test_${id}.txt`);
    assert.equal(events[0]!.deliver_target, 'edav');
    assert.equal(events[0]!.Metadata.upload_id, id);

    // sha256 is kept in the upload's info once finished.
    const info = JSON.parse(await readFile(path.join(s.storeDir, `${id}.info`), 'utf8')) as Json;
    assert.equal(info.Sha256, sha256(HELLO));

    // /info deliveries shows the attempt.
    const body = JSON.parse((await request({ method: 'GET', url: `${s.url}/info/${id}` })).body) as Json;
    assert.equal(body.deliveries.length, 1);
    assert.equal(body.deliveries[0].status, 'SUCCESS');
    assert.equal(body.deliveries[0].name, 'edav');
    assert.equal(body.deliveries[0].location, rel);
  });

  it('an eicr upload goes to eicr with the default template (Year/Month/Day/Filename)', async () => {
    const id = await upload(s, EICR);
    await copies(s, id, 1);
    const day = await ingestDate(s, id);
    assert.equal(await readFile(path.join(s.dir, 'uploads/eicr', day, 'test.txt'), 'utf8'), HELLO);
    assert.equal((await eventsOf(s, id)).length, 1);
  });

  it('a v1 upload is routed like its v2 equivalent (hydrated manifest)', async () => {
    const v1: Manifest = {
      meta_destination_id: 'ndlp',
      meta_ext_event: 'covidallmonthlyvaccination',
      meta_ext_source: 'IZGW',
      meta_ext_sourceversion: 'V2023-09-01',
      meta_ext_entity: 'DD2',
      meta_username: 'ygj6@cdc.gov',
      meta_ext_objectkey: '2b18d70c-8559-11ee-b9d1-0242ac120002',
      meta_ext_filename: 'test.txt',
      meta_ext_submissionperiod: '1',
    };
    const id = await upload(s, v1).catch((err: Error) => {
      throw new Error(`the v1 fixture was refused (${err.message}); check the shipped v1 config`);
    });
    const [report] = await copies(s, id, 1);
    assert.equal(report!.stage_info.status, 'SUCCESS', JSON.stringify(report!.stage_info.issues));
    assert.equal(report!.content.destination_name, 'ncird');
    assert.equal(report!.data_stream_id, 'covid-all-monthly-vaccination');
  });

  it('/route re-delivers a deleted file (src_url = the upload id) and answers 200 with the id', async () => {
    const id = await upload(s, DEXTESTING);
    await copies(s, id, 1);
    const file = path.join(s.dir, `uploads/edav/${await ingestDate(s, id)}/test_${id}.txt`);
    await rm(file);
    const res = await route(s, id, '{"target":"edav"}');
    assert.equal(res.status, 200);
    assert.equal(res.body, id);
    const [, second] = await copies(s, id, 2);
    assert.equal(second!.stage_info.status, 'SUCCESS');
    assert.equal(second!.content.file_source_blob_url, id);
    assert.equal(await readFile(file, 'utf8'), HELLO);
    const events = await eventsOf(s, id);
    assert.equal(events.length, 2);
    assert.equal(events[1]!.src_url, id);
  });

  it('/route error cases, in DEX order', async () => {
    const unknown = '0b7c4a4e-8c55-4d3e-9c4a-1e0c2f3a4b5c';
    const cases: Array<[string, () => Promise<{ status: number; body: string }>, number, string | RegExp]> = [
      ['GET /route/1234', () => route(s, '1234', '', 'GET'), 400, ''],
      ['POST body blah', () => route(s, '1234', 'blah'), 400, ''],
      ['POST empty body', () => route(s, '1234', ''), 400, ''],
      ['POST a JSON array', () => route(s, '1234', '[1]'), 400, ''],
      ['unknown id, bogus target', () => route(s, '1234', '{"target":"blah"}'), 404, 'source file does not exist\n'],
      ['unknown uuid, real target', () => route(s, unknown, '{"target":"edav"}'), 404, 'source file does not exist\n'],
      ['hostile id', () => route(s, '..%2F..%2Fetc%2Fpasswd', '{"target":"edav"}'), 404, 'source file does not exist\n'],
      ['unknown source', () => route(s, unknown, '{"target":"edav","source":"nope"}'), 500, 'Could not find source\n'],
      ['GET /route', () => request({ method: 'GET', url: `${s.url}/route` }), 404, '404 page not found\n'],
      ['GET /route/', () => request({ method: 'GET', url: `${s.url}/route/` }), 404, '404 page not found\n'],
      ['POST /route/', () => route(s, '', '{"target":"edav"}'), 404, '404 page not found\n'],
    ];
    for (const [name, run, status, body] of cases) {
      const res = await run();
      assert.equal(res.status, status, `${name}: ${res.status} ${res.body}`);
      if (typeof body === 'string') assert.equal(res.body, body, name);
    }

    const id = await upload(s, DEXTESTING);
    await copies(s, id, 1);
    const notRegistered = await route(s, id, '{"target":"nowhere"}');
    assert.equal(notRegistered.status, 400);
    assert.equal(notRegistered.body, 'Invalid target\n');
    assert.match(String(notRegistered.headers['content-type']), /^text\/plain/);
    // ehdi exists but is not in dextesting's group (the original crashed here).
    const notInGroup = await route(s, id, '{"target":"ehdi"}');
    assert.equal(notInGroup.status, 400);
    assert.equal(notInGroup.body, 'Invalid target for metadata\n');
    // Nothing was published for the refused requests.
    assert.equal((await eventsOf(s, id)).length, 1);
  });

  it('/health lists every target by name, then the upload source, all UP on a fresh install', async () => {
    const res = await request({ method: 'GET', url: `${s.url}/health` });
    const body = JSON.parse(res.body) as { status: string; services: Array<{ service: string; status: string; health_issue: string }> };
    assert.deepEqual(
      body.services.map((x) => x.service),
      ['File Storage', 'File Delivery Target edav', 'File Delivery Target ehdi', 'File Delivery Target eicr', 'File Delivery Target ncird', 'File Source'],
    );
    assert.equal(body.status, 'UP', JSON.stringify(body));
  });

  it('a delivery whose bytes differ from the upload (stored data altered after hashing) is a FAILURE', async () => {
    const id = await upload(s, DEXTESTING);
    await copies(s, id, 1);
    await writeFile(path.join(s.storeDir, id), 'Hello World?'); // same size, different bytes
    assert.equal((await route(s, id, '{"target":"edav"}')).status, 200);
    const [, second] = await copies(s, id, 2);
    assert.equal(second!.stage_info.status, 'FAILURE');
    assert.match(second!.stage_info.issues[0].message, /sha256/);
    assert.equal(second!.content.sha256, sha256(HELLO), 'the report names the upload\'s own sha256');
  });
});

describe('delivery to a target that is down', () => {
  let dir: string;
  let yml: string;
  let s: RunningServer | undefined;
  before(async () => {
    s = await startServer();
    dir = s.dir;
    await s.stop();
    s = undefined;
    yml = path.join(dir, 'deliver.yml');
    await writeFile(
      yml,
      [
        'targets:',
        '  edav: {name: edav, type: file, path: ./blocked/edav}',
        'routing_groups:',
        '  - data_stream_id: dextesting',
        '    data_stream_route: testevent1',
        '    delivery_targets:',
        '      - name: edav',
        '        path_template: "{{.UploadId}}"',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await s?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /** Takes the target "down": its folder becomes a plain file, so writing under it fails until it is removed. */
  const block = async () => {
    await rm(path.join(dir, 'blocked'), { recursive: true, force: true });
    await writeFile(path.join(dir, 'blocked'), 'not a folder');
  };
  const start = (env: Record<string, string> = {}) =>
    startServer({ dir, env: { UPLOAD_MANIFEST_VALIDATION: 'true', DEX_DELIVERY_CONFIG_FILE: yml, ...env } });

  it('is retried with back-off and delivered once when it comes back; /health shows it DOWN meanwhile', async () => {
    // The server starts even though the target's folder cannot be made.
    await block();
    s = await start();
    const health = async () => JSON.parse((await request({ method: 'GET', url: `${s!.url}/health` })).body) as { status: string; services: Json[] };
    const down = await health();
    assert.equal(down.status, 'DEGRADED');
    assert.equal(down.services.find((x) => x.service === 'File Delivery Target edav')?.status, 'DOWN');
    const id = await upload(s, DEXTESTING);
    const [first] = await copies(s, id, 1);
    assert.equal(first!.stage_info.status, 'FAILURE');
    assert.equal(first!.sender_id, '', 'a failed attempt has no manifest in its envelope (as in DEX)');
    await rm(path.join(dir, 'blocked'));
    const all = await waitFor('a SUCCESS report', async () => {
      const r = await reportsOf(s!, id);
      return r.some((x) => x.stage_info.status === 'SUCCESS') ? r : undefined;
    });
    assert.equal(all.filter((x) => x.stage_info.status === 'SUCCESS').length, 1, 'delivered once');
    assert.equal(all.at(-1)!.stage_info.status, 'SUCCESS');
    assert.equal(await readFile(path.join(dir, 'blocked/edav', `${id}.txt`), 'utf8'), HELLO);
    assert.equal((await health()).status, 'UP');
    await s.stop();
    s = undefined;
  });

  it('is dead-lettered after 1 + EVENT_MAX_RETRY_COUNT attempts, and delivered again at the next start', async () => {
    s = await start({ EVENT_MAX_RETRY_COUNT: '1' });
    await block();
    const id = await upload(s, DEXTESTING);
    const deadLetter = path.join(dir, 'uploads/events/dead-letter', `${id}_FileReady`);
    const [dead] = await waitFor('the dead-letter record', async () => {
      const l = await lines(deadLetter);
      return l.length ? l : undefined;
    });
    assert.equal(dead!.retry_count, 1);
    assert.equal(dead!.upload_id, id);
    // Reports are written in the background: the second attempt's may land after the dead-letter record.
    const attempts = await waitFor('both attempts reported', async () => {
      const r = await reportsOf(s!, id);
      return r.length >= 2 ? r : undefined;
    });
    assert.equal(attempts.length, 2, 'two attempts, one report each');
    assert.ok(attempts.every((r) => r.stage_info.status === 'FAILURE'));
    await s.stop();

    // The target is back; a restart delivers what has no SUCCESS report.
    await rm(path.join(dir, 'blocked'));
    s = await start();
    const r = await waitFor('the start-up redelivery', async () => {
      const l = await reportsOf(s!, id);
      return l.some((x) => x.stage_info.status === 'SUCCESS') ? l : undefined;
    });
    assert.equal(r.length, 3);
    assert.equal(await readFile(path.join(dir, 'blocked/edav', `${id}.txt`), 'utf8'), HELLO);
    // A second restart has nothing left to deliver.
    await s.stop();
    s = await start();
    await request({ method: 'GET', url: `${s.url}/health` });
    await sleep(500);
    assert.equal((await reportsOf(s, id)).length, 3, 'nothing is delivered twice');
  });
});

describe('delivery config at start-up', () => {
  it('a missing deliver.yml, bad YAML, an unknown type or an undefined target stop the start naming the problem', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dex-deliver-'));
    const cases: Array<[string, string | null, RegExp]> = [
      ['missing.yml', null, /missing\.yml/],
      ['bad.yml', 'targets: [unclosed', /bad YAML/],
      ['type.yml', 'targets:\n  x: {name: x, type: ftp}\n', /Unknown destination type: ftp/],
      ['undef.yml', 'targets: {}\nrouting_groups:\n  - {data_stream_id: a, data_stream_route: b, delivery_targets: [{name: edav}]}\n', /edav is not defined/],
    ];
    try {
      for (const [name, text, expected] of cases) {
        const file = path.join(dir, name);
        if (text !== null) await writeFile(file, text);
        const r = await runToExit({ DEX_DELIVERY_CONFIG_FILE: file });
        assert.equal(r.code, 1, `${name}: ${r.output}`);
        assert.match(r.output, expected, name);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
