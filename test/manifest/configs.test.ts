// Every shipped sender manifest config (upload-configs/v1/*.json, upload-configs/v2/*.json), enumerated at test time,
// against one real server with UPLOAD_MANIFEST_VALIDATION=true: a fully valid manifest is accepted and its hydrated
// `.meta` is exactly what the configs say it should be; every required field missing, every allowed_values field
// with a wrong value, every filename field with a `/` is rejected with the exact error lines. Then the lookup and
// version edge cases, client-supplied server keys, path traversal, and a config folder holding invalid JSON.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startServer, type RunningServer } from '../helpers/server.js';
import { b64, head, patch, request, TR, type Response } from '../helpers/http.js';

type Manifest = Record<string, string>;

interface Field {
  field_name: string;
  required?: boolean;
  allowed_values?: string[] | null;
  compat_field_name?: string | null;
}

interface Config {
  metadata_config?: { version?: string; fields?: Field[] };
  compat_config_filename?: string;
}

interface ConfigCase {
  kind: 'v1' | 'v2';
  file: string; // e.g. ehdi_csv.json
  config: Config;
  /** The fields that name the config: data_stream_id/route (v2), meta_destination_id/meta_ext_event (v1). */
  lookup: [string, string];
  /** Their values, from the file name. */
  lookupValues: [string, string];
  /** The config key the server looks up for this manifest (as named in its not-found message). */
  key: string;
}

const CONFIG_ROOT = path.join(REPO_ROOT, 'upload-configs');
const FILENAME_FIELDS = ['filename', 'original_filename', 'meta_ext_filename', 'received_filename'];
const FAILURE = 'validation failure';
const NOT_FOUND = 'manifest validation config file not found';
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Go's time.RFC3339Nano-style UTC with millisecond precision, trailing zeros of the fraction trimmed.
const GO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,2}[1-9])?Z$/;

function readConfig(rel: string): Config {
  return JSON.parse(readFileSync(path.join(CONFIG_ROOT, rel), 'utf8')) as Config;
}

function fieldsOf(c: Config): Field[] {
  return c.metadata_config?.fields ?? [];
}

/** The configs as they are in the repo right now (a new file is covered without touching this test). */
function loadCases(): ConfigCase[] {
  const cases: ConfigCase[] = [];
  for (const kind of ['v1', 'v2'] as const) {
    const files = readdirSync(path.join(CONFIG_ROOT, kind))
      .filter((f) => f.endsWith('.json'))
      .sort();
    for (const file of files) {
      const base = file.slice(0, -'.json'.length);
      const config = readConfig(`${kind}/${file}`);
      if (kind === 'v2') {
        const cut = base.lastIndexOf('_');
        assert.ok(cut > 0, `v2 config ${file} is not named <data_stream_id>_<data_stream_route>.json`);
        cases.push({
          kind,
          file,
          config,
          lookup: ['data_stream_id', 'data_stream_route'],
          lookupValues: [base.slice(0, cut), base.slice(cut + 1)],
          key: `${base}.json`.toLowerCase(),
        });
      } else {
        const cut = base.indexOf('-');
        assert.ok(cut > 0, `v1 config ${file} is not named <meta_destination_id>-<meta_ext_event>.json`);
        cases.push({
          kind,
          file,
          config,
          lookup: ['meta_destination_id', 'meta_ext_event'],
          lookupValues: [base.slice(0, cut), base.slice(cut + 1)],
          key: `v1/${base}.json`.toLowerCase(),
        });
      }
    }
  }
  return cases;
}

const CASES = loadCases();

/** A value the config accepts for a field that has no allowed_values (never contains `/`). */
function plausible(field: string): string {
  if (FILENAME_FIELDS.includes(field) || field.includes('filename')) return `sample-${field}.csv`;
  if (field.includes('timestamp')) return '2024-05-06T07:08:09Z';
  if (field.includes('submissionperiod')) return '2024-Q2';
  if (field.includes('username')) return 'test-user';
  return `test-${field.replace(/_/g, '-')}`;
}

/** Every field of the config set (first allowed value, else a plausible string), then the lookup keys and version. */
function validManifest(c: ConfigCase): Manifest {
  const m: Manifest = {};
  for (const f of fieldsOf(c.config)) {
    m[f.field_name] = f.allowed_values && f.allowed_values.length > 0 ? f.allowed_values[0]! : plausible(f.field_name);
  }
  m[c.lookup[0]] = c.lookupValues[0];
  m[c.lookup[1]] = c.lookupValues[1];
  m['version'] = c.kind === 'v2' ? '2.0' : '1.0';
  return m;
}

function encodeMetadata(m: Manifest): string {
  return Object.entries(m)
    .map(([k, v]) => (v === '' ? k : `${k} ${b64(v)}`))
    .join(',');
}

/** Upload-Metadata as ordered [key, value] pairs. */
function decodeMetadata(header: string | string[] | undefined): Array<[string, string]> {
  assert.equal(typeof header, 'string', 'Upload-Metadata header');
  return (header as string)
    .split(',')
    .filter((p) => p.trim() !== '')
    .map((p) => {
      const [k, v] = p.trim().split(' ');
      return [k!, v === undefined ? '' : Buffer.from(v, 'base64').toString()];
    });
}

function sorted(m: Manifest): Manifest {
  const out: Manifest = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k]!;
  return out;
}

/** The v2 config a v1 config hydrates into: `compat_config_filename` as written, else with its last `-` → `_`. */
function compatTarget(c: ConfigCase): string | undefined {
  const compat = c.config.compat_config_filename;
  if (!compat) return undefined;
  const base = compat.replace(/\.json$/, '');
  const i = base.lastIndexOf('-');
  const alt = i < 0 ? compat : `${base.slice(0, i)}_${base.slice(i + 1)}.json`;
  for (const rel of [`v2/${compat}`, `v2/${alt}`, compat, alt]) {
    if (existsSync(path.join(CONFIG_ROOT, rel))) return rel;
  }
  return undefined;
}

/** What `.meta` must hold: the manifest as sent plus the two server keys; v1 hydrated to its v2 equivalent. */
function expectedMeta(c: ConfigCase, sent: Manifest, added: { dex_ingest_datetime: string; upload_id: string }): Manifest {
  const m: Manifest = { ...sent, ...added };
  if (c.kind === 'v2') return sorted(m);
  const target = compatTarget(c);
  if (c.config.compat_config_filename) {
    assert.ok(target, `${c.file}: compat_config_filename ${c.config.compat_config_filename} names no v2 config`);
  }
  const out: Manifest = { ...m };
  if (target) {
    for (const f of fieldsOf(readConfig(target))) {
      const from = f.compat_field_name;
      if (from && Object.prototype.hasOwnProperty.call(m, from)) out[f.field_name] = m[from]!;
    }
  }
  out['version'] = '2.0';
  if (target) {
    const name = path.basename(target, '.json');
    const cut = name.lastIndexOf('_');
    out['data_stream_id'] = name.slice(0, cut);
    out['data_stream_route'] = name.slice(cut + 1);
  } else {
    out['data_stream_id'] = m['meta_destination_id']!;
    out['data_stream_route'] = m['meta_ext_event']!;
  }
  return sorted(out);
}

function create(base: string, m: Manifest, length = 5): Promise<Response> {
  return request({
    method: 'POST',
    url: `${base}/files/`,
    headers: { ...TR, 'Upload-Length': String(length), 'Upload-Metadata': encodeMetadata(m) },
  });
}

/** Asserts a manifest rejection and returns its upload_id. */
function assertRejected(res: Response, lines: string[]): string {
  assert.equal(res.status, 400, `expected 400, got ${res.status} ${res.body}`);
  // Media type application/json (Fastify adds its usual `; charset=utf-8` parameter, as on every JSON route).
  assert.match(String(res.headers['content-type']), /^application\/json(; ?charset=utf-8)?$/i);
  assert.equal(res.headers['location'], undefined);
  const body = JSON.parse(res.body) as { upload_id: string; validation_errors: string[] };
  assert.deepEqual(Object.keys(body), ['upload_id', 'validation_errors']);
  assert.match(body.upload_id, UUID_V4);
  assert.deepEqual(body.validation_errors, lines);
  return body.upload_id;
}

const missing = (f: string) => [FAILURE, `field ${f} was missing`];
const disallowed = (f: string, v: string) => [FAILURE, `${f} had disallowed value ${v}`];
const notFound = (key: string) => [`open ${key}: no such file or directory`, FAILURE, NOT_FOUND];

/** Creates, checks HEAD's metadata, finishes with PATCH, and returns the id and the server-added keys. */
async function uploadAndFinish(s: RunningServer, m: Manifest): Promise<{ id: string; added: { dex_ingest_datetime: string; upload_id: string } }> {
  const res = await create(s.url, m);
  assert.equal(res.status, 201, `expected 201, got ${res.status} ${res.body}`);
  const url = String(res.headers.location);
  const id = url.split('/').pop()!;
  assert.match(id, UUID_V4);

  const h = await head(url);
  assert.equal(h.status, 200);
  const pairs = decodeMetadata(h.headers['upload-metadata']);
  const clientPairs = Object.entries(m).filter(([k]) => k !== 'dex_ingest_datetime' && k !== 'upload_id');
  assert.deepEqual(pairs.slice(0, -2), clientPairs, 'HEAD echoes the client pairs in order');
  assert.deepEqual(pairs.slice(-2).map(([k]) => k), ['dex_ingest_datetime', 'upload_id']);
  const added = { dex_ingest_datetime: pairs.at(-2)![1], upload_id: pairs.at(-1)![1] };
  assert.equal(added.upload_id, id);
  assert.match(added.dex_ingest_datetime, GO_UTC_MS);

  assert.equal(existsSync(path.join(s.storeDir, `${id}.meta`)), false, '.meta is written when the upload finishes');
  const p = await patch(url, 0, 'hello');
  assert.equal(p.status, 204, `PATCH: ${p.status} ${p.body}`);
  assert.equal(p.headers['upload-offset'], '5');
  return { id, added };
}

async function readMeta(s: RunningServer, id: string): Promise<{ text: string; parsed: Manifest }> {
  const text = await readFile(path.join(s.storeDir, `${id}.meta`), 'utf8');
  return { text, parsed: JSON.parse(text) as Manifest };
}

describe('manifest validation against every shipped config', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
  });
  after(async () => {
    await s?.cleanup();
  });

  it('finds configs in both v1/ and v2/', () => {
    assert.ok(CASES.some((c) => c.kind === 'v1'));
    assert.ok(CASES.some((c) => c.kind === 'v2'));
  });

  for (const c of CASES) {
    describe(`${c.kind}/${c.file}`, () => {
      const fields = fieldsOf(c.config);

      it('accepts a fully valid manifest and stores the hydrated manifest in <id>.meta', async () => {
        const m = validManifest(c);
        const { id, added } = await uploadAndFinish(s, m);
        const expected = expectedMeta(c, m, added);
        const meta = await readMeta(s, id);
        assert.deepEqual(meta.parsed, expected);
        assert.equal(meta.text, JSON.stringify(expected), 'flat JSON, keys sorted');
        assert.equal(meta.parsed['upload_id'], id);
        assert.equal(meta.parsed['version'], '2.0');
      });

      const required = [...new Set([...fields.filter((f) => f.required).map((f) => f.field_name), ...c.lookup])];
      for (const f of required) {
        it(`rejects a manifest without required field ${f}`, async () => {
          const m = validManifest(c);
          delete m[f];
          assertRejected(await create(s.url, m), missing(f));
        });
      }

      for (const f of fields.filter((x) => !x.required && !(x.allowed_values && x.allowed_values.length > 0))) {
        it(`accepts a manifest without optional field ${f.field_name}`, async () => {
          const m = validManifest(c);
          delete m[f.field_name];
          const res = await create(s.url, m);
          assert.equal(res.status, 201, res.body);
        });
      }

      for (const f of fields.filter((x) => x.allowed_values && x.allowed_values.length > 0)) {
        const name = f.field_name;
        it(`rejects a disallowed value of ${name}`, async () => {
          const m = validManifest(c);
          const isLookup = c.lookup.includes(name);
          // A lookup field keeps naming the same (lower-cased) config when only its case changes.
          let wrong = isLookup ? m[name]!.toUpperCase() : 'NOT-AN-ALLOWED-VALUE';
          if (f.allowed_values!.includes(wrong) || (isLookup && wrong === m[name])) wrong = `${wrong}-X`;
          m[name] = wrong;
          const key =
            c.kind === 'v2'
              ? `${m['data_stream_id']}_${m['data_stream_route']}.json`.toLowerCase()
              : `v1/${m['meta_destination_id']}-${m['meta_ext_event']}.json`.toLowerCase();
          const expected = key === c.key ? disallowed(name, wrong) : notFound(key);
          assertRejected(await create(s.url, m), expected);
        });
      }

      for (const f of fields.filter((x) => FILENAME_FIELDS.includes(x.field_name) && !(x.allowed_values && x.allowed_values.length > 0))) {
        it(`rejects a / in ${f.field_name}`, async () => {
          const m = validManifest(c);
          const v = `some/dir/${m[f.field_name]}`;
          m[f.field_name] = v;
          assertRejected(await create(s.url, m), [`invalid character found in ${v} ${FAILURE}`]);
        });
      }
    });
  }

  describe('lookup and version', () => {
    const v2 = () => CASES.find((c) => c.kind === 'v2' && c.file === 'dextesting_testevent1.json') ?? CASES.find((c) => c.kind === 'v2')!;
    const v1 = () => CASES.find((c) => c.kind === 'v1' && c.file === 'ndlp-routineimmunization.json') ?? CASES.find((c) => c.kind === 'v1')!;

    it('an unknown v2 stream names the flat, lower-cased key', async () => {
      const m = { ...validManifest(v2()), data_stream_id: 'No-Such-Stream', data_stream_route: 'CSV' };
      assertRejected(await create(s.url, m), notFound('no-such-stream_csv.json'));
    });

    it('an unknown v1 destination/event names v1/<dest>-<event>.json', async () => {
      const m = { ...validManifest(v1()), meta_destination_id: 'NDLP', meta_ext_event: 'NoSuchEvent' };
      assertRejected(await create(s.url, m), notFound('v1/ndlp-nosuchevent.json'));
    });

    it('config lookup ignores the case of the stream and route', async () => {
      const c = v2();
      const m = validManifest(c);
      // Only the names are upper-cased when they have no allowed_values that would refuse it.
      const open = c.lookup.every((k) => !fieldsOf(c.config).some((f) => f.field_name === k && f.allowed_values && f.allowed_values.length > 0));
      assert.ok(open, `${c.file} restricts its stream names; pick another config for this case`);
      m['data_stream_id'] = m['data_stream_id']!.toUpperCase();
      m['data_stream_route'] = m['data_stream_route']!.toUpperCase();
      const { id, added } = await uploadAndFinish(s, m);
      const meta = await readMeta(s, id);
      assert.deepEqual(meta.parsed, sorted({ ...m, ...added }));
    });

    it('version 3.0 is rejected with the single unsupported-version line', async () => {
      const m = { ...validManifest(v2()), version: '3.0' };
      assertRejected(await create(s.url, m), ['unsupported version 3.0 validation failure']);
      const m1 = { ...validManifest(v1()), version: '3.0' };
      assertRejected(await create(s.url, m1), ['unsupported version 3.0 validation failure']);
    });

    it('without version: data_stream_id → v2, only meta_destination_id → v1 (hydrated)', async () => {
      const c2 = v2();
      const m2 = validManifest(c2);
      delete m2['version'];
      const r2 = await uploadAndFinish(s, m2);
      assert.deepEqual((await readMeta(s, r2.id)).parsed, expectedMeta(c2, m2, r2.added));

      const c1 = v1();
      const m1 = validManifest(c1);
      delete m1['version'];
      const r1 = await uploadAndFinish(s, m1);
      const meta = (await readMeta(s, r1.id)).parsed;
      assert.deepEqual(meta, expectedMeta(c1, m1, r1.added));
      assert.equal(meta['version'], '2.0');

      // Neither key: v2, so the error names data_stream_id.
      assertRejected(await create(s.url, { received_filename: 'a.csv' }), missing('data_stream_id'));
    });

    it('a / in received_filename is an invalid character', async () => {
      const m = { ...validManifest(v2()), received_filename: 'folder/file.txt' };
      assertRejected(await create(s.url, m), ['invalid character found in folder/file.txt validation failure']);
    });

    it('lists several errors at once, in config order', async () => {
      const c = CASES.find((x) => x.kind === 'v2' && x.file === 'routine-immunization_other.json');
      assert.ok(c, 'v2/routine-immunization_other.json is shipped');
      const m = validManifest(c);
      delete m['meta_username'];
      delete m['data_producer_id'];
      m['meta_ext_sourceversion'] = 'V1999-01-01';
      m['received_filename'] = 'a/b.csv';
      m['sender_id'] = 'CDC';
      assertRejected(await create(s.url, m), [
        FAILURE,
        'sender_id had disallowed value CDC',
        FAILURE,
        'field data_producer_id was missing',
        'invalid character found in a/b.csv validation failure',
        FAILURE,
        'meta_ext_sourceversion had disallowed value V1999-01-01',
        FAILURE,
        'field meta_username was missing',
      ]);
    });
  });

  describe('server-owned keys', () => {
    const clientKeys = { upload_id: 'client-chosen-id', dex_ingest_datetime: '1999-01-01T00:00:00Z' };

    it('a rejection carries a fresh server uuid, not the client upload_id, and creates nothing', async () => {
      const c = CASES.find((x) => x.kind === 'v2')!;
      const m = { ...validManifest(c), ...clientKeys, version: '3.0' };
      const a = assertRejected(await create(s.url, m), ['unsupported version 3.0 validation failure']);
      const b = assertRejected(await create(s.url, m), ['unsupported version 3.0 validation failure']);
      assert.notEqual(a, clientKeys.upload_id);
      assert.notEqual(a, b, 'each rejection has its own id');
      for (const id of [a, b]) {
        const h = await head(`${s.url}/files/${id}`);
        assert.equal(h.status, 404);
      }
      const stored = await readdir(s.storeDir);
      assert.ok(!stored.some((f) => f.startsWith(a) || f.startsWith(b)), 'no files for a rejected upload');
    });

    it('an accepted upload gets the tus id and a server timestamp, whatever the client sent', async () => {
      const c = CASES.find((x) => x.kind === 'v2' && x.file === 'dextesting_testevent1.json') ?? CASES.find((x) => x.kind === 'v2')!;
      const m = { ...validManifest(c), ...clientKeys };
      const { id, added } = await uploadAndFinish(s, m);
      assert.notEqual(added.dex_ingest_datetime, clientKeys.dex_ingest_datetime);
      const meta = (await readMeta(s, id)).parsed;
      assert.equal(meta['upload_id'], id);
      assert.equal(meta['dex_ingest_datetime'], added.dex_ingest_datetime);
      const clientOnly = { ...m } as Manifest;
      delete clientOnly['upload_id'];
      delete clientOnly['dex_ingest_datetime'];
      assert.deepEqual(meta, sorted({ ...clientOnly, ...added }));
    });
  });

  describe('path traversal in the config key', () => {
    const cases: Array<[string, Manifest]> = [
      ['v2 ../ in data_stream_id', { version: '2.0', data_stream_id: '../v1/ndlp', data_stream_route: 'routineimmunization', received_filename: 'a.csv' }],
      ['v2 ../../ to the repo root', { version: '2.0', data_stream_id: '../../package', data_stream_route: 'json', received_filename: 'a.csv' }],
      ['v2 v2/../../', { version: '2.0', data_stream_id: 'v2/../../tsconfig', data_stream_route: 'x', received_filename: 'a.csv' }],
      ['v2 absolute path', { version: '2.0', data_stream_id: '/etc/passwd', data_stream_route: 'x', received_filename: 'a.csv' }],
      ['v2 ../ in route', { version: '2.0', data_stream_id: 'dextesting', data_stream_route: '../../x', received_filename: 'a.csv' }],
      ['v1 ../ in meta_destination_id', { version: '1.0', meta_destination_id: '../../package', meta_ext_event: 'x', filename: 'a.csv' }],
    ];
    for (const [name, m] of cases) {
      it(`${name} → 400 (invalid argument or not found), never 500`, async () => {
        const key =
          m['version'] === '2.0'
            ? `${m['data_stream_id']}_${m['data_stream_route']}.json`.toLowerCase()
            : `v1/${m['meta_destination_id']}-${m['meta_ext_event']}.json`.toLowerCase();
        const res = await create(s.url, m);
        assert.equal(res.status, 400, `${res.status} ${res.body}`);
        const body = JSON.parse(res.body) as { validation_errors: string[] };
        assertRejected(res, body.validation_errors);
        const [first, ...rest] = body.validation_errors;
        assert.ok(
          first === `open ${key}: invalid argument` || first === `open ${key}: no such file or directory`,
          `unexpected first line: ${first}`,
        );
        assert.deepEqual(rest, [FAILURE, NOT_FOUND]);
      });
    }
  });
});

describe('a config folder with a file that is not valid JSON', () => {
  let s: RunningServer;
  let root: string;
  const minimal = (version: string) => JSON.stringify({ metadata_config: { version, fields: [] } });

  before(async () => {
    // <root>/configs is UPLOAD_CONFIG_PATH; <root> itself holds configs that accept anything, which must never be read.
    root = await mkdtemp(path.join(tmpdir(), 'dex-cfg-'));
    const cfg = path.join(root, 'configs');
    await mkdir(path.join(cfg, 'v1'), { recursive: true });
    await mkdir(path.join(cfg, 'v2'), { recursive: true });
    await writeFile(path.join(cfg, 'broken_json.json'), '{"metadata_config": {"version": "2.0", "fields": [');
    await writeFile(path.join(cfg, 'v1', 'broken-json.json'), '{ not json');
    await writeFile(
      path.join(cfg, 'v2', 'good_stream.json'),
      JSON.stringify({ metadata_config: { version: '2.0', fields: [{ field_name: 'received_filename', required: true, allowed_values: null }] } }),
    );
    await writeFile(path.join(root, 'secret_x.json'), minimal('2.0'));
    await writeFile(path.join(root, 'secret-x.json'), minimal('1.0'));
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true', UPLOAD_CONFIG_PATH: cfg } });
  });
  after(async () => {
    await s?.cleanup();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const good = { version: '2.0', data_stream_id: 'good', data_stream_route: 'stream', received_filename: 'a.csv' };
  const brokenV2 = { version: '2.0', data_stream_id: 'broken', data_stream_route: 'json', received_filename: 'a.csv' };
  const brokenV1 = { version: '1.0', meta_destination_id: 'broken', meta_ext_event: 'json', filename: 'a.csv' };

  function assertInternal(res: Response, key: string): void {
    assert.equal(res.status, 500, `${res.status} ${res.body}`);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.ok(res.body.startsWith('ERR_INTERNAL_SERVER_ERROR: manifest validation could not run: '), res.body);
    assert.ok(res.body.endsWith('\n'));
    assert.ok(res.body.includes(key), `the message names the config: ${res.body}`);
    assert.match(res.body, /not valid JSON/);
    assert.equal(res.headers['location'], undefined);
  }

  it('answers 500 ERR_INTERNAL_SERVER_ERROR naming the broken v2 config, and keeps serving', async () => {
    assertInternal(await create(s.url, brokenV2), 'broken_json.json');
    const ok = await create(s.url, good);
    assert.equal(ok.status, 201, ok.body);
    // A failed load is not cached as a success: still 500, and the good config still works.
    assertInternal(await create(s.url, brokenV2), 'broken_json.json');
    const ok2 = await create(s.url, good);
    assert.equal(ok2.status, 201, ok2.body);
    const h = await head(String(ok2.headers.location));
    assert.equal(h.status, 200);
  });

  it('answers 500 for a broken v1 config too', async () => {
    assertInternal(await create(s.url, brokenV1), 'v1/broken-json.json');
    const ok = await create(s.url, good);
    assert.equal(ok.status, 201, ok.body);
  });

  it('the loaded configs still validate (a missing field is a 400)', async () => {
    const m: Manifest = { ...good };
    delete m['received_filename'];
    assertRejected(await create(s.url, m), missing('received_filename'));
  });

  const outside: Array<[string, Manifest]> = [
    ['v2 ../secret', { version: '2.0', data_stream_id: '../secret', data_stream_route: 'x' }],
    ['v2 v2/../../secret', { version: '2.0', data_stream_id: 'v2/../../secret', data_stream_route: 'x' }],
    ['v1 ../../secret', { version: '1.0', meta_destination_id: '../../secret', meta_ext_event: 'x' }],
  ];
  for (const [name, m] of outside) {
    it(`does not read a config outside UPLOAD_CONFIG_PATH (${name})`, async () => {
      // The planted file would accept this manifest (no fields): a 201 would mean it was read.
      const res = await create(s.url, m);
      assert.equal(res.status, 400, `${res.status} ${res.body}`);
      const body = JSON.parse(res.body) as { validation_errors: string[] };
      assertRejected(res, body.validation_errors);
      assert.match(body.validation_errors[0]!, /^open .*: (invalid argument|no such file or directory)$/);
      assert.deepEqual(body.validation_errors.slice(1), [FAILURE, NOT_FOUND]);
    });
  }
});
