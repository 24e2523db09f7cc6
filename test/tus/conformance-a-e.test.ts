// Conformance list (spec/tus-protocol.md §2), groups A (discovery), B (version negotiation), C (creation),
// D (creation-with-upload) and E (deferred length), against real servers over raw HTTP.
// Items that decisions.md declares not applicable assert our documented behaviour instead; hook-driven items are
// checked through their observable protocol effects.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { startServer, type RunningServer } from '../helpers/server.js';
import { OOS, TR, b64, createUpload, head, patch, request, type Response } from '../helpers/http.js';
import { MANIFEST_MODE, MANIFEST_PAIRS, clientPairs, withManifest } from '../helpers/manifest-mode.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,termination,concatenation,checksum';
const KIB512 = 512 * 1024;
const MIB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// Raw-socket requests: exact bytes on the wire, and robust when the server answers before reading the whole body
// (the server may close the connection while we are still writing: write errors are ignored, the response counts).

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

function parseRaw(buf: Buffer): RawResponse {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`incomplete response: ${JSON.stringify(buf.toString())}`);
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let body = buf.subarray(end + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const out: Buffer[] = [];
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const size = parseInt(rest.subarray(0, nl).toString(), 16);
      if (!size) break;
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    body = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) {
    body = body.subarray(0, Number(headers['content-length']));
  }
  return { status, headers, body: body.toString(), raw: buf.toString('latin1') };
}

interface RawConn {
  write(data: string | Buffer): void;
  response: Promise<RawResponse>;
  destroy(): void;
}

/** Opens a connection and sends the request head; the response is collected until the server closes. */
function openRaw(port: number, headLines: string[], timeoutMs = 30_000): RawConn {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {
    /* EPIPE / ECONNRESET after the server answered early: the response is what counts */
  });
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const response = new Promise<RawResponse>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw request timed out: ${headLines[0]}\n${Buffer.concat(chunks).toString()}`));
    }, timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseRaw(Buffer.concat(chunks)));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
  socket.write(`${headLines.join('\r\n')}\r\n\r\n`);
  return {
    write: (data) => {
      if (!socket.destroyed) socket.write(data);
    },
    response,
    destroy: () => socket.destroy(),
  };
}

/** One request with `Connection: close`; the body goes in 64 KiB pieces, chunk-encoded when `chunked`. */
async function rawRequest(port: number, headLines: string[], body?: Buffer, chunked = false): Promise<RawResponse> {
  const lines = [...headLines, 'Connection: close'];
  if (body && chunked) lines.push('Transfer-Encoding: chunked');
  else if (body && !lines.some((l) => /^content-length:/i.test(l))) lines.push(`Content-Length: ${body.length}`);
  const conn = openRaw(port, lines);
  if (body) {
    for (let i = 0; i < body.length; i += 64 * 1024) {
      const piece = body.subarray(i, i + 64 * 1024);
      conn.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece);
    }
    if (chunked) conn.write('0\r\n\r\n');
  }
  return conn.response;
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

function assertError(res: Response | RawResponse, status: number, code: string, label = ''): void {
  assert.equal(res.status, status, `${label} expected ${status} ${code}, got ${res.status}: ${res.body}`);
  assert.match(res.body, new RegExp(`^${code}: \\S.*\\n$`));
  assert.match(String(res.headers['content-type']), /^text\/plain; charset=utf-8$/i);
  assert.equal(res.headers['tus-resumable'], '1.0.0');
}

/** What the store holds (whichever backend the server uses: test/helpers/backend.ts). */
const listStore = (s: RunningServer) => s.store.names();
const readInfo = (s: RunningServer, id: string) => s.store.readInfo(id);
const stored = (s: RunningServer, id: string) => s.store.read(id);

/** The upload is finished at `size`: HEAD shows offset = length = size, and one more byte is refused with 413. */
async function assertFinished(url: string, size: number): Promise<void> {
  const h = await head(url);
  assert.equal(h.status, 200);
  assert.equal(h.headers['upload-offset'], String(size));
  assert.equal(h.headers['upload-length'], String(size));
  assert.equal(h.headers['upload-defer-length'], undefined);
  const more = await patch(url, size, 'x');
  assertError(more, 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
  const again = await head(url);
  assert.equal(again.headers['upload-offset'], String(size));
}

/** A creation POST; in manifest mode it carries the valid manifest after the client's pairs (not on partials). */
const post = (s: RunningServer, headers: Record<string, string>, body?: string | Buffer) =>
  request({ method: 'POST', url: `${s.url}/files/`, headers: withManifest(headers), body });

/** The manifest as a raw header line for raw-socket creation POSTs (none in plain mode). */
const manifestLine = (): string[] => (MANIFEST_MODE ? [`Upload-Metadata: ${MANIFEST_PAIRS}`] : []);

// ---------------------------------------------------------------------------------------------------------------

describe('tus conformance A–E', () => {
  let def: RunningServer; // defaults: no max size, no expiration, download disabled
  let max400: RunningServer; // TUS_MAX_SIZE=400
  let max1m: RunningServer; // TUS_MAX_SIZE=1 MiB, download enabled
  let exp: RunningServer; // TUS_UPLOAD_EXPIRATION=3600

  before(async () => {
    [def, max400, max1m, exp] = await Promise.all([
      startServer(),
      startServer({ env: { TUS_MAX_SIZE: '400' } }),
      startServer({ env: { TUS_MAX_SIZE: String(MIB), TUS_DISABLE_DOWNLOAD: 'false' } }),
      startServer({ env: { TUS_UPLOAD_EXPIRATION: '3600' } }),
    ]);
  });
  after(async () => {
    await Promise.all([def, max400, max1m, exp].filter((s) => s !== undefined).map((s) => s.cleanup()));
  });

  describe('A. Discovery / OPTIONS', () => {
    it('A1 OPTIONS advertises version, extensions and max size', async () => {
      const res = await request({ method: 'OPTIONS', url: `${max400.url}/files/` });
      assert.equal(res.status, 200);
      assert.equal(res.headers['tus-resumable'], '1.0.0');
      assert.equal(res.headers['tus-version'], '1.0.0');
      assert.equal(res.headers['tus-max-size'], '400');
      const ext = String(res.headers['tus-extension']).split(',');
      for (const e of ['creation', 'creation-with-upload', 'termination', 'concatenation', 'creation-defer-length', 'checksum']) {
        assert.ok(ext.includes(e), `Tus-Extension lacks ${e}: ${res.headers['tus-extension']}`);
      }
      assert.equal(res.headers['tus-checksum-algorithm'], 'sha1,md5,sha256,sha512,crc32');
      // The same discovery answer without the trailing slash of the base path.
      const noSlash = await request({ method: 'OPTIONS', url: `${max400.url}/files` });
      assert.equal(noSlash.status, 200);
      assert.equal(noSlash.headers['tus-max-size'], '400');
    });

    it('A2 Tus-Extension is exactly the documented list (termination and concatenation always on)', async () => {
      const plain = await request({ method: 'OPTIONS', url: `${def.url}/files/` });
      assert.equal(plain.status, 200);
      assert.equal(plain.headers['tus-extension'], EXTENSIONS);
      const withExp = await request({ method: 'OPTIONS', url: `${exp.url}/files/` });
      assert.equal(withExp.headers['tus-extension'], `${EXTENSIONS},expiration`);
      for (const res of [plain, withExp]) {
        const ext = String(res.headers['tus-extension']).split(',');
        assert.ok(ext.includes('termination'));
        assert.ok(ext.includes('concatenation'));
        assert.ok(!ext.includes('concatenation-unfinished'));
      }
      // Both extensions are really served: a partial + final concatenation and a DELETE work.
      const a = await createUpload(def.url, { length: 3, headers: { 'Upload-Concat': 'partial' }, body: 'abc' });
      const fin = await post(def, { ...TR, 'Upload-Concat': `final;${a.url}` });
      assert.equal(fin.status, 201);
      const del = await request({ method: 'DELETE', url: a.url, headers: TR });
      assert.equal(del.status, 204);
    });

    it('A3 no Tus-Max-Size header without a configured maximum', async () => {
      const res = await request({ method: 'OPTIONS', url: `${def.url}/files/` });
      assert.equal(res.status, 200);
      assert.equal(res.headers['tus-max-size'], undefined);
      assert.equal(res.headers['tus-version'], '1.0.0');
    });

    it('A4 OPTIONS with a bogus or absent Tus-Resumable is never rejected', async () => {
      const { url } = await createUpload(def.url, { length: 1 });
      for (const target of [`${def.url}/files/`, url]) {
        for (const headers of [{}, { 'Tus-Resumable': 'foo' }, { 'Tus-Resumable': '0.2.2' }, TR]) {
          const res = await request({ method: 'OPTIONS', url: target, headers });
          assert.equal(res.status, 200, `${target} ${JSON.stringify(headers)}`);
          assert.equal(res.headers['tus-version'], '1.0.0');
          assert.equal(res.headers['tus-extension'], EXTENSIONS);
        }
      }
    });

    it('A5 OPTIONS carries the CORS allow lists and max age', async () => {
      for (const headers of [{}, { Origin: 'https://tus.io', 'Access-Control-Request-Method': 'POST' }]) {
        const res = await request({ method: 'OPTIONS', url: `${def.url}/files/`, headers });
        assert.equal(res.status, 200);
        assert.equal(res.headers['access-control-allow-methods'], 'POST, HEAD, PATCH, OPTIONS, GET, DELETE');
        assert.equal(
          res.headers['access-control-allow-headers'],
          'Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum',
        );
        assert.equal(res.headers['access-control-max-age'], '86400');
      }
      const withOrigin = await request({ method: 'OPTIONS', url: `${def.url}/files/`, headers: { Origin: 'https://tus.io' } });
      assert.equal(withOrigin.headers['access-control-allow-origin'], 'https://tus.io');
      assert.equal(withOrigin.headers['access-control-allow-credentials'], undefined);
    });

    it('A6 OPTIONS body is empty', async () => {
      const res = await rawRequest(def.port, ['OPTIONS /files/ HTTP/1.1', `Host: 127.0.0.1:${def.port}`]);
      assert.equal(res.status, 200);
      assert.equal(res.body, '');
      assert.ok(res.headers['content-length'] === '0' || res.headers['content-length'] === undefined);
      assert.equal(res.headers['transfer-encoding'], undefined);
      const viaHttp = await request({ method: 'OPTIONS', url: `${max400.url}/files/` });
      assert.equal(viaHttp.body, '');
    });
  });

  describe('B. Version negotiation / middleware', () => {
    it('B1 POST with Tus-Resumable: foo is 412 with Tus-Version', async () => {
      const before = await listStore(def);
      const res = await post(def, { 'Tus-Resumable': 'foo', 'Upload-Length': '300' });
      assertError(res, 412, 'ERR_UNSUPPORTED_VERSION');
      assert.equal(res.headers['tus-version'], '1.0.0');
      assert.equal(res.headers.location, undefined);
      assert.deepEqual(await listStore(def), before);
    });

    it('B2 POST without Tus-Resumable is 412', async () => {
      const before = await listStore(def);
      const res = await post(def, { 'Upload-Length': '300' });
      assertError(res, 412, 'ERR_UNSUPPORTED_VERSION');
      assert.equal(res.headers['tus-version'], '1.0.0');
      assert.deepEqual(await listStore(def), before);
      // Also on PATCH and DELETE of an existing upload, which stays untouched.
      const { url, id } = await createUpload(def.url, { length: 5 });
      const p = await request({ method: 'PATCH', url, headers: { ...OOS, 'Upload-Offset': '0' }, body: 'hello' });
      assertError(p, 412, 'ERR_UNSUPPORTED_VERSION');
      const d = await request({ method: 'DELETE', url, headers: {} });
      assertError(d, 412, 'ERR_UNSUPPORTED_VERSION');
      assert.equal((await head(url)).headers['upload-offset'], '0');
      assert.equal((await stored(def, id)).length, 0);
    });

    it('B3 every non-OPTIONS response carries Tus-Resumable: 1.0.0', async () => {
      const missing = `${def.url}/files/00000000-0000-4000-8000-000000000000`;
      const { url } = await createUpload(def.url, { length: 5 });
      const responses: Array<[string, Response]> = [
        ['POST 201', await post(def, { ...TR, 'Upload-Length': '3' })],
        ['PATCH 204', await patch(url, 0, 'he')],
        ['PATCH 409', await patch(url, 0, 'he')],
        ['PATCH 415', await request({ method: 'PATCH', url, headers: { ...TR, 'Upload-Offset': '2' }, body: 'x' })],
        ['PATCH 413', await patch(url, 2, 'llo world')],
        ['HEAD 200', await head(url)],
        ['HEAD 404', await head(missing)],
        ['PATCH 404', await patch(missing, 0, 'x')],
        ['DELETE 404', await request({ method: 'DELETE', url: missing, headers: TR })],
        ['GET 405', await request({ method: 'GET', url })],
        ['PUT 405', await request({ method: 'PUT', url: `${def.url}/files/`, headers: TR })],
        ['POST 400', await post(def, TR)],
        ['POST 412', await post(def, { 'Upload-Length': '1' })],
        ['HEAD 404 bad id', await head(`${def.url}/files/not-an-id`)],
        ['DELETE 204', await request({ method: 'DELETE', url, headers: TR })],
        ['HEAD 404 deleted', await head(url)],
      ];
      const statuses = responses.map(([name, r]) => `${name.split(' ')[0]} ${r.status}`);
      assert.deepEqual(statuses, [
        'POST 201', 'PATCH 204', 'PATCH 409', 'PATCH 415', 'PATCH 413', 'HEAD 200', 'HEAD 404', 'PATCH 404',
        'DELETE 404', 'GET 405', 'PUT 405', 'POST 400', 'POST 412', 'HEAD 404', 'DELETE 204', 'HEAD 404',
      ]);
      for (const [name, r] of responses) assert.equal(r.headers['tus-resumable'], '1.0.0', name);
    });

    it('B4 X-HTTP-Method-Override: PATCH on a POST appends to the upload', async () => {
      const { url, id } = await createUpload(def.url, { length: 10 });
      assert.equal((await patch(url, 0, 'hello')).status, 204);
      const res = await request({
        method: 'POST',
        url,
        headers: { ...TR, ...OOS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '5' },
        body: 'world',
      });
      assert.equal(res.status, 204, res.body);
      assert.equal(res.headers['upload-offset'], '10');
      assert.equal(res.headers.location, undefined);
      assert.equal((await stored(def, id)).toString(), 'helloworld');
      await assertFinished(url, 10);
    });

    it('B5 GET is never version-checked; HEAD without Tus-Resumable is accepted', async () => {
      const { url } = await createUpload(def.url, { length: 5, body: 'hello' });
      // Download disabled: 405, never 412, whatever Tus-Resumable says.
      for (const headers of [{}, { 'Tus-Resumable': 'foo' }]) {
        const g = await request({ method: 'GET', url, headers });
        assert.equal(g.status, 405, JSON.stringify(headers));
      }
      const h = await head(url, {});
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], '5');
      // Download enabled: the bytes, without and with a bogus Tus-Resumable.
      const up = await createUpload(max1m.url, { length: 5, body: 'hello' });
      for (const headers of [{}, { 'Tus-Resumable': 'foo' }]) {
        const g = await request({ method: 'GET', url: up.url, headers });
        assert.equal(g.status, 200, JSON.stringify(headers));
        assert.equal(g.body, 'hello');
      }
    });

    it('B6 method not allowed: 405 with Allow on upload URL and base path', async () => {
      const { url } = await createUpload(def.url, { length: 5 });
      for (const method of ['PUT', 'GET']) {
        const r = await request({ method, url, headers: TR });
        assertError(r, 405, 'ERR_METHOD_NOT_ALLOWED');
        assert.equal(r.headers.allow, 'HEAD, PATCH, DELETE', method);
      }
      for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
        for (const base of [`${def.url}/files/`, `${def.url}/files`]) {
          const r = await request({ method, url: base, headers: TR });
          assertError(r, 405, 'ERR_METHOD_NOT_ALLOWED');
          assert.equal(r.headers.allow, 'POST', `${method} ${base}`);
        }
      }
      // A method the router does not know at all.
      const propfind = await request({ method: 'PROPFIND', url, headers: TR });
      assertError(propfind, 405, 'ERR_METHOD_NOT_ALLOWED');
      assert.equal(propfind.headers.allow, 'HEAD, PATCH, DELETE');
      // Download enabled: GET joins the list (tusd's `GET, HEAD, PATCH, DELETE`).
      const up = await createUpload(max1m.url, { length: 5 });
      const put = await request({ method: 'PUT', url: up.url, headers: TR });
      assertError(put, 405, 'ERR_METHOD_NOT_ALLOWED');
      assert.equal(put.headers.allow, 'GET, HEAD, PATCH, DELETE');
    });
  });

  describe('C. Creation (POST)', () => {
    it('C1 POST creates the upload with its metadata and an absolute Location', async () => {
      const res = await post(def, {
        ...TR,
        Host: 'tus.io',
        'Upload-Length': '300',
        'Upload-Metadata': 'foo aGVsbG8=, bar d29ybGQ=, empty',
      });
      assert.equal(res.status, 201, res.body);
      const location = String(res.headers.location);
      const m = /^http:\/\/tus\.io\/files\/([^/]+)$/.exec(location);
      assert.ok(m, location);
      const id = m[1]!;
      assert.match(id, UUID_V4);
      assert.equal(res.headers['upload-offset'], undefined);
      // Stored metadata: the client's pairs (the server may add its own keys).
      const info = await readInfo(def, id);
      assert.equal(info.ID, id);
      assert.equal(info.Size, 300);
      assert.equal(info.SizeIsDeferred, false);
      assert.equal(info.MetaData.foo, 'hello');
      assert.equal(info.MetaData.bar, 'world');
      assert.equal(info.MetaData.empty, '');
      // Created (the post-create effect): size 300, offset 0, empty data file.
      const h = await head(`${def.url}/files/${id}`);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], '0');
      assert.equal(h.headers['upload-length'], '300');
      // The client's pairs are echoed in order (server-added and manifest-mode pairs aside).
      assert.equal(clientPairs(h.headers['upload-metadata']), 'foo aGVsbG8=,bar d29ybGQ=,empty', String(h.headers['upload-metadata']));
      assert.equal((await stored(def, id)).length, 0);
    });

    it('C2 Location is absolute, built from the Host header', async () => {
      for (const host of ['buy.art', 'upload.example.tld:8443', `127.0.0.1:${def.port}`]) {
        const res = await post(def, { ...TR, Host: host, 'Upload-Length': '1' });
        assert.equal(res.status, 201);
        assert.match(String(res.headers.location), new RegExp(`^http://${host.replace(/\./g, '\\.')}/files/[0-9a-f-]{36}$`));
      }
      // Forwarding headers are ignored by default.
      const fwd = await post(def, { ...TR, Host: 'buy.art', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https', 'Upload-Length': '1' });
      assert.match(String(fwd.headers.location), /^http:\/\/buy\.art\/files\/[0-9a-f-]{36}$/);
      // The Location really names the upload.
      const { url } = await createUpload(def.url, { length: 1 });
      assert.ok(url.startsWith(`${def.url}/files/`));
      assert.equal((await head(url)).status, 200);
    });

    it('C3 Upload-Length: 0 creates an upload that is finished at once', async () => {
      const res = await post(def, { ...TR, 'Upload-Length': '0' });
      assert.equal(res.status, 201);
      const url = String(res.headers.location);
      const id = url.split('/').pop()!;
      assert.match(id, UUID_V4);
      assert.equal((await stored(def, id)).length, 0);
      const empty = await patch(url, 0, '');
      assert.equal(empty.status, 204);
      assert.equal(empty.headers['upload-offset'], '0');
      await assertFinished(url, 0);
      // Finished uploads do not expire: no Upload-Expires even with expiration on.
      const e = await post(exp, { ...TR, 'Upload-Length': '0' });
      assert.equal(e.status, 201);
      assert.equal(e.headers['upload-expires'], undefined);
    });

    it('C4 Upload-Length above the maximum size is 413', async () => {
      const before = await listStore(max400);
      assertError(await post(max400, { ...TR, 'Upload-Length': '500' }), 413, 'ERR_MAX_SIZE_EXCEEDED');
      assertError(await post(max400, { ...TR, 'Upload-Length': '401' }), 413, 'ERR_MAX_SIZE_EXCEEDED');
      assert.deepEqual(await listStore(max400), before);
      assert.equal((await post(max400, { ...TR, 'Upload-Length': '400' })).status, 201);
      const before1m = await listStore(max1m);
      const big = await post(max1m, { ...TR, 'Upload-Length': '2097152' });
      assertError(big, 413, 'ERR_MAX_SIZE_EXCEEDED');
      assert.equal(big.headers.location, undefined);
      assert.deepEqual(await listStore(max1m), before1m);
    });

    it('C5 negative or malformed Upload-Length is 400', async () => {
      const before = await listStore(def);
      for (const v of ['-5', '-3', '-0', '+5', '0100', '1.3', '1e3', 'abc', '99999999999999999999']) {
        assertError(await post(def, { ...TR, 'Upload-Length': v }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      }
      assert.deepEqual(await listStore(def), before);
    });

    it('C6 Upload-Length together with Upload-Defer-Length is 400', async () => {
      const before = await listStore(def);
      const res = await post(def, { ...TR, 'Upload-Length': '10', 'Upload-Defer-Length': '1' });
      assertError(res, 400, 'ERR_AMBIGUOUS_UPLOAD_LENGTH');
      assert.deepEqual(await listStore(def), before);
    });

    it('C7 neither Upload-Length nor Upload-Defer-Length is 400', async () => {
      const before = await listStore(def);
      assertError(await post(def, TR), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      assertError(await post(def, { ...TR, 'Upload-Metadata': `filename ${b64('a.txt')}` }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      assert.deepEqual(await listStore(def), before);
    });

    it('C8 Upload-Defer-Length other than 1 is 400', async () => {
      const before = await listStore(def);
      for (const v of ['bad', '0', '+1', '2', '01', '1.0', 'true']) {
        assertError(await post(def, { ...TR, 'Upload-Defer-Length': v }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      }
      // Inner whitespace is part of the value.
      const inner = await rawRequest(def.port, ['POST /files/ HTTP/1.1', 'Host: x', 'Tus-Resumable: 1.0.0', 'Upload-Defer-Length: 1 1', ...manifestLine()]);
      assertError(inner, 400, 'ERR_INVALID_UPLOAD_LENGTH');
      assert.deepEqual(await listStore(def), before);
      // ` 1 `: whitespace around a field value is not part of it in HTTP (RFC 9110 §5.5), so this IS `1`.
      const ows = await rawRequest(def.port, ['POST /files/ HTTP/1.1', 'Host: x', 'Tus-Resumable: 1.0.0', 'Upload-Defer-Length:  1 ', ...manifestLine()]);
      assert.equal(ows.status, 201);
      assert.match(ows.headers.location!, /^http:\/\/x\/files\/[0-9a-f-]{36}$/);
    });

    it('C9 metadata: malformed headers are 400 ERR_INVALID_METADATA, lenient forms accepted', async () => {
      const before = await listStore(def);
      const bad = [
        'foo YmFy,foo YmF6', // duplicate keys
        'foo YmFy,,bar YmF6', // empty pair = empty key
        ',foo YmFy', // leading empty pair
        'foo YmFy,', // trailing empty pair
        'foo YmFy, ,bar YmF6', // a pair of only whitespace
        'hah INVALID', // not base64 (C1's pair, refused as a whole)
        'foo !!!!',
        'foo YmFy=',
        'foo Y',
        'foo YmFy YmF6', // more than one space
        'fóo YmFy', // non-ASCII key
        `${'k'.repeat(129)} YmFy`, // key longer than 128
        Array.from({ length: 101 }, (_, i) => `k${i}`).join(','), // more than 100 pairs
        `foo ${'A'.repeat(8 * 1024)}`, // more than 8 KiB
      ];
      for (const value of bad) {
        const res = await post(def, { ...TR, 'Upload-Length': '1', 'Upload-Metadata': value });
        assertError(res, 400, 'ERR_INVALID_METADATA', value.slice(0, 40));
        assert.equal(res.headers.location, undefined, value);
      }
      // An empty header (exact bytes: the field is present with an empty value).
      const empty = await rawRequest(def.port, ['POST /files/ HTTP/1.1', 'Host: x', 'Tus-Resumable: 1.0.0', 'Upload-Length: 1', 'Upload-Metadata:']);
      assertError(empty, 400, 'ERR_INVALID_METADATA');
      assert.deepEqual(await listStore(def), before);

      // Accepted: key-only pairs, `key ` with an empty value, whitespace after commas, unpadded base64.
      const ok: Array<[string, Record<string, string>, string]> = [
        ['is_confidential', { is_confidential: '' }, 'is_confidential'],
        ['key ,foo YmFy', { key: '', foo: 'bar' }, 'key,foo YmFy'],
        ['foo YmFy,  bar YmF6,\tbaz', { foo: 'bar', bar: 'baz', baz: '' }, 'foo YmFy,bar YmF6,baz'],
        ['name aGVsbG8', { name: 'hello' }, 'name aGVsbG8='],
        [`filename ${b64('world_domination_plan.pdf')},is_confidential`, { filename: 'world_domination_plan.pdf', is_confidential: '' }, 'filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential'],
      ];
      for (const [value, expected, echo] of ok) {
        const { url, id } = await createUpload(def.url, { length: 1, metadata: value });
        const info = await readInfo(def, id);
        for (const [k, v] of Object.entries(expected)) assert.equal(info.MetaData[k], v, `${value}: ${k}`);
        const h = await head(url);
        assert.equal(clientPairs(h.headers['upload-metadata']), echo, `${value} → ${h.headers['upload-metadata']}`);
      }
    });

    it('C10 POST with another Content-Type ignores the body', async () => {
      const res = await post(def, { ...TR, 'Upload-Length': '300', 'Content-Type': 'application/false' }, 'hello');
      assert.equal(res.status, 201, res.body);
      assert.equal(res.headers['upload-offset'], undefined);
      const url = String(res.headers.location);
      const id = url.split('/').pop()!;
      assert.match(id, UUID_V4);
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], '0');
      assert.equal(h.headers['upload-length'], '300');
      assert.equal((await stored(def, id)).length, 0);
      // The upload takes its bytes from offset 0 as usual.
      assert.equal((await patch(url, 0, 'hello')).headers['upload-offset'], '5');
      assert.equal((await stored(def, id)).toString(), 'hello');
    });

    it('C11 the created upload is reachable at the Location right away, with its request data', async () => {
      const res = await post(def, { ...TR, Host: `127.0.0.1:${def.port}`, 'Upload-Length': '7', 'Upload-Metadata': `filename ${b64('x.bin')}` });
      assert.equal(res.status, 201);
      const url = String(res.headers.location);
      const id = url.split('/').pop()!;
      assert.deepEqual((await listStore(def)).filter((n) => n.startsWith(id)), [id, `${id}.info`]);
      const info = await readInfo(def, id);
      assert.equal(info.Size, 7);
      assert.equal(info.MetaData.filename, 'x.bin');
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-length'], '7');
    });

    it('C12 Location is never relative', async () => {
      const variants: Array<Record<string, string>> = [{ 'Upload-Length': '3' }, { 'Upload-Defer-Length': '1' }, { 'Upload-Length': '0' }];
      for (const headers of variants) {
        const res = await post(def, { ...TR, Host: 'tus.io', ...headers });
        assert.equal(res.status, 201);
        assert.match(String(res.headers.location), /^http:\/\/tus\.io\/files\/[0-9a-f-]{36}$/);
      }
    });

    it('C13 Upload-Expires on the 201 when expiration is on and the upload is not complete', async () => {
      const t0 = Math.floor(Date.now() / 1000) * 1000;
      const res = await post(exp, { ...TR, 'Upload-Length': '10' });
      const t1 = Date.now();
      assert.equal(res.status, 201);
      const expires = String(res.headers['upload-expires']);
      assert.match(expires, IMF_FIXDATE);
      const at = Date.parse(expires);
      assert.ok(at >= t0 + 3600_000 - 1000 && at <= t1 + 3600_000 + 1000, `${expires} is not creation + 3600 s`);
      // Deferred and partly uploaded ones expire too.
      const deferred = await post(exp, { ...TR, 'Upload-Defer-Length': '1' });
      assert.match(String(deferred.headers['upload-expires']), IMF_FIXDATE);
      const partly = await post(exp, { ...TR, ...OOS, 'Upload-Length': '10' }, 'hello');
      assert.equal(partly.headers['upload-offset'], '5');
      assert.match(String(partly.headers['upload-expires']), IMF_FIXDATE);
      // Complete at creation: no expiry.
      const done = await post(exp, { ...TR, ...OOS, 'Upload-Length': '5' }, 'hello');
      assert.equal(done.status, 201);
      assert.equal(done.headers['upload-expires'], undefined);
      // Expiration off: never.
      const off = await post(def, { ...TR, 'Upload-Length': '10' });
      assert.equal(off.headers['upload-expires'], undefined);
    });

    it('C14 Location comes with every 201 and never with an error', async () => {
      const created = [
        await post(def, { ...TR, 'Upload-Length': '3' }),
        await post(def, { ...TR, ...OOS, 'Upload-Length': '3' }, 'abc'),
        await post(def, { ...TR, 'Upload-Defer-Length': '1' }),
        await post(def, { ...TR, 'Upload-Length': '3', 'Upload-Concat': 'partial' }),
      ];
      for (const r of created) {
        assert.equal(r.status, 201);
        assert.match(String(r.headers.location), /^http:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f-]{36}$/);
      }
      const failed = [
        await post(def, TR),
        await post(def, { ...TR, 'Upload-Length': '3', 'Upload-Metadata': 'a b c' }),
        await post(max400, { ...TR, 'Upload-Length': '401' }),
        await post(def, { 'Upload-Length': '3' }),
      ];
      assert.deepEqual(failed.map((r) => r.status), [400, 400, 413, 412]);
      for (const r of failed) assert.equal(r.headers.location, undefined);
    });

    it('C15 ids are server-generated lower-case UUID v4; a client cannot choose one', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const { id } = await createUpload(def.url, { length: 1 });
        assert.match(id, UUID_V4);
        assert.equal(id, id.toLowerCase());
        ids.add(id);
      }
      assert.equal(ids.size, 5);
      const before = await listStore(def);
      // POST to a would-be upload URL: not our id shape → 404; a UUID → 405 (POST only creates at the base path).
      const attempts: Array<[string, number, string]> = [
        ['/files/my-own-id', 404, 'ERR_UPLOAD_NOT_FOUND'],
        ['/files/foo/bar/id', 404, 'ERR_UPLOAD_NOT_FOUND'],
        [`/files/${randomUUIDLike()}`, 405, 'ERR_METHOD_NOT_ALLOWED'],
      ];
      for (const [p, status, code] of attempts) {
        const r = await request({ method: 'POST', url: `${def.url}${p}`, headers: { ...TR, 'Upload-Length': '1' } });
        assertError(r, status, code, p);
        assert.equal(r.headers.location, undefined);
      }
      assert.deepEqual(await listStore(def), before);
    });

    it('C16 a store failure during creation is 500 without internals', async () => {
      // The store breaks (its folder replaced by a file, or its backend answering 500): creating an upload fails.
      const repair = await def.store.break();
      try {
        const res = await post(def, { ...TR, 'Upload-Length': '5' });
        assertError(res, 500, 'ERR_INTERNAL_SERVER_ERROR');
        assert.equal(res.headers.location, undefined);
        assert.ok(!res.body.includes(def.storeDir) && !/ENOTDIR|EEXIST|ENOENT|InternalError/.test(res.body), res.body);
      } finally {
        await repair();
      }
      // Back to normal once the store works again.
      const ok = await post(def, { ...TR, 'Upload-Length': '5' });
      assert.equal(ok.status, 201);
      assert.ok(await def.store.exists(String(ok.headers.location).split('/').pop()!));
    });
  });

  describe('D. Creation-with-upload', () => {
    it('D1 POST with a body stores it and answers Upload-Offset', async () => {
      const res = await post(def, { ...TR, ...OOS, 'Upload-Length': '300', 'Upload-Metadata': `foo ${b64('hello')}` }, 'hello');
      assert.equal(res.status, 201, res.body);
      assert.equal(res.headers['upload-offset'], '5');
      const url = String(res.headers.location);
      const id = url.split('/').pop()!;
      assert.match(id, UUID_V4);
      assert.equal((await stored(def, id)).toString(), 'hello');
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], '5');
      assert.equal(h.headers['upload-length'], '300');
      assert.equal((await readInfo(def, id)).MetaData.foo, 'hello');
      assert.equal((await patch(url, 5, ' world')).headers['upload-offset'], '11');
      assert.equal((await stored(def, id)).toString(), 'hello world');
    });

    it('D2 a POST body longer than Upload-Length is 413', async () => {
      const before = await listStore(def);
      const body = randomBytes(400);
      const res = await post(def, { ...TR, ...OOS, 'Upload-Length': '300' }, body);
      assertError(res, 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      assert.equal(res.headers['upload-offset'], undefined);
      assert.equal(res.headers.location, undefined);
      assert.deepEqual(await listStore(def), before);
      // Chunked (no Content-Length): reading stops at the limit; the upload keeps exactly its 300 bytes.
      const chunked = await rawRequest(
        def.port,
        ['POST /files/ HTTP/1.1', `Host: 127.0.0.1:${def.port}`, 'Tus-Resumable: 1.0.0', 'Upload-Length: 300', 'Content-Type: application/offset+octet-stream', ...manifestLine()],
        body,
        true,
      );
      assertError(chunked, 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      assert.equal(chunked.headers['upload-offset'], undefined);
      const created = (await listStore(def)).filter((n) => !before.includes(n) && !/\.(info|meta)$/.test(n));
      assert.equal(created.length, 1);
      assert.deepEqual(await stored(def, created[0]!), body.subarray(0, 300));
      await assertFinished(`${def.url}/files/${created[0]}`, 300);
    });

    it('D3 a whole 960244-byte file in the POST finishes the upload', async () => {
      const body = randomBytes(960244);
      const res = await post(def, { ...TR, ...OOS, 'Upload-Length': '960244', 'Upload-Metadata': `filename ${b64('big.bin')}` }, body);
      assert.equal(res.status, 201, res.body);
      assert.equal(res.headers['upload-offset'], '960244');
      const url = String(res.headers.location);
      const id = url.split('/').pop()!;
      assert.ok((await stored(def, id)).equals(body));
      await assertFinished(url, 960244);
      const h = await head(url);
      assert.equal(clientPairs(h.headers['upload-metadata']), `filename ${b64('big.bin')}`);
    });

    it('D4 a final concatenation with a body is 403', async () => {
      const a = await createUpload(def.url, { length: 5, headers: { 'Upload-Concat': 'partial' }, body: 'hello' });
      const b = await createUpload(def.url, { length: 5, headers: { 'Upload-Concat': 'partial' }, body: 'world' });
      const before = await listStore(def);
      const res = await post(def, { ...TR, ...OOS, 'Upload-Concat': `final;${a.url} ${b.url}` }, 'hello');
      assertError(res, 403, 'ERR_MODIFY_FINAL');
      assert.equal(res.headers.location, undefined);
      assert.deepEqual(await listStore(def), before);
      // Without the body the same final is created.
      const ok = await post(def, { ...TR, 'Upload-Concat': `final;${a.url} ${b.url}` });
      assert.equal(ok.status, 201);
      const id = String(ok.headers.location).split('/').pop()!;
      assert.equal((await stored(def, id)).toString(), 'helloworld');
    });

    it('D5 a POST that completes the upload answers a plain 201 with its offset', async () => {
      const res = await post(def, { ...TR, ...OOS, 'Upload-Length': '5' }, 'hello');
      assert.equal(res.status, 201);
      assert.equal(res.body, '');
      assert.equal(res.headers['upload-offset'], '5');
      const url = String(res.headers.location);
      assert.equal((await stored(def, url.split('/').pop()!)).toString(), 'hello');
      await assertFinished(url, 5);
    });

    it('D6 the new upload is locked while its POST body is written', async () => {
      const before = await listStore(def);
      const conn = openRaw(def.port, [
        'POST /files/ HTTP/1.1',
        `Host: 127.0.0.1:${def.port}`,
        'Tus-Resumable: 1.0.0',
        'Upload-Length: 10',
        'Content-Type: application/offset+octet-stream',
        'Content-Length: 10',
        ...manifestLine(),
      ]);
      try {
        conn.write('hello');
        // Find the new upload once its first 5 bytes are stored.
        let id: string | undefined;
        const deadline = Date.now() + 20_000;
        while (!id && Date.now() < deadline) {
          const fresh = (await listStore(def)).filter((n) => !before.includes(n) && UUID_V4.test(n));
          if (fresh.length === 1 && (await def.store.size(fresh[0]!)) === 5) id = fresh[0];
          else await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(id, 'the POST body was not stored');
        // A HEAD for that upload must ask the POST (the lock holder) to release it.
        const h = await head(`${def.url}/files/${id}`);
        assert.equal(h.status, 200);
        assert.equal(h.headers['upload-offset'], '5');
        const res = await conn.response;
        assertError(res, 400, 'ERR_UPLOAD_INTERRUPTED');
        assert.equal(res.headers['upload-offset'], undefined);
        assert.equal((await stored(def, id)).toString(), 'hello');
        // The upload resumes normally.
        assert.equal((await patch(`${def.url}/files/${id}`, 5, 'world')).status, 204);
        assert.equal((await stored(def, id)).toString(), 'helloworld');
      } finally {
        conn.destroy();
      }
    });
  });

  describe('E. Deferred length', () => {
    it('E1 Upload-Defer-Length: 1 creates an upload of unknown length', async () => {
      const res = await post(def, { ...TR, 'Upload-Defer-Length': '1' });
      assert.equal(res.status, 201);
      const url = String(res.headers.location);
      const id = url.split('/').pop()!;
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], '0');
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.equal(h.headers['upload-length'], undefined);
      assert.equal((await readInfo(def, id)).SizeIsDeferred, true);
      assert.equal((await stored(def, id)).length, 0);
    });

    it('E2 PATCH declaring Upload-Length with the last bytes finishes the upload', async () => {
      const { url, id } = await createUpload(def.url, { defer: true });
      assert.equal((await patch(url, 0, 'hello')).headers['upload-offset'], '5');
      const res = await patch(url, 5, '0123456789abcde', { 'Upload-Length': '20' });
      assert.equal(res.status, 204, res.body);
      assert.equal(res.headers['upload-offset'], '20');
      assert.equal((await stored(def, id)).toString(), 'hello0123456789abcde');
      assert.equal((await readInfo(def, id)).SizeIsDeferred, false);
      await assertFinished(url, 20);
    });

    it('E3 PATCH declaring Upload-Length equal to the offset, without a body, finishes the upload', async () => {
      const { url, id } = await createUpload(def.url, { defer: true });
      const body = randomBytes(20);
      assert.equal((await patch(url, 0, body)).headers['upload-offset'], '20');
      const still = await head(url);
      assert.equal(still.headers['upload-defer-length'], '1');
      const res = await request({ method: 'PATCH', url, headers: { ...TR, ...OOS, 'Upload-Offset': '20', 'Upload-Length': '20' } });
      assert.equal(res.status, 204, res.body);
      assert.equal(res.headers['upload-offset'], '20');
      assert.ok((await stored(def, id)).equals(body));
      await assertFinished(url, 20);
    });

    it('E4 Upload-Length declared mid-way; later PATCHes go without it', async () => {
      const { url, id } = await createUpload(def.url, { defer: true });
      await patch(url, 0, 'aaaaa');
      const first = await patch(url, 5, 'bbbbb', { 'Upload-Length': '20' });
      assert.equal(first.status, 204);
      assert.equal(first.headers['upload-offset'], '10');
      const h = await head(url);
      assert.equal(h.headers['upload-length'], '20');
      assert.equal(h.headers['upload-defer-length'], undefined);
      assert.equal(h.headers['upload-offset'], '10');
      const second = await patch(url, 10, 'cccccccccc');
      assert.equal(second.status, 204);
      assert.equal(second.headers['upload-offset'], '20');
      assert.equal((await stored(def, id)).toString(), 'aaaaabbbbbcccccccccc');
      await assertFinished(url, 20);
    });

    it('E5 Upload-Length on a PATCH when the length is already known is 400', async () => {
      const { url, id } = await createUpload(def.url, { length: 20 });
      await patch(url, 0, 'hello');
      for (const v of ['20', '30']) {
        assertError(await patch(url, 5, 'world', { 'Upload-Length': v }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      }
      // A deferred length declared once cannot be declared again.
      const d = await createUpload(def.url, { defer: true });
      assert.equal((await patch(d.url, 0, 'hello', { 'Upload-Length': '20' })).status, 204);
      assertError(await patch(d.url, 5, 'world', { 'Upload-Length': '20' }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      assertError(await patch(d.url, 5, 'world', { 'Upload-Length': '25' }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      // Nothing of the refused PATCHes was stored.
      assert.equal((await stored(def, id)).toString(), 'hello');
      assert.equal((await stored(def, d.id)).toString(), 'hello');
      const h = await head(d.url);
      assert.equal(h.headers['upload-length'], '20');
      assert.equal(h.headers['upload-offset'], '5');
    });

    it('E6 Upload-Length smaller than the current offset is 400', async () => {
      const { url, id } = await createUpload(def.url, { defer: true });
      await patch(url, 0, '0123456789');
      assertError(await patch(url, 10, 'x', { 'Upload-Length': '5' }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      assertError(await patch(url, 10, 'x', { 'Upload-Length': '-1' }), 400, 'ERR_INVALID_UPLOAD_LENGTH');
      const h = await head(url);
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.equal(h.headers['upload-offset'], '10');
      assert.equal((await stored(def, id)).toString(), '0123456789');
    });

    it('E7 a deferred Upload-Length above the maximum size is 413', async () => {
      const { url, id } = await createUpload(max1m.url, { defer: true });
      await patch(url, 0, 'hello');
      const res = await patch(url, 5, 'world', { 'Upload-Length': String(MIB + 1) });
      assertError(res, 413, 'ERR_MAX_SIZE_EXCEEDED');
      const h = await head(url);
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.equal(h.headers['upload-offset'], '5');
      assert.equal((await stored(max1m, id)).toString(), 'hello');
      // Exactly the maximum is fine.
      const ok = await patch(url, 5, 'world', { 'Upload-Length': String(MIB) });
      assert.equal(ok.status, 204);
      assert.equal((await head(url)).headers['upload-length'], String(MIB));
    });

    it('E8 deferred uploads stop at the maximum size (with and without Content-Length)', async () => {
      const pieces = [randomBytes(KIB512), randomBytes(KIB512), randomBytes(KIB512)];
      // With Content-Length.
      const a = await createUpload(max1m.url, { defer: true });
      assert.equal((await patch(a.url, 0, pieces[0]!)).status, 204);
      const second = await patch(a.url, KIB512, pieces[1]!);
      assert.equal(second.status, 204);
      assert.equal(second.headers['upload-offset'], String(MIB));
      const third = await rawRequest(
        max1m.port,
        [`PATCH /files/${a.id} HTTP/1.1`, 'Host: x', 'Tus-Resumable: 1.0.0', 'Content-Type: application/offset+octet-stream', `Upload-Offset: ${MIB}`],
        pieces[2],
      );
      assertError(third, 413, 'ERR_MAX_SIZE_EXCEEDED');
      assert.equal((await head(a.url)).headers['upload-offset'], String(MIB));
      assert.ok((await stored(max1m, a.id)).equals(Buffer.concat(pieces.slice(0, 2))));

      // Chunked: no Content-Length, so the limit is found while reading.
      const b = await createUpload(max1m.url, { defer: true });
      for (const [i, offset] of [0, KIB512].entries()) {
        const r = await request({ method: 'PATCH', url: b.url, headers: { ...TR, ...OOS, 'Upload-Offset': String(offset) }, body: pieces[i]!, chunked: true });
        assert.equal(r.status, 204, r.body);
        assert.equal(r.headers['upload-offset'], String(offset + KIB512));
      }
      const chunkedThird = await rawRequest(
        max1m.port,
        [`PATCH /files/${b.id} HTTP/1.1`, 'Host: x', 'Tus-Resumable: 1.0.0', 'Content-Type: application/offset+octet-stream', `Upload-Offset: ${MIB}`],
        pieces[2],
        true,
      );
      assertError(chunkedThird, 413, 'ERR_MAX_SIZE_EXCEEDED');
      assert.equal(chunkedThird.headers['upload-offset'], undefined);
      const h = await head(b.url);
      assert.equal(h.headers['upload-offset'], String(MIB));
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.ok((await stored(max1m, b.id)).equals(Buffer.concat(pieces.slice(0, 2))));

      // Chunked, crossing the limit inside one PATCH: exactly the bytes up to the maximum are kept.
      const c = await createUpload(max1m.url, { defer: true });
      assert.equal((await patch(c.url, 0, pieces[0]!)).status, 204);
      const crossing = Buffer.concat([pieces[1]!, pieces[2]!]);
      const cross = await rawRequest(
        max1m.port,
        [`PATCH /files/${c.id} HTTP/1.1`, 'Host: x', 'Tus-Resumable: 1.0.0', 'Content-Type: application/offset+octet-stream', `Upload-Offset: ${KIB512}`],
        crossing,
        true,
      );
      assertError(cross, 413, 'ERR_MAX_SIZE_EXCEEDED');
      assert.equal((await head(c.url)).headers['upload-offset'], String(MIB));
      assert.ok((await stored(max1m, c.id)).equals(Buffer.concat(pieces.slice(0, 2))));
    });

    it('E9 deferred length is always supported (never 501)', async () => {
      const opts = await request({ method: 'OPTIONS', url: `${def.url}/files/` });
      assert.ok(String(opts.headers['tus-extension']).split(',').includes('creation-defer-length'));
      const res = await post(def, { ...TR, 'Upload-Defer-Length': '1' });
      assert.equal(res.status, 201);
      const url = String(res.headers.location);
      const p = await patch(url, 0, 'abc', { 'Upload-Length': '3' });
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], '3');
      // Deferred creation with a body works too.
      const withBody = await post(def, { ...TR, ...OOS, 'Upload-Defer-Length': '1' }, 'hello');
      assert.equal(withBody.status, 201);
      assert.equal(withBody.headers['upload-offset'], '5');
      const h = await head(String(withBody.headers.location));
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.equal(h.headers['upload-offset'], '5');
      await assertFinished(url, 3);
    });

    it('E10 a deferred upload completed by PATCH Upload-Length is finished', async () => {
      const { url, id } = await createUpload(def.url, { defer: true });
      const res = await patch(url, 0, 'hello world', { 'Upload-Length': '11' });
      assert.equal(res.status, 204);
      assert.equal(res.headers['upload-offset'], '11');
      assert.equal((await stored(def, id)).toString(), 'hello world');
      await assertFinished(url, 11);
      // With expiration on, the finished upload no longer carries Upload-Expires.
      const e = await createUpload(exp.url, { defer: true });
      const first = await patch(e.url, 0, 'hello');
      assert.match(String(first.headers['upload-expires']), IMF_FIXDATE);
      const last = await patch(e.url, 5, ' world', { 'Upload-Length': '11' });
      assert.equal(last.status, 204);
      assert.equal(last.headers['upload-expires'], undefined);
      await assertFinished(e.url, 11);
    });
  });
});

/** A syntactically valid UUID v4 that names no upload. */
function randomUUIDLike(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
