// DEX manifest cases against the real server: the original's smoke fixtures (Playwright/Kotlin), the Go test
// helper's scenarios (dex-pipeline.md §9.1) through tus-js-client, /info in every state, and both validation modes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { DELIVER_YML, REPO_ROOT, startServer, type RunningServer } from '../helpers/server.js';
import { loadDeliveryConfig, type DeliveryConfig } from '../../internal/delivery/config.js';
import { DEXTESTING as DEXTESTING_GOOD, EICR_GOOD } from '../helpers/dex-manifests.js';
import { TR, UUID_V4, b64, createUpload, decodeMetadata, head, idOf, patch, request } from '../helpers/http.js';

type Manifest = Record<string, string>;
type UploadOptions = ConstructorParameters<typeof tus.Upload>[1];

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/dex-smoke');
/** Go's time.RFC3339(Nano) in UTC: fraction optional, trailing zeros trimmed, `Z`. */
const UTC_RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d*[1-9])?Z$/;
const HELLO = Buffer.from('Hello world!');
const SUITE_START = Date.now();

interface FixtureEntry {
  name?: string;
  manifest?: Manifest;
  metadata?: Manifest;
  expectedStatusCode?: number;
  expectedErrorMessages?: string[];
}

function loadFixture(file: string): FixtureEntry[] {
  return JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as FixtureEntry[];
}

function manifestOf(e: FixtureEntry): Manifest {
  const m = e.metadata ?? e.manifest;
  assert.ok(m, 'fixture entry has a manifest');
  return m;
}

function caseName(file: string, i: number, e: FixtureEntry): string {
  const m = manifestOf(e);
  return `${file} #${i}: ${e.name ?? `${m['data_stream_id']}/${m['data_stream_route']}`}`;
}

/** A UTC date-time as Go writes it, parsable, and not in the future (generous bounds: values, not durations). */
function assertUtcDate(value: unknown, what: string): number {
  assert.equal(typeof value, 'string', `${what} is a string`);
  assert.match(value as string, UTC_RFC3339, `${what} is a UTC RFC3339 date-time`);
  const t = Date.parse(value as string);
  assert.ok(Number.isFinite(t), `${what} parses`);
  assert.ok(t >= SUITE_START - 60_000 && t <= Date.now() + 60_000, `${what} (${String(value)}) is about now`);
  return t;
}


function encodeMetadata(m: Manifest): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');
}

type TusOutcome =
  | { ok: true; url: string; id: string }
  | { ok: false; status: number; body: string; contentType: string | undefined; error: Error };

/** Runs a tus-js-client upload; resolves with the created URL, or with the response that refused it. */
function tusUpload(data: Buffer, options: UploadOptions): Promise<TusOutcome> {
  return new Promise((resolve) => {
    const upload: tus.Upload = new tus.Upload(data, {
      retryDelays: null,
      ...options,
      onSuccess: () => resolve({ ok: true, url: upload.url!, id: idOf(upload.url) }),
      onError: (err) => {
        const res = (err as tus.DetailedError).originalResponse;
        resolve({
          ok: false,
          status: res ? res.getStatus() : -1,
          body: res ? (res.getBody() ?? '') : '',
          contentType: res?.getHeader('Content-Type') ?? undefined,
          error: err,
        });
      },
    });
    upload.start();
  });
}

async function expectSuccess(p: Promise<TusOutcome>): Promise<{ url: string; id: string }> {
  const r = await p;
  if (!r.ok) assert.fail(`upload failed: ${r.status} ${r.body} (${r.error.message})`);
  return r;
}

async function expectRejected(p: Promise<TusOutcome>): Promise<{ status: number; body: string; contentType: string | undefined }> {
  const r = await p;
  if (r.ok) assert.fail(`upload ${r.id} was accepted but should have been refused`);
  return r;
}

interface Rejection {
  upload_id: string;
  validation_errors: string[];
}

/** A manifest refusal: 400 JSON `{upload_id, validation_errors}` with at least one error. */
function parseRejection(r: { status: number; body: string; contentType: string | undefined }, expectedStatus = 400): Rejection {
  assert.equal(r.status, expectedStatus, `status (body ${r.body})`);
  assert.match(String(r.contentType), /^application\/json/);
  const body = JSON.parse(r.body) as Rejection;
  assert.match(body.upload_id, UUID_V4);
  assert.ok(Array.isArray(body.validation_errors), 'validation_errors is a list');
  assert.ok(body.validation_errors.length > 0, 'validation_errors is not empty');
  for (const e of body.validation_errors) assert.equal(typeof e, 'string');
  return body;
}

/** The Playwright comparison: drop the exact `validation failure` lines, de-duplicate, then same length, each contained. */
function assertSameMessages(errors: string[], expected: string[]): void {
  const rest = [...new Set(errors.filter((e) => e !== 'validation failure'))];
  assert.equal(rest.length, expected.length, `errors ${JSON.stringify(rest)} vs expected ${JSON.stringify(expected)}`);
  for (const e of expected) assert.ok(rest.includes(e), `${JSON.stringify(e)} is among ${JSON.stringify(rest)}`);
}

interface InfoBody {
  manifest: Manifest;
  file_info: { updated_at: string; size_bytes: number } | null;
  upload_status: { status: string; chunk_received_at: string };
  deliveries: unknown;
}

async function getInfo(base: string, id: string): Promise<InfoBody> {
  const res = await request({ method: 'GET', url: `${base}/info/${id}` });
  assert.equal(res.status, 200, `GET /info/${id}: ${res.body}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.ok(res.body.endsWith('\n'), '/info body ends with a newline');
  return JSON.parse(res.body) as InfoBody;
}

async function readMeta(storeDir: string, id: string): Promise<Manifest> {
  const meta = JSON.parse(await readFile(path.join(storeDir, `${id}.meta`), 'utf8')) as unknown;
  assert.ok(meta !== null && typeof meta === 'object' && !Array.isArray(meta), '.meta is a JSON object');
  for (const [k, v] of Object.entries(meta as object)) assert.equal(typeof v, 'string', `.meta ${k} is a string`);
  return meta as Manifest;
}

/**
 * What every finished upload with a v2 manifest must show: /info Complete with the size, the stored manifest =
 * the client's pairs + the two added keys (sorted), and `.meta` with the same manifest and its upload_id.
 */
async function assertFinished(s: RunningServer, id: string, sent: Manifest, size: number): Promise<InfoBody> {
  const info = await getInfo(s.url, id);
  assert.ok(info.file_info, 'file_info is present');
  assert.equal(info.file_info.size_bytes, size);
  assertUtcDate(info.file_info.updated_at, 'file_info.updated_at');
  assert.equal(info.upload_status.status, 'Complete');
  assertUtcDate(info.upload_status.chunk_received_at, 'chunk_received_at');

  const m = info.manifest;
  assertUtcDate(m['dex_ingest_datetime'], 'manifest.dex_ingest_datetime');
  assert.equal(m['upload_id'], id);
  assert.deepEqual(Object.keys(m), Object.keys(m).sort(), 'manifest keys are sorted');
  assert.deepEqual(m, { ...sent, dex_ingest_datetime: m['dex_ingest_datetime'], upload_id: id });

  const meta = await readMeta(s.storeDir, id);
  assert.equal(meta['upload_id'], id);
  assert.deepEqual(Object.keys(meta), Object.keys(meta).sort(), '.meta keys are sorted');
  assert.deepEqual(meta, m, 'a v2 manifest is written to .meta as stored');
  await assertDelivered(s, id, meta);
  return info;
}

let shipped: DeliveryConfig | undefined;

/**
 * dex-pipeline.md §9.1: each finished upload soon shows one successful delivery per target of its routing group in
 * the shipped deliver.yml (`deliveries` stays null for a stream without a group).
 */
async function assertDelivered(s: RunningServer, id: string, meta: Manifest): Promise<void> {
  shipped ??= await loadDeliveryConfig(DELIVER_YML);
  const targets = (shipped.groups.get(`${meta['data_stream_id']}_${meta['data_stream_route']}`) ?? []).map((d) => d.name);
  if (targets.length === 0) {
    assert.equal((await getInfo(s.url, id)).deliveries, null, 'a stream without a routing group is not delivered');
    return;
  }
  const deadline = Date.now() + 20_000;
  for (;;) {
    const d = (await getInfo(s.url, id)).deliveries as Array<{ status: string; name: string }> | null;
    if (d && d.length >= targets.length) {
      assert.deepEqual(d.map((x) => x.name).sort(), [...targets].sort());
      assert.ok(d.every((x) => x.status === 'SUCCESS'), JSON.stringify(d));
      return;
    }
    if (Date.now() > deadline) assert.fail(`no delivery to ${targets.join(', ')} recorded for ${id}: ${JSON.stringify(d)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function infoFiles(storeDir: string): Promise<string[]> {
  return (await readdir(storeDir)).filter((f) => f.endsWith('.info'));
}

async function assertInfoNotFound(base: string, idPath: string): Promise<void> {
  const res = await request({ method: 'GET', url: `${base}/info/${idPath}` });
  assert.equal(res.status, 404);
  assert.equal(res.body, 'error getting file manifest\n');
}

const SMOKE_FILES = [
  'valid_manifests.json',
  'valid_metadata.json',
  'invalid_manifests_invalid_value.json',
  'invalid_manifests_required_fields.json',
  'invalid_metadata_invalid_values.json',
  'invalid_metadata_missing_required_fields.json',
];

/** A v2 manifest the shipped dextesting config accepts. */
const DEXTESTING: Manifest = {
  data_stream_id: 'dextesting',
  data_stream_route: 'testevent1',
  sender_id: 'test sender',
  data_producer_id: 'test-producer-id',
  jurisdiction: 'test-jurisdiction',
  received_filename: 'dex-smoke-test',
};

describe('DEX manifests with UPLOAD_MANIFEST_VALIDATION=true', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
  });
  after(async () => {
    await s?.cleanup();
  });

  it('every smoke fixture file is covered here (no manifest file is left out)', async () => {
    const files = (await readdir(FIXTURES)).filter((f) => /^(valid|invalid)_/.test(f)).sort();
    assert.deepEqual(files, [...SMOKE_FILES].sort());
    for (const f of SMOKE_FILES) assert.ok(loadFixture(f).length > 0, `${f} has cases`);
  });

  describe('smoke fixtures: valid manifests are accepted and finish', () => {
    for (const file of ['valid_manifests.json', 'valid_metadata.json']) {
      loadFixture(file).forEach((entry, i) => {
        it(caseName(file, i, entry), async () => {
          const manifest = manifestOf(entry);
          const data = randomBytes(10 * 1024); // the Playwright tests upload a 10 KB file
          const { id } = await expectSuccess(tusUpload(data, { endpoint: `${s.url}/files/`, metadata: manifest }));
          assert.deepEqual(await readFile(path.join(s.storeDir, id)), data);
          await assertFinished(s, id, manifest, data.length);
        });
      });
    }
  });

  describe('smoke fixtures: invalid manifests are refused with their errors', () => {
    for (const file of SMOKE_FILES.filter((f) => f.startsWith('invalid_'))) {
      loadFixture(file).forEach((entry, i) => {
        it(caseName(file, i, entry), async () => {
          // As the Playwright tests did: tus-js-client, POST to /files (no slash).
          const r = await expectRejected(tusUpload(HELLO, { endpoint: `${s.url}/files`, metadata: manifestOf(entry) }));
          const body = parseRejection(r, entry.expectedStatusCode ?? 400);
          if (entry.expectedErrorMessages) assertSameMessages(body.validation_errors, entry.expectedErrorMessages);
          else {
            // The Kotlin fixtures give no messages; their file name says what kind of error each case carries.
            assert.ok(file.startsWith('invalid_manifests_'), 'only the Kotlin fixtures come without messages');
            const kind = file.includes('invalid_value') ? / had disallowed value / : /^field \S+ was missing$/;
            assert.ok(body.validation_errors.some((e) => kind.test(e)), `${JSON.stringify(body.validation_errors)} has a ${kind} error`);
          }
          // Nothing is stored under the id named in the refusal.
          await assertInfoNotFound(s.url, body.upload_id);
          await assert.rejects(stat(path.join(s.storeDir, body.upload_id)));
          await assert.rejects(stat(path.join(s.storeDir, `${body.upload_id}.info`)));
        });
      });
    }
  });

  describe('Go test helper cases (dex-pipeline.md §9.1) through tus-js-client', () => {
    const cases: { name: string; metadata: Manifest; ok: boolean; errors?: string[] }[] = [
      {
        name: 'good',
        ok: true,
        metadata: { ...DEXTESTING_GOOD },
      },
      {
        name: 'bad missing data_stream_id',
        ok: false,
        metadata: { data_stream_route: 'testevent1', sender_id: 'test sender', received_filename: 'test.txt' },
        errors: ['validation failure', 'field data_stream_id was missing'],
      },
      {
        name: 'bad missing data_stream_route',
        ok: false,
        metadata: { data_stream_id: 'dextesting', sender_id: 'test sender', received_filename: 'test.txt' },
        errors: ['validation failure', 'field data_stream_route was missing'],
      },
      {
        // eicr_fhir requires received_filename, meta_ext_objectkey and meta_ext_file_timestamp (in that config
        // order); message_type is not in the config, so it is ignored.
        name: 'eicr bad (missing things)',
        ok: false,
        metadata: {
          data_stream_id: 'eicr',
          data_stream_route: 'fhir',
          sender_id: 'APHL',
          original_filename: 'test.txt',
          message_type: 'bad',
        },
        errors: [
          'validation failure',
          'field received_filename was missing',
          'validation failure',
          'field meta_ext_objectkey was missing',
          'validation failure',
          'field meta_ext_file_timestamp was missing',
        ],
      },
      {
        name: 'eicr good',
        ok: true,
        metadata: { ...EICR_GOOD },
      },
    ];

    it('the eicr cases match the shipped eicr_fhir config', async () => {
      const config = JSON.parse(await readFile(path.join(REPO_ROOT, 'upload-configs/v2/eicr_fhir.json'), 'utf8')) as {
        metadata_config: { fields: { field_name: string; required: boolean; allowed_values?: string[] | null }[] };
      };
      const good = cases.find((c) => c.name === 'eicr good')!.metadata;
      for (const f of config.metadata_config.fields) {
        if (f.required) assert.ok(f.field_name in good, `eicr good sends required ${f.field_name}`);
        if (f.allowed_values?.length && f.field_name in good) assert.ok(f.allowed_values.includes(good[f.field_name]!), `${f.field_name} allowed`);
      }
    });

    for (const endpointPath of ['/files/', '/files']) {
      for (const c of cases) {
        it(`${c.name} via ${endpointPath}`, async () => {
          // The Go helper always adds filename=test.txt to the case's metadata.
          const metadata = { ...c.metadata, filename: 'test.txt' };
          const p = tusUpload(HELLO, { endpoint: `${s.url}${endpointPath}`, metadata });
          if (!c.ok) {
            const body = parseRejection(await expectRejected(p));
            assert.deepEqual(body.validation_errors, c.errors);
            await assertInfoNotFound(s.url, body.upload_id);
            return;
          }
          const { url, id } = await expectSuccess(p);
          assert.equal(url, `${s.url}/files/${id}`, 'the upload URL is under /files/ whichever endpoint form was used');
          assert.equal(await readFile(path.join(s.storeDir, id), 'utf8'), 'Hello world!');
          const info = await assertFinished(s, id, metadata, 12);
          assert.equal(info.file_info?.size_bytes, 12);
        });
      }
    }
  });

  describe('/info in each state', () => {
    it('Initiated right after creation, In Progress after a partial PATCH, Complete after the last', async () => {
      const { url, id } = await createUpload(s.url, { length: HELLO.length, metadata: encodeMetadata(DEXTESTING) });

      const created = await getInfo(s.url, id);
      assert.equal(created.upload_status.status, 'Initiated');
      const t0 = assertUtcDate(created.upload_status.chunk_received_at, 'Initiated chunk_received_at');
      assert.equal(created.file_info?.size_bytes, 0);
      assert.equal(created.manifest['upload_id'], id);
      assert.equal(created.deliveries, null);
      await assert.rejects(stat(path.join(s.storeDir, `${id}.meta`)), 'no .meta before the upload finishes');

      const p1 = await patch(url, 0, HELLO.subarray(0, 5));
      assert.equal(p1.status, 204);
      const partial = await getInfo(s.url, id);
      assert.equal(partial.upload_status.status, 'In Progress');
      const t1 = assertUtcDate(partial.upload_status.chunk_received_at, 'In Progress chunk_received_at');
      assert.ok(t1 >= t0, 'chunk_received_at does not go back in time');
      assert.equal(partial.file_info?.size_bytes, 5);
      await assert.rejects(stat(path.join(s.storeDir, `${id}.meta`)), 'no .meta before the upload finishes');

      const p2 = await patch(url, 5, HELLO.subarray(5));
      assert.equal(p2.status, 204);
      const done = await assertFinished(s, id, DEXTESTING, HELLO.length);
      assert.ok(assertUtcDate(done.upload_status.chunk_received_at, 'Complete chunk_received_at') >= t1);
      // /info reports the upload as stored: the same manifest in every state.
      assert.deepEqual(done.manifest, created.manifest);
    });

    it('an unknown uuid is 404 `error getting file manifest`', async () => {
      await assertInfoNotFound(s.url, randomUUID());
    });

    it('/info/1234 is 404', async () => {
      await assertInfoNotFound(s.url, '1234');
    });

    it('/info and /info/ (no id) are 404', async () => {
      for (const p of ['/info', '/info/']) {
        const res = await request({ method: 'GET', url: `${s.url}${p}` });
        assert.equal(res.status, 404, p);
      }
    });
  });

  describe('concatenation with validation on', () => {
    it('partials need no manifest; the final is validated (none → 400, valid → 201 and .meta)', async () => {
      const a = await createUpload(s.url, { length: 6, headers: { 'Upload-Concat': 'partial' }, body: 'Hello ' });
      const b = await createUpload(s.url, { length: 6, headers: { 'Upload-Concat': 'partial' } });
      assert.equal((await patch(b.url, 0, 'world!')).status, 204);
      for (const part of [a, b]) {
        assert.equal(part.res.status, 201);
        assert.equal(decodeMetadata((await head(part.url)).headers['upload-metadata']).length, 0, 'a partial gets no added keys');
        await assert.rejects(stat(path.join(s.storeDir, `${part.id}.meta`)), 'a partial gets no .meta');
      }
      const concat = `final;${a.url} ${b.url}`;

      const none = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Concat': concat } });
      const refusal = parseRejection({ status: none.status, body: none.body, contentType: none.headers['content-type'] });
      // No manifest is a v2 manifest without data_stream_id (decisions.md version rule).
      assert.deepEqual(refusal.validation_errors, ['validation failure', 'field data_stream_id was missing']);
      await assertInfoNotFound(s.url, refusal.upload_id);

      const noSender = Object.fromEntries(Object.entries(DEXTESTING).filter(([k]) => k !== 'sender_id'));
      const bad = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Concat': concat, 'Upload-Metadata': encodeMetadata(noSender) } });
      const badBody = parseRejection({ status: bad.status, body: bad.body, contentType: bad.headers['content-type'] });
      assert.deepEqual(badBody.validation_errors, ['validation failure', 'field sender_id was missing']);

      const ok = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Concat': concat, 'Upload-Metadata': encodeMetadata(DEXTESTING) } });
      assert.equal(ok.status, 201, ok.body);
      const finalId = idOf(String(ok.headers.location));
      assert.equal(await readFile(path.join(s.storeDir, finalId), 'utf8'), 'Hello world!');
      await assertFinished(s, finalId, DEXTESTING, 12);
    });

    it('tus-js-client parallelUploads: 2 with a valid manifest succeeds', async () => {
      const data = randomBytes(300_000);
      const before = await infoFiles(s.storeDir);
      const { id } = await expectSuccess(tusUpload(data, { endpoint: `${s.url}/files/`, metadata: DEXTESTING, parallelUploads: 2 }));
      assert.deepEqual(await readFile(path.join(s.storeDir, id)), data);
      await assertFinished(s, id, DEXTESTING, data.length);
      // Two partial uploads (no manifest, no .meta) and the final one.
      const created = (await infoFiles(s.storeDir)).filter((f) => !before.includes(f));
      assert.equal(created.length, 3, `uploads created: ${created.join(', ')}`);
      const partials = created.map((f) => f.slice(0, -'.info'.length)).filter((p) => p !== id);
      assert.equal(partials.length, 2);
      for (const p of partials) {
        const info = await getInfo(s.url, p);
        assert.equal(info.manifest['upload_id'], undefined, 'a partial gets no added keys');
        await assert.rejects(stat(path.join(s.storeDir, `${p}.meta`)), 'a partial gets no .meta');
      }
    });

    it('tus-js-client parallelUploads: 2 with an invalid manifest is refused at the final upload', async () => {
      const r = await expectRejected(
        tusUpload(HELLO, { endpoint: `${s.url}/files/`, metadata: { ...DEXTESTING, data_stream_route: 'nope' }, parallelUploads: 2 }),
      );
      const body = parseRejection(r);
      assertSameMessages(body.validation_errors, ['open dextesting_nope.json: no such file or directory', 'manifest validation config file not found']);
    });
  });
});

describe('DEX manifests with UPLOAD_MANIFEST_VALIDATION=false', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'false' } });
  });
  after(async () => {
    await s?.cleanup();
  });

  it('accepts a manifest validation would reject, adds the two keys after the client pairs, writes .meta', async () => {
    // Unknown stream, and a client upload_id that the server replaces.
    const sent: [string, string][] = [
      ['data_stream_id', 'nosuchstream'],
      ['upload_id', 'client-chosen'],
      ['data_stream_route', 'nope'],
      ['filename', 'test.txt'],
      ['dex_ingest_datetime', 'yesterday'],
      ['sender_id', 'blah'],
    ];
    const clientPairs = sent.filter(([k]) => k !== 'upload_id' && k !== 'dex_ingest_datetime');
    const metadata = sent.map(([k, v]) => `${k} ${b64(v)}`).join(',');
    const { url, id, res } = await createUpload(s.url, { length: HELLO.length, metadata });
    assert.equal(res.status, 201);

    const pairs = decodeMetadata((await head(url)).headers['upload-metadata']);
    assert.deepEqual(pairs.map(([k]) => k), [...clientPairs.map(([k]) => k), 'dex_ingest_datetime', 'upload_id']);
    assert.deepEqual(pairs.slice(0, clientPairs.length), clientPairs);
    const ingest = pairs[clientPairs.length]![1];
    assertUtcDate(ingest, 'dex_ingest_datetime');
    assert.equal(pairs[clientPairs.length + 1]![1], id);

    assert.equal((await patch(url, 0, HELLO)).status, 204);
    const info = await assertFinished(s, id, Object.fromEntries(clientPairs), HELLO.length);
    assert.equal(info.manifest['dex_ingest_datetime'], ingest);
  });

  it('accepts smoke-fixture manifests that validation refuses', async () => {
    const entry = loadFixture('invalid_metadata_invalid_values.json')[0]!; // received_filename with a '/'
    const manifest = manifestOf(entry);
    const { id } = await expectSuccess(tusUpload(HELLO, { endpoint: `${s.url}/files`, metadata: manifest }));
    await assertFinished(s, id, manifest, HELLO.length);
  });

  it('accepts an upload with no metadata at all and still adds the two keys', async () => {
    const { url, id } = await createUpload(s.url, { length: 0 });
    const pairs = decodeMetadata((await head(url)).headers['upload-metadata']);
    assert.deepEqual(pairs.map(([k]) => k), ['dex_ingest_datetime', 'upload_id']);
    assert.equal(pairs[1]![1], id);
    await assertFinished(s, id, {}, 0);
  });
});
