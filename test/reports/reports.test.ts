// DEX processing reports (dex-pipeline.md §2.1–2.4, decisions.md "Reports, events, delivery"): the local file sink,
// checked line by line and key by key against the real server, and the publisher's ordering, retry and backlog rules.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT, startServer, type RunningServer } from '../helpers/server.js';
import { b64, request, TR, UUID_V4, type Response } from '../helpers/http.js';
import { VALID_MANIFEST } from '../helpers/manifest-mode.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { MAX_PENDING, ReportPublisher } from '../../internal/reports/publisher.js';
import { buildReport, type Report, type Stage } from '../../internal/reports/report.js';
import type { ReportSink } from '../../internal/reports/sinks.js';
import type { Logger } from '../../internal/logging/logger.js';

// ---------------------------------------------------------------------------------------------------------------
// Helpers

type Json = Record<string, unknown>;
type Manifest = Record<string, string>;

const ENVELOPE_KEYS = [
  'report_schema_version',
  'upload_id',
  'sender_id',
  'data_stream_id',
  'data_stream_route',
  'jurisdiction',
  'dex_ingest_datetime',
  'content_type',
  'disposition_type',
  'stage_info',
  'content',
];
const STAGE_INFO_KEYS = ['service', 'action', 'version', 'status', 'issues', 'start_processing_time', 'end_processing_time'];
/** Go's RFC3339Nano in UTC: fraction without trailing zeros, none at all when zero. */
const GO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,8}[1-9])?Z$/;
const FULL_SET: Stage[] = ['metadata-transform', 'metadata-verify', 'upload-started', 'upload-status', 'upload-completed'];

const encode = (m: Manifest) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');
const sorted = (m: Manifest): Manifest => Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]!]));
const waitFor = waitUntil;

/** The report lines of `<folder>/<id>_<stage>` (each line checked to be one complete JSON document), or undefined. */
async function readLines(folder: string, id: string, stage: Stage): Promise<Json[] | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(folder, `${id}_${stage}`), 'utf8');
  } catch {
    return undefined;
  }
  if (text === '' || !text.endsWith('\n')) return undefined; // not yet (or half) written
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as Json);
}

/** The upload stages that have a report file for `id` (blob-file-copy is delivery's: test/delivery checks it). */
async function stagesOf(folder: string, id: string): Promise<string[]> {
  const names = await readdir(folder).catch(() => [] as string[]);
  return names
    .filter((n) => n.startsWith(`${id}_`))
    .map((n) => n.slice(id.length + 1))
    .filter((stage) => stage !== 'blob-file-copy')
    .sort();
}

/** Waits until every stage in `stages` has a file and the upload-status file (if wanted) ends with offset == size. */
async function waitForReports(folder: string, id: string, stages: Stage[], opts: { statusLines?: number } = {}): Promise<Record<string, Json[]>> {
  return waitFor(`reports ${stages.join(', ')} of ${id}`, async () => {
    const out: Record<string, Json[]> = {};
    for (const st of stages) {
      const lines = await readLines(folder, id, st);
      if (!lines) return undefined;
      out[st] = lines;
    }
    const status = out['upload-status'];
    if (status) {
      if (opts.statusLines !== undefined && status.length < opts.statusLines) return undefined;
      const last = status[status.length - 1]!['content'] as Json;
      if (last['offset'] !== last['size'] || !out['upload-completed']) return undefined;
    }
    return out;
  });
}

interface Expect {
  id: string;
  stage: Stage;
  /** The hydrated manifest the envelope fields come from. */
  manifest: Manifest;
  version: string;
  status?: 'SUCCESS' | 'FAILURE';
  issues?: { level: string; message: string }[] | null;
  /** Wall-clock window (ms) the processing times must fall in. */
  from: number;
  to: number;
}

/** Checks everything but `content` beyond its two schema keys; returns `content`. */
function checkEnvelope(r: Json, e: Expect): Json {
  assert.deepEqual(Object.keys(r), ENVELOPE_KEYS, `envelope key order of ${e.stage}`);
  assert.equal(r['report_schema_version'], '1.0.0');
  assert.equal(r['upload_id'], e.id);
  assert.equal(r['sender_id'], e.manifest['sender_id'] ?? '');
  assert.equal(r['data_stream_id'], e.manifest['data_stream_id'] ?? '');
  assert.equal(r['data_stream_route'], e.manifest['data_stream_route'] ?? '');
  assert.equal(r['jurisdiction'], e.manifest['jurisdiction'] ?? '');
  assert.equal(r['dex_ingest_datetime'], e.manifest['dex_ingest_datetime'] ?? '');
  assert.equal(r['content_type'], 'application/json');
  assert.equal(r['disposition_type'], e.stage === 'upload-status' ? 'replace' : 'add');

  const si = r['stage_info'] as Json;
  assert.deepEqual(Object.keys(si), STAGE_INFO_KEYS, `stage_info key order of ${e.stage}`);
  assert.equal(si['service'], 'UPLOAD API');
  assert.equal(si['action'], e.stage);
  assert.equal(si['version'], e.version);
  assert.equal(si['status'], e.status ?? 'SUCCESS');
  assert.deepEqual(si['issues'], e.issues ?? null);
  if (e.issues === undefined || e.issues === null) assert.equal(si['issues'], null, 'no issues is null, not []');
  const start = si['start_processing_time'] as string;
  const end = si['end_processing_time'] as string;
  assert.match(start, GO_UTC);
  assert.match(end, GO_UTC);
  assert.ok(Date.parse(start) <= Date.parse(end), `start ${start} after end ${end}`);
  // Same clock as the server: the times fall between the test's request and its reading (1 s slack for clock steps).
  for (const t of [start, end]) {
    assert.ok(Date.parse(t) >= e.from - 1000 && Date.parse(t) <= e.to + 1000, `${t} outside the test's window`);
  }

  const content = r['content'] as Json;
  assert.deepEqual(Object.keys(content).slice(0, 2), ['content_schema_name', 'content_schema_version']);
  assert.equal(content['content_schema_name'], e.stage);
  assert.equal(content['content_schema_version'], '1.0.0');
  return content;
}

function contentKeys(content: Json, keys: string[]): void {
  assert.deepEqual(Object.keys(content), ['content_schema_name', 'content_schema_version', ...keys]);
}

/** A creation straight through node:http (no manifest-mode additions), returning the response and the upload id. */
async function create(base: string, headers: Record<string, string>, body?: string): Promise<{ res: Response; url: string; id: string }> {
  const h: Record<string, string> = { ...TR, ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/offset+octet-stream';
  const res = await request({ method: 'POST', url: `${base}/files/`, headers: h, body });
  const url = res.headers.location ? String(res.headers.location) : '';
  return { res, url, id: url ? url.split('/').pop()! : '' };
}

function patchAt(url: string, offset: number, body: string): Promise<Response> {
  return request({
    method: 'PATCH',
    url,
    headers: { ...TR, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
    body,
  });
}

async function reportVersion(base: string): Promise<string> {
  const res = await request({ method: 'GET', url: `${base}/version` });
  assert.equal(res.status, 200);
  const v = JSON.parse(res.body) as { latest_release_version: string; git_short_sha: string };
  const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(v.latest_release_version, pkg.version);
  assert.match(v.git_short_sha, /^[0-9a-f]*$/);
  return `${v.latest_release_version}_${v.git_short_sha}`;
}

/** Creates a `length`-byte upload with `manifest` and finishes it with PATCHes of `pieces`. */
async function uploadInPieces(base: string, manifest: Manifest, pieces: string[]): Promise<{ id: string; size: number }> {
  const size = pieces.reduce((n, p) => n + p.length, 0);
  const { res, url, id } = await create(base, { 'Upload-Length': String(size), 'Upload-Metadata': encode(manifest) });
  assert.equal(res.status, 201, res.body);
  assert.match(id, UUID_V4);
  let offset = 0;
  for (const p of pieces) {
    const r = await patchAt(url, offset, p);
    assert.equal(r.status, 204, r.body);
    offset += p.length;
    assert.equal(r.headers['upload-offset'], String(offset));
  }
  return { id, size };
}

const readMeta = async (s: RunningServer, id: string) =>
  JSON.parse(await readFile(path.join(s.storeDir, `${id}.meta`), 'utf8')) as Manifest;

// ---------------------------------------------------------------------------------------------------------------

describe('reports with manifest validation on', () => {
  let s: RunningServer;
  let reports: string;
  let version: string;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
    reports = path.join(s.dir, 'uploads', 'reports');
    version = await reportVersion(s.url);
  });
  after(async () => {
    await s.cleanup();
  });

  it('a finished upload has transform, verify, started, status and completed reports, every field exact', async () => {
    const from = Date.now();
    const { id, size } = await uploadInPieces(s.url, { ...VALID_MANIFEST }, ['hello', 'world']);
    const got = await waitForReports(reports, id, FULL_SET, { statusLines: 4 });
    const to = Date.now();
    assert.deepEqual(await stagesOf(reports, id), [...FULL_SET].sort());

    const stored = await readMeta(s, id);
    assert.match(stored['dex_ingest_datetime']!, GO_UTC);
    assert.equal(stored['upload_id'], id);
    // The manifest the envelope fields come from: the client's, plus the two server keys.
    const manifest: Manifest = { ...VALID_MANIFEST, dex_ingest_datetime: stored['dex_ingest_datetime']!, upload_id: id };
    assert.deepEqual(stored, sorted(manifest));
    const base = { id, manifest, version, from, to };

    // metadata-transform
    assert.equal(got['metadata-transform']!.length, 1);
    const transform = checkEnvelope(got['metadata-transform']![0]!, { ...base, stage: 'metadata-transform' });
    contentKeys(transform, ['transforms']);
    assert.deepEqual(transform['transforms'], [
      { action: 'update', field: 'ID', value: id },
      { action: 'append', field: 'dex_ingest_datetime', value: stored['dex_ingest_datetime'] },
      { action: 'append', field: 'upload_id', value: id },
    ]);
    for (const t of transform['transforms'] as Json[]) assert.deepEqual(Object.keys(t), ['action', 'field', 'value']);

    // metadata-verify
    assert.equal(got['metadata-verify']!.length, 1);
    const verify = checkEnvelope(got['metadata-verify']![0]!, { ...base, stage: 'metadata-verify' });
    contentKeys(verify, ['filename', 'metadata']);
    assert.equal(verify['filename'], VALID_MANIFEST['received_filename']);
    assert.deepEqual(verify['metadata'], sorted(manifest));
    assert.deepEqual(Object.keys(verify['metadata'] as Json), Object.keys(manifest).sort());

    // upload-started / upload-completed
    for (const stage of ['upload-started', 'upload-completed'] as const) {
      assert.equal(got[stage]!.length, 1, stage);
      const c = checkEnvelope(got[stage]![0]!, { ...base, stage });
      contentKeys(c, ['status']);
      assert.equal(c['status'], 'SUCCESS');
    }

    // upload-status: post-create (0), end of each PATCH (5, 10), post-finish (offset == size).
    const status = got['upload-status']!;
    const offsets = status.map((line) => {
      const c = checkEnvelope(line, { ...base, stage: 'upload-status' });
      contentKeys(c, ['filename', 'tguid', 'offset', 'size']);
      assert.equal(c['filename'], VALID_MANIFEST['received_filename']);
      assert.equal(c['tguid'], id);
      assert.equal(c['size'], size);
      assert.ok(Number.isInteger(c['offset']));
      return c['offset'];
    });
    assert.deepEqual(offsets, [0, 5, 10, size]);
    assert.equal(size, 10);
  });

  it('a rejected upload has only metadata-transform and a FAILURE metadata-verify under the rejection id', async () => {
    const from = Date.now();
    const manifest: Manifest = { ...VALID_MANIFEST };
    delete manifest['sender_id'];
    const { res } = await create(s.url, { 'Upload-Length': '4', 'Upload-Metadata': encode(manifest) });
    assert.equal(res.status, 400);
    const body = JSON.parse(res.body) as { upload_id: string; validation_errors: string[] };
    const id = body.upload_id;
    assert.match(id, UUID_V4);
    assert.ok(body.validation_errors.includes('field sender_id was missing'), res.body);

    const got = await waitForReports(reports, id, ['metadata-transform', 'metadata-verify']);
    // Reports are written in order through one queue: once a later upload's reports are there, nothing more can
    // follow for the rejected one.
    const later = await uploadInPieces(s.url, { ...VALID_MANIFEST }, ['ok']);
    await waitForReports(reports, later.id, FULL_SET);
    const to = Date.now();
    assert.deepEqual(await stagesOf(reports, id), ['metadata-transform', 'metadata-verify']);
    await assert.rejects(readFile(path.join(s.storeDir, id)));

    const transformLine = got['metadata-transform']!;
    assert.equal(transformLine.length, 1);
    const ts = (transformLine[0]!['dex_ingest_datetime'] as string) ?? '';
    assert.match(ts, GO_UTC);
    const full: Manifest = { ...manifest, dex_ingest_datetime: ts, upload_id: id };
    const base = { id, manifest: full, version, from, to };
    assert.equal(transformLine[0]!['sender_id'], '');
    const transform = checkEnvelope(transformLine[0]!, { ...base, stage: 'metadata-transform' });
    assert.deepEqual(transform['transforms'], [
      { action: 'update', field: 'ID', value: id },
      { action: 'append', field: 'dex_ingest_datetime', value: ts },
      { action: 'append', field: 'upload_id', value: id },
    ]);

    assert.equal(got['metadata-verify']!.length, 1);
    const verify = checkEnvelope(got['metadata-verify']![0]!, {
      ...base,
      stage: 'metadata-verify',
      status: 'FAILURE',
      issues: [{ level: 'ERROR', message: body.validation_errors.join('\n') }],
    });
    const issue = ((got['metadata-verify']![0]!['stage_info'] as Json)['issues'] as Json[])[0]!;
    assert.deepEqual(Object.keys(issue), ['level', 'message']);
    contentKeys(verify, ['filename', 'metadata']);
    assert.equal(verify['filename'], VALID_MANIFEST['received_filename']);
    assert.deepEqual(verify['metadata'], sorted(full));
  });

  it('partial uploads get no reports; the final upload gets the full set', async () => {
    const a = await create(s.url, { 'Upload-Length': '3', 'Upload-Concat': 'partial' }, 'abc');
    const b = await create(s.url, { 'Upload-Concat': 'partial', 'Upload-Defer-Length': '1' });
    assert.equal(a.res.status, 201);
    assert.equal(b.res.status, 201);
    const pb = await request({
      method: 'PATCH',
      url: b.url,
      headers: { ...TR, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Upload-Length': '3' },
      body: 'def',
    });
    assert.equal(pb.status, 204);
    const from = Date.now();
    const fin = await create(s.url, { 'Upload-Concat': `final;${a.url} ${b.url}`, 'Upload-Metadata': encode({ ...VALID_MANIFEST }) });
    assert.equal(fin.res.status, 201, fin.res.body);
    assert.match(fin.id, UUID_V4);

    const got = await waitForReports(reports, fin.id, FULL_SET);
    const to = Date.now();
    assert.deepEqual(await stagesOf(reports, fin.id), [...FULL_SET].sort());
    for (const p of [a.id, b.id]) assert.deepEqual(await stagesOf(reports, p), [], `partial ${p} has reports`);

    const stored = await readMeta(s, fin.id);
    const manifest: Manifest = { ...VALID_MANIFEST, dex_ingest_datetime: stored['dex_ingest_datetime']!, upload_id: fin.id };
    for (const stage of FULL_SET) {
      for (const line of got[stage]!) checkEnvelope(line, { id: fin.id, stage, manifest, version, from, to });
    }
    const status = got['upload-status']!.map((l) => l['content'] as Json);
    assert.ok(status.every((c) => c['size'] === 6 && c['tguid'] === fin.id));
    assert.equal(status[status.length - 1]!['offset'], 6);
  });

  it('a v1 manifest is reported with its hydrated v2 stream, route and sender', async () => {
    const v1: Manifest = {
      version: '1.0',
      meta_destination_id: 'ndlp',
      meta_ext_event: 'routineimmunization',
      meta_ext_objectkey: 'obj-1',
      meta_ext_filename: 'imm.csv',
      meta_username: 'someone',
      meta_ext_source: 'IZGW',
      meta_ext_sourceversion: 'V2024-09-04',
      meta_ext_entity: 'AKA',
      meta_ext_submissionperiod: '2024-Q1',
    };
    const from = Date.now();
    const { id, size } = await uploadInPieces(s.url, v1, ['v1v1']);
    const got = await waitForReports(reports, id, FULL_SET);
    const to = Date.now();

    const stored = await readMeta(s, id);
    // The hydration the reports use is the one stored for delivery.
    assert.equal(stored['data_stream_id'], 'routine-immunization');
    assert.equal(stored['data_stream_route'], 'other');
    assert.equal(stored['sender_id'], v1['meta_ext_source']);
    assert.equal(stored['jurisdiction'], v1['meta_ext_entity']);
    const base = { id, manifest: stored, version, from, to };
    for (const stage of FULL_SET) {
      for (const line of got[stage]!) {
        assert.equal(line['data_stream_id'], 'routine-immunization');
        assert.equal(line['data_stream_route'], 'other');
        assert.equal(line['sender_id'], 'IZGW');
        checkEnvelope(line, { ...base, stage });
      }
    }
    const verify = got['metadata-verify']![0]!['content'] as Json;
    assert.equal(verify['filename'], v1['meta_ext_filename']);
    assert.deepEqual(verify['metadata'], stored);
    const last = got['upload-status']![got['upload-status']!.length - 1]!['content'] as Json;
    assert.deepEqual(last, {
      content_schema_name: 'upload-status',
      content_schema_version: '1.0.0',
      filename: v1['meta_ext_filename'],
      tguid: id,
      offset: size,
      size,
    });
  });
});

describe('reports with manifest validation off', () => {
  let s: RunningServer;
  let reports: string;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'false' } });
    reports = path.join(s.dir, 'uploads', 'reports');
  });
  after(async () => {
    await s.cleanup();
  });

  it('there is no metadata-verify report; transform and upload reports are written', async () => {
    const version = await reportVersion(s.url);
    const manifest: Manifest = { filename: 'plain.bin', anything: 'goes' };
    const from = Date.now();
    const { id, size } = await uploadInPieces(s.url, manifest, ['abc', 'defg']);
    const stages: Stage[] = ['metadata-transform', 'upload-started', 'upload-status', 'upload-completed'];
    const got = await waitForReports(reports, id, stages, { statusLines: 4 });
    const to = Date.now();
    assert.deepEqual(await stagesOf(reports, id), [...stages].sort());

    const stored = await readMeta(s, id);
    const full: Manifest = { ...manifest, dex_ingest_datetime: stored['dex_ingest_datetime']!, upload_id: id };
    assert.deepEqual(stored, sorted(full));
    for (const stage of stages) {
      for (const line of got[stage]!) checkEnvelope(line, { id, stage, manifest: full, version, from, to });
    }
    const status = got['upload-status']!.map((l) => l['content'] as Json);
    assert.deepEqual(
      status.map((c) => c['offset']),
      [0, 3, 7, 7],
    );
    assert.ok(status.every((c) => c['filename'] === 'plain.bin' && c['size'] === size));
  });
});

describe('a failing report sink', () => {
  let s: RunningServer;
  const folderName = 'sink-reports';
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true', LOCAL_REPORTS_FOLDER: folderName } });
  });
  after(async () => {
    await s.cleanup();
  });

  it('is retried and loses nothing: every report arrives, in order, once the folder is back', async () => {
    const folder = path.join(s.dir, folderName);
    // The server made the folder at start-up; a plain file in its place makes every append fail.
    await rm(folder, { recursive: true, force: true });
    await writeFile(folder, 'not a folder\n');

    const { id, size } = await uploadInPieces(s.url, { ...VALID_MANIFEST }, ['hello', 'world']);
    await waitFor('the sink failure to be logged', async () => (s.logs().includes('report sink failed; retrying') ? true : undefined));
    await sleep(1500);
    await rm(folder, { force: true });
    await mkdir(folder);

    const got = await waitForReports(folder, id, FULL_SET, { statusLines: 4 });
    assert.deepEqual(await stagesOf(folder, id), [...FULL_SET].sort());
    for (const stage of FULL_SET) {
      for (const line of got[stage]!) {
        assert.equal(line['upload_id'], id);
        assert.equal((line['stage_info'] as Json)['action'], stage);
      }
    }
    for (const stage of ['metadata-transform', 'metadata-verify', 'upload-started', 'upload-completed'] as const) {
      assert.equal(got[stage]!.length, 1, `${stage} written once`);
    }
    const offsets = got['upload-status']!.map((l) => (l['content'] as Json)['offset'] as number);
    assert.deepEqual(offsets, [0, 5, 10, size]);

    const warnings = s
      .logs()
      .split('\n')
      .filter((l) => l.includes('report sink failed; retrying'))
      .map((l) => JSON.parse(l) as Json);
    assert.ok(warnings.length >= 1);
    assert.equal(warnings[0]!['level'], 40);
    assert.equal(warnings[0]!['sink'], 'file');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// ReportPublisher in-process. The sink here is a stub of our own ReportSink interface (it is our own code, not a
// third-party service), so it can fail, hang and recover on cue.

interface LogRecord {
  level: string;
  obj: Json;
  msg: string;
}

function stubLogger(records: LogRecord[]): Logger {
  const at = (level: string) => (obj: Json, msg: string) => records.push({ level, obj, msg });
  return { warn: at('warn'), error: at('error'), info: at('info'), debug: at('debug') } as unknown as Logger;
}

class StubSink implements ReportSink {
  readonly name = 'stub';
  readonly written: Report[] = [];
  calls = 0;
  /** `down` fails every write, `failNext` the next n writes; `gate` makes the next write wait on it. */
  failNext = 0;
  down = false;
  gate: Promise<void> | null = null;

  async publish(report: Report): Promise<void> {
    this.calls++;
    if (this.gate) {
      const g = this.gate;
      this.gate = null;
      await g;
    }
    if (this.down) throw new Error('sink down');
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('transient failure');
    }
    this.written.push(report);
  }
}

let seq = 0;
const report = (uploadId: string, stage: Stage, offset = 0): Report =>
  buildReport({
    stage,
    uploadId,
    manifest: { sender_id: 's', upload_id: uploadId },
    version: '0.0.0_test',
    content: stage === 'upload-status' ? { filename: 'f', tguid: uploadId, offset, size: 10 } : { seq: seq++ },
  });
/** The publisher's back-off timer does not hold the process open (unref): hold it while a test awaits it. */
async function held<T>(p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(keep);
  }
}
const uid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('ReportPublisher (in-process)', () => {
  it('keeps the publish order, per upload and overall, across a failure and its retry', async () => {
    const records: LogRecord[] = [];
    const sink = new StubSink();
    const drops: string[] = [];
    const pub = new ReportPublisher([sink], stubLogger(records), (name) => drops.push(name));
    sink.failNext = 1; // the very first write fails once
    const a = uid(1);
    const b = uid(2);
    const published = [
      report(a, 'metadata-transform'),
      report(b, 'metadata-transform'),
      report(a, 'upload-started'),
      report(a, 'upload-status', 0),
      report(b, 'upload-started'),
      report(a, 'upload-status', 5),
      report(b, 'upload-status', 0),
      report(a, 'upload-completed'),
      report(a, 'upload-status', 10),
    ];
    for (const r of published) pub.publish(r);
    await held(pub.drain());

    assert.equal(sink.written.length, published.length);
    sink.written.forEach((r, i) => assert.equal(r, published[i], `report ${i} out of order`));
    assert.deepEqual(
      sink.written.filter((r) => r.upload_id === a && r.stage_info.action === 'upload-status').map((r) => r.content['offset']),
      [0, 5, 10],
    );
    assert.equal(sink.calls, published.length + 1, 'exactly one retry');
    assert.deepEqual(drops, []);
    const warns = records.filter((r) => r.msg === 'report sink failed; retrying');
    assert.equal(warns.length, 1);
    assert.equal(warns[0]!.level, 'warn');
    assert.equal(warns[0]!.obj['sink'], 'stub');
  });

  it('while the sink is down, beyond MAX_PENDING the oldest reports are dropped, each counted by onDrop', async () => {
    const records: LogRecord[] = [];
    const sink = new StubSink();
    const drops: string[] = [];
    const pub = new ReportPublisher([sink], stubLogger(records), (name) => drops.push(name));
    sink.down = true;
    const extra = 7;
    const published = Array.from({ length: MAX_PENDING + extra }, (_, i) => report(uid(i), 'upload-started'));
    pub.publish(published[0]!);
    // The first write has failed: the publisher is waiting to retry, nothing is being written.
    await waitFor('the first failure', async () => (records.some((r) => r.msg === 'report sink failed; retrying') ? true : undefined));
    for (const r of published.slice(1)) pub.publish(r);

    assert.equal(drops.length, extra);
    assert.ok(drops.every((d) => d === 'stub'));
    const dropLogs = records.filter((r) => r.msg === 'report dropped: sink backlog full');
    assert.deepEqual(
      dropLogs.map((r) => r.obj['uploadId']),
      published.slice(0, extra).map((r) => r.upload_id),
    );
    assert.ok(dropLogs.every((r) => r.level === 'warn'));

    sink.down = false;
    await held(pub.drain());
    assert.equal(sink.written.length, MAX_PENDING);
    sink.written.forEach((r, i) => assert.equal(r, published[extra + i], `written report ${i}`));
    assert.equal(drops.length, extra);
  });

  it('a report being written when the backlog overflows is neither lost nor counted as dropped', async () => {
    const records: LogRecord[] = [];
    const sink = new StubSink();
    const drops: string[] = [];
    const pub = new ReportPublisher([sink], stubLogger(records), (name) => drops.push(name));
    let release!: () => void;
    sink.gate = new Promise<void>((r) => (release = r)); // the first write hangs (a slow broker)
    const extra = 3;
    const published = Array.from({ length: MAX_PENDING + extra }, (_, i) => report(uid(i), 'upload-started'));
    for (const r of published) pub.publish(r);
    assert.equal(sink.calls, 1);
    release();
    await held(pub.drain());

    const dropped = new Set(records.filter((r) => r.msg === 'report dropped: sink backlog full').map((r) => r.obj['uploadId'] as string));
    assert.equal(dropped.size, drops.length);
    assert.equal(drops.length, extra);
    const written = sink.written.map((r) => r.upload_id);
    assert.equal(new Set(written).size, written.length, 'no report written twice');
    for (const id of written) assert.ok(!dropped.has(id), `${id} was both written and counted as dropped`);
    // Every report is accounted for: written or dropped, and the written ones in publish order.
    assert.equal(written.length + dropped.size, published.length);
    const order = new Map(published.map((r, i) => [r.upload_id, i]));
    for (let i = 1; i < written.length; i++) assert.ok(order.get(written[i]!)! > order.get(written[i - 1]!)!);
  });
});
