// Lifecycle hook points (issue item 6), composed in-process exactly as cmd/main.ts composes them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { HookEvent, TusHooks } from '../../internal/tus/hooks.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import type { FileStore } from '../../internal/storage/file/filestore.js';
import { b64, createUpload, head, patch, request, TR } from '../helpers/http.js';
import { MANIFEST_MODE, VALID_MANIFEST, withManifest } from '../helpers/manifest-mode.js';

interface Recorded {
  name: string;
  id: string;
  offset: number;
  size: number;
  method: string;
  metadata: Record<string, string>;
}

describe('lifecycle hooks', () => {
  let server: InProcessServer;
  let base: string;
  const events: Recorded[] = [];
  const rec = (name: string) => (ev: HookEvent) => {
    events.push({
      name,
      id: ev.upload.ID,
      offset: ev.upload.Offset,
      size: ev.upload.Size,
      method: ev.request.method,
      metadata: { ...ev.upload.MetaData },
    });
  };
  const of = (id: string) => events.filter((e) => e.id === id).map((e) => e.name);
  const waitFor = async (pred: () => boolean) => {
    for (let i = 0; i < 500 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred(), 'event did not arrive');
  };

  const hooks: TusHooks = {
    preCreate(ev) {
      rec('pre-create')(ev);
      const md = ev.upload.MetaData;
      if (md['reject'] !== undefined) return { reject: { status: 418, body: '{"nope":true}', contentType: 'application/json', headers: { 'X-Why': 'teapot' } } };
      if (md['rename'] !== undefined) return { metadata: { ...md, renamed: 'yes', added_last: 'z' } };
      return undefined;
    },
    postCreate: rec('post-create'),
    postReceive: rec('post-receive'),
    async preFinish(ev) {
      rec('pre-finish')(ev);
      if (ev.upload.MetaData['fail_finish'] !== undefined) throw new Error('refused');
    },
    postFinish: rec('post-finish'),
    preTerminate(ev) {
      rec('pre-terminate')(ev);
      if (ev.upload.MetaData['keep'] !== undefined) return { status: 400, body: 'this upload must be kept' };
      return undefined;
    },
    postTerminate: rec('post-terminate'),
  };

  before(async () => {
    // Validation off, or on in manifest mode (then every creation below carries the valid manifest).
    server = await startInProcess([hooks]);
    base = server.base;
  });
  after(async () => {
    await server.close();
  });

  it('pre-create may reject with its own status, body and headers; nothing is created', async () => {
    const res = await request({ method: 'POST', url: `${base}/files/`, headers: withManifest({ ...TR, 'Upload-Length': '5', 'Upload-Metadata': 'reject' }) });
    assert.equal(res.status, 418);
    assert.equal(res.body, '{"nope":true}');
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['x-why'], 'teapot');
    assert.equal(res.headers.location, undefined);
    assert.equal(events.filter((e) => e.name === 'post-create' && e.metadata['reject'] !== undefined).length, 0);
  });

  it('pre-create may replace the metadata; HEAD echoes the new map in its key order', async () => {
    const { url, id } = await createUpload(base, { length: 3, metadata: `rename,name ${b64('a.txt')}` });
    const h = await head(url);
    // The manifest hooks (registered first) append the two server keys; this test's hook appends its own after them.
    // In manifest mode the manifest's pairs follow the client's own.
    const echoed = String(h.headers['upload-metadata']).split(',').map((p) => p.split(' ')[0]);
    const manifestKeys = MANIFEST_MODE ? Object.keys(VALID_MANIFEST) : [];
    assert.deepEqual(echoed, ['rename', 'name', ...manifestKeys, 'dex_ingest_datetime', 'upload_id', 'renamed', 'added_last']);
    assert.ok(String(h.headers['upload-metadata']).startsWith(`rename,name ${b64('a.txt')},`));
    assert.ok(String(h.headers['upload-metadata']).endsWith(`,renamed ${b64('yes')},added_last ${b64('z')}`));
    const pre = events.find((e) => e.name === 'pre-create' && e.metadata['rename'] !== undefined)!;
    assert.match(pre.id, /^[0-9a-f-]{36}$/);
    assert.equal(pre.id, id, 'the id is known to pre-create');
  });

  it('create → receive → finish fire in order with offsets, post-finish after the response', async () => {
    const { url, id } = await createUpload(base, { length: 10, metadata: `filename ${b64('x.bin')}` });
    assert.deepEqual(of(id), ['pre-create', 'post-create']);
    assert.equal((await patch(url, 0, 'hello')).status, 204);
    assert.equal((await patch(url, 5, 'world')).status, 204);
    await waitFor(() => of(id).includes('post-finish'));
    assert.deepEqual(of(id), ['pre-create', 'post-create', 'post-receive', 'post-receive', 'pre-finish', 'post-finish']);
    const receives = events.filter((e) => e.id === id && e.name === 'post-receive').map((e) => e.offset);
    assert.deepEqual(receives, [5, 10]);
    const finish = events.find((e) => e.id === id && e.name === 'post-finish')!;
    assert.equal(finish.offset, 10);
    assert.equal(finish.size, 10);
    assert.equal(finish.method, 'PATCH');
  });

  /** A creation-with-upload written in one piece, so that its body is there with its headers (as tus clients send it). */
  async function createInOnePacket(length: number, body: string) {
    const headers = withManifest({ ...TR, 'Upload-Length': String(length), 'Content-Type': 'application/offset+octet-stream' });
    const url = new URL(base);
    const lines = Object.entries({ ...headers, Host: url.host, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' }).map(([k, v]) => `${k}: ${String(v)}`);
    const text = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(url.port), url.hostname, () => sock.write(`POST /files/ HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`));
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    const [status, ...rest] = text.split('\r\n\r\n')[0]!.split('\r\n');
    assert.match(status!, /^HTTP\/1\.1 201 /);
    const resHeaders = Object.fromEntries(rest.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const location = resHeaders['location']!;
    return { url: location, id: location.split('/').pop()!, res: { headers: resHeaders } };
  }

  it('creation-with-upload: a small body goes in with the creation, a larger one streams after it; the hooks are the same', async () => {
    // The file store writes a small body that has all arrived with the upload's files (createWithData with bytes).
    const store = server.server.core.store as FileStore;
    const withBytes: number[] = [];
    const original = store.createWithData.bind(store);
    store.createWithData = (u, data) => {
      if (data.length > 0) withBytes.push(data.length);
      return original(u, data);
    };
    try {
      const small = await createInOnePacket(10, 'hello');
      assert.equal(small.res.headers['upload-offset'], '5');
      const whole = await createInOnePacket(5, 'hello');
      assert.equal(whole.res.headers['upload-offset'], '5');
      const big = Buffer.alloc(100 * 1024, 9);
      const large = await createUpload(base, { length: 200 * 1024, body: big });
      assert.equal(large.res.headers['upload-offset'], String(big.length));
      assert.deepEqual(withBytes, [5, 5], 'the two small bodies, not the 100 KiB one');

      for (const u of [small, large]) {
        assert.equal((await head(u.url)).headers['upload-offset'], u === small ? '5' : String(big.length));
        assert.deepEqual(of(u.id), ['pre-create', 'post-create', 'post-receive']);
      }
      assert.equal(events.find((e) => e.id === small.id && e.name === 'post-receive')!.offset, 5);
      await waitFor(() => of(whole.id).includes('post-finish'));
      assert.deepEqual(of(whole.id), ['pre-create', 'post-create', 'post-receive', 'pre-finish', 'post-finish']);
      assert.equal(events.find((e) => e.id === whole.id && e.name === 'post-finish')!.method, 'POST');
      assert.equal((await patch(small.url, 5, 'world')).status, 204);
      await waitFor(() => of(small.id).includes('post-finish'));
    } finally {
      store.createWithData = original;
    }
  });

  it('an empty upload finishes at creation (pre-finish and post-finish fire)', async () => {
    const { id } = await createUpload(base, { length: 0 });
    await waitFor(() => of(id).includes('post-finish'));
    assert.deepEqual(of(id), ['pre-create', 'post-create', 'pre-finish', 'post-finish']);
  });

  it('a failing pre-finish makes the completing PATCH a 500 and no post-finish fires', async () => {
    const { url, id } = await createUpload(base, { length: 2, metadata: 'fail_finish' });
    const res = await patch(url, 0, 'ok');
    assert.equal(res.status, 500);
    assert.match(res.body, /^ERR_INTERNAL_SERVER_ERROR: /);
    assert.ok(!res.body.includes('refused'), 'no internals in the body');
    assert.ok(of(id).includes('pre-finish'));
    assert.ok(!of(id).includes('post-finish'));
  });

  it('pre-terminate may refuse (400 ERR_UPLOAD_TERMINATION_REJECTED); the upload stays', async () => {
    const { url, id } = await createUpload(base, { length: 4, metadata: 'keep' });
    const res = await request({ method: 'DELETE', url, headers: TR });
    assert.equal(res.status, 400);
    assert.match(res.body, /^ERR_UPLOAD_TERMINATION_REJECTED: /);
    assert.equal((await head(url)).status, 200);
    assert.ok(!of(id).includes('post-terminate'));
  });

  it('termination fires pre-terminate then post-terminate', async () => {
    const { url, id } = await createUpload(base, { length: 4 });
    assert.equal((await request({ method: 'DELETE', url, headers: TR })).status, 204);
    await waitFor(() => of(id).includes('post-terminate'));
    assert.deepEqual(of(id).slice(-2), ['pre-terminate', 'post-terminate']);
    assert.equal((await head(url)).status, 404);
  });

  it('partial uploads are flagged to hooks; the final fires finish with its full size', async () => {
    const a = await createUpload(base, { length: 2, headers: { 'Upload-Concat': 'partial' } });
    const b = await createUpload(base, { length: 3, headers: { 'Upload-Concat': 'partial' } });
    await patch(a.url, 0, 'ab');
    await patch(b.url, 0, 'cde');
    const res = await request({ method: 'POST', url: `${base}/files/`, headers: withManifest({ ...TR, 'Upload-Concat': `final;${a.url} ${b.url}` }) });
    assert.equal(res.status, 201);
    const finalId = String(res.headers.location).split('/').pop()!;
    await waitFor(() => of(finalId).includes('post-finish'));
    const fin = events.find((e) => e.id === finalId && e.name === 'post-finish')!;
    assert.equal(fin.size, 5);
    assert.equal(fin.offset, 5);
  });
});

// A blocking pre-finish hook holds the upload's lock without a body to interrupt: the only way, over HTTP, to keep a
// lock past a newer request's TUS_LOCK_TIMEOUT (every other holder honours release requests).
describe('lock timeouts (N4, N5) with a pre-finish hook that holds the lock', () => {
  let server: InProcessServer;
  let base: string;
  let entered: () => void = () => {};
  let release: () => void = () => {};
  const holding: TusHooks = {
    async preFinish(ev) {
      if (ev.upload.MetaData['hold'] === undefined) return;
      await new Promise<void>((resolve) => {
        release = resolve;
        entered();
      });
    },
  };
  const hookEntered = () => new Promise<void>((resolve) => (entered = resolve));

  before(async () => {
    server = await startInProcess([holding], { TUS_LOCK_TIMEOUT: '500' });
    base = server.base;
  });
  after(async () => {
    release();
    await server.close();
  });

  it('N4 a request that cannot get the lock within TUS_LOCK_TIMEOUT answers 500 ERR_LOCK_TIMEOUT', async () => {
    const { url } = await createUpload(base, { length: 4, metadata: 'hold' });
    const inHook = hookEntered();
    const finishing = patch(url, 0, 'data');
    await inHook;
    const del = await request({ method: 'DELETE', url, headers: TR });
    assert.equal(del.status, 500);
    assert.equal(del.body, 'ERR_LOCK_TIMEOUT: failed to acquire lock before timeout\n');
    const h = await head(url);
    assert.equal(h.status, 500);
    assert.equal(h.body, '', 'HEAD errors have no body');
    release();
    const done = await finishing;
    assert.equal(done.status, 204);
    assert.equal(done.headers['upload-offset'], '4');
    assert.equal((await head(url)).status, 200, 'the lock is free again');
  });

  it('N5 a waiting request whose client goes away stops waiting; the lock stays usable', async () => {
    const { url } = await createUpload(base, { length: 4, metadata: 'hold' });
    const inHook = hookEntered();
    const finishing = patch(url, 0, 'data');
    await inHook;
    const gone = request({ method: 'HEAD', url, headers: TR, timeoutMs: 100 });
    await assert.rejects(gone, /timed out/);
    release();
    assert.equal((await finishing).status, 204);
    const h = await head(url);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '4');
  });
});
