// The tus protocol with manifest validation ON (the default): the same flows as the conformance suites, each
// creation carrying a valid dextesting manifest; only the client's own metadata pairs are compared.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import { startServer, type RunningServer } from '../helpers/server.js';
import { b64, createUpload, head, patch, request, TR } from '../helpers/http.js';
import { VALID_MANIFEST } from '../helpers/manifest-mode.js';

const MANIFEST = VALID_MANIFEST;
const encode = (m: Record<string, string>) => Object.entries(m).map(([k, v]) => `${k} ${b64(v)}`).join(',');
const VALID = encode(MANIFEST);
const SERVER_KEYS = new Set(['dex_ingest_datetime', 'upload_id']);
const clientPairs = (h: string | string[] | undefined) =>
  String(h).split(',').filter((p) => !SERVER_KEYS.has(p.split(' ')[0]!)).join(',');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('tus protocol with manifest validation on', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true', TUS_MAX_SIZE: '1048576' } });
  });
  after(async () => {
    await s.cleanup();
  });
  const stored = (id: string) => readFile(path.join(s.storeDir, id));

  it('a creation without a manifest is refused with the DEX JSON body; nothing is stored', async () => {
    const res = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Length': '5' } });
    assert.equal(res.status, 400);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['tus-resumable'], '1.0.0');
    const body = JSON.parse(res.body) as { upload_id: string; validation_errors: string[] };
    assert.match(body.upload_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(body.validation_errors, ['validation failure', 'field data_stream_id was missing']);
    await assert.rejects(stat(path.join(s.storeDir, body.upload_id)));
  });

  it('header errors are still answered before the manifest is looked at', async () => {
    const noLength = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Metadata': VALID } });
    assert.equal(noLength.status, 400);
    assert.match(noLength.body, /^ERR_INVALID_UPLOAD_LENGTH: /);
    const badMeta = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Length': '5', 'Upload-Metadata': 'a b c' } });
    assert.equal(badMeta.status, 400);
    assert.match(badMeta.body, /^ERR_INVALID_METADATA: /);
    const noVersion = await request({ method: 'POST', url: `${s.url}/files/`, headers: { 'Upload-Length': '5', 'Upload-Metadata': VALID } });
    assert.equal(noVersion.status, 412);
    const tooBig = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Length': '2000000', 'Upload-Metadata': VALID } });
    assert.equal(tooBig.status, 413);
  });

  it('create, PATCH in pieces, HEAD: the client pairs are echoed in order, then the two server keys', async () => {
    const metadata = `${VALID},is_confidential,filename ${b64('a b.csv')}`;
    const { url, id } = await createUpload(s.url, { length: 11, metadata });
    const h0 = await head(url);
    assert.equal(clientPairs(h0.headers['upload-metadata']), metadata);
    const keys = String(h0.headers['upload-metadata']).split(',').map((p) => p.split(' ')[0]);
    assert.deepEqual(keys.slice(-2), ['dex_ingest_datetime', 'upload_id']);
    assert.equal((await patch(url, 0, 'hello')).status, 204);
    assert.equal((await patch(url, 0, 'again')).status, 409);
    const last = await patch(url, 5, ' world');
    assert.equal(last.status, 204);
    assert.equal(last.headers['upload-offset'], '11');
    assert.equal((await stored(id)).toString(), 'hello world');
    const meta = JSON.parse(await readFile(path.join(s.storeDir, `${id}.meta`), 'utf8')) as Record<string, string>;
    assert.equal(meta['upload_id'], id);
    assert.deepEqual(Object.keys(meta), [...Object.keys(meta)].sort());
  });

  it('creation-with-upload of the whole body finishes at once', async () => {
    const body = randomBytes(4096);
    const { id, res } = await createUpload(s.url, { length: body.length, metadata: VALID, body });
    assert.equal(res.headers['upload-offset'], '4096');
    assert.ok((await stored(id)).equals(body));
    await stat(path.join(s.storeDir, `${id}.meta`));
  });

  it('a body beyond Upload-Length is 413, a wrong Content-Type 415, and a checksum mismatch 460', async () => {
    const { url, id } = await createUpload(s.url, { length: 4, metadata: VALID });
    assert.equal((await patch(url, 0, 'toolong')).status, 413);
    const ct = await request({ method: 'PATCH', url, headers: { ...TR, 'Upload-Offset': '0', 'Content-Type': 'text/plain' }, body: 'abcd' });
    assert.equal(ct.status, 415);
    const bad = await patch(url, 0, 'abcd', { 'Upload-Checksum': `sha1 ${createHash('sha1').update('dcba').digest('base64')}` });
    assert.equal(bad.status, 460);
    const good = await patch(url, 0, 'abcd', { 'Upload-Checksum': `sha256 ${createHash('sha256').update('abcd').digest('base64')}` });
    assert.equal(good.status, 204);
    assert.equal((await stored(id)).toString(), 'abcd');
  });

  it('deferred length with a manifest: the length is declared by a later PATCH', async () => {
    const { url, id } = await createUpload(s.url, { defer: true, metadata: VALID });
    assert.equal((await head(url)).headers['upload-defer-length'], '1');
    const p = await patch(url, 0, 'abc', { 'Upload-Length': '3' });
    assert.equal(p.status, 204);
    const h = await head(url);
    assert.equal(h.headers['upload-length'], '3');
    assert.equal(h.headers['upload-offset'], '3');
    await stat(path.join(s.storeDir, `${id}.meta`));
  });

  it('termination removes data, info and manifest', async () => {
    const { url, id } = await createUpload(s.url, { length: 2, metadata: VALID, body: 'ok' });
    await stat(path.join(s.storeDir, `${id}.meta`));
    assert.equal((await request({ method: 'DELETE', url, headers: TR })).status, 204);
    assert.equal((await head(url)).status, 404);
    for (const suffix of ['', '.info', '.meta']) await assert.rejects(stat(path.join(s.storeDir, id + suffix)));
  });

  it('partial uploads need no manifest; the final one is validated', async () => {
    const a = await createUpload(s.url, { length: 3, headers: { 'Upload-Concat': 'partial' }, body: 'abc' });
    const b = await createUpload(s.url, { length: 3, headers: { 'Upload-Concat': 'partial' }, body: 'def' });
    const noManifest = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Concat': `final;${a.url} ${b.url}` } });
    assert.equal(noManifest.status, 400);
    assert.ok(Array.isArray((JSON.parse(noManifest.body) as { validation_errors: unknown }).validation_errors));
    const ok = await request({ method: 'POST', url: `${s.url}/files/`, headers: { ...TR, 'Upload-Concat': `final;${a.url} ${b.url}`, 'Upload-Metadata': VALID } });
    assert.equal(ok.status, 201);
    const finalId = String(ok.headers.location).split('/').pop()!;
    assert.equal((await stored(finalId)).toString(), 'abcdef');
    await stat(path.join(s.storeDir, `${finalId}.meta`));
    await assert.rejects(stat(path.join(s.storeDir, `${a.id}.meta`)), 'a partial gets no manifest');
  });

  it('tus-js-client uploads (1 MiB chunks, and parallelUploads: 2) with a manifest', async () => {
    const data = randomBytes(700_000);
    for (const extra of [{ chunkSize: 256 * 1024 }, { parallelUploads: 2 }]) {
      const url = await new Promise<string>((resolve, reject) => {
        const up = new tus.Upload(data, {
          endpoint: `${s.url}/files/`,
          metadata: MANIFEST,
          retryDelays: [],
          ...extra,
          onError: reject,
          onSuccess: () => resolve(up.url!),
        });
        up.start();
      });
      const id = url.split('/').pop()!;
      assert.equal(sha256(await stored(id)), sha256(data));
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], String(data.length));
      const meta = JSON.parse(await readFile(path.join(s.storeDir, `${id}.meta`), 'utf8')) as Record<string, string>;
      assert.equal(meta['data_stream_id'], 'dextesting');
      assert.equal(meta['upload_id'], id);
    }
  });

  it('a manifest the client cannot fix is refused, and tus-js-client sees the 400 and its body', async () => {
    const err = await new Promise<tus.DetailedError>((resolve, reject) => {
      const up = new tus.Upload(Buffer.from('x'), {
        endpoint: `${s.url}/files/`,
        metadata: { ...MANIFEST, data_stream_route: 'nope' },
        retryDelays: [],
        onError: (e) => resolve(e as tus.DetailedError),
        onSuccess: () => reject(new Error('should have been refused')),
      });
      up.start();
    });
    assert.equal(err.originalResponse?.getStatus(), 400);
    const body = JSON.parse(err.originalResponse!.getBody() ?? '') as { validation_errors: string[] };
    assert.deepEqual(body.validation_errors, [
      'open dextesting_nope.json: no such file or directory',
      'validation failure',
      'manifest validation config file not found',
    ]);
  });
});
