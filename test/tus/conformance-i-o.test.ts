// Conformance list (tus-protocol.md §2) groups I (concatenation), J (download), K (CORS), L (proxies / Location),
// N (locking) and O (ids / paths / security), against the real server over raw HTTP.
// Items decisions.md marks as not applying still get a test that pins OUR behaviour.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import { startServer, type RunningServer } from '../helpers/server.js';
import { OOS, TR, b64, createUpload, head, patch, request, type Response } from '../helpers/http.js';
import { clientPairs, withManifest } from '../helpers/manifest-mode.js';
import { MemoryLocker } from '../../internal/locking/memory/memorylocker.js';
import { LockTimeoutError } from '../../internal/locking/locker.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const MiB = 1024 * 1024;

const ALLOW_METHODS = 'POST, HEAD, PATCH, OPTIONS, GET, DELETE';
const ALLOW_HEADERS =
  'Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum';
const EXPOSE_HEADERS =
  'Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires';

// ------------------------------------------------------------------------------------------------------------------
// Helpers

/** `^CODE: ` error body. */
function assertCode(res: { body: string | Buffer }, code: string): void {
  assert.match(String(res.body), new RegExp(`^${code}: .+\\n$`), `expected body ${code}, got ${JSON.stringify(String(res.body))}`);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Polls `fn` until it returns true; fails after a generous deadline (never a timed assertion). */
async function waitFor(fn: () => Promise<boolean> | boolean, what: string, deadlineMs = 15_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`gave up waiting for: ${what}`);
    await sleep(20);
  }
}

/** Upload ids present in a store (its entries named like our ids; test/helpers/backend.ts for cloud backends). */
async function storedIds(s: RunningServer): Promise<Set<string>> {
  return new Set((await s.store.names()).filter((n) => UUID_V4.test(n)));
}

async function infoCount(s: RunningServer): Promise<number> {
  return (await s.store.names()).filter((n) => n.endsWith('.info')).length;
}

/** A finished upload holding `content`, created with creation-with-upload. */
async function finished(base: string, content: string | Buffer, metadata?: string, headers: OutgoingHttpHeaders = {}) {
  const buf = Buffer.from(content);
  const r = await createUpload(base, {
    length: buf.length,
    metadata,
    headers,
    ...(buf.length > 0 ? { body: buf } : {}),
  });
  if (buf.length > 0) assert.equal(r.res.headers['upload-offset'], String(buf.length));
  return r;
}

/** Converts a Location (possibly naming another host) to a URL on the test server. */
function onServer(s: RunningServer, location: string): string {
  return `${s.url}${new URL(location).pathname}`;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  rawHeaders: Array<[string, string]>;
  body: Buffer;
}

/**
 * A raw HTTP/1.1 exchange over node:net: exact bytes out, slow bodies, aborts, paused reading. The response is
 * parsed as soon as it is complete (headers + Content-Length), even while the request body is still "in flight".
 */
class RawConn {
  readonly sock: net.Socket;
  readonly response: Promise<RawResponse>;
  readonly firstData: Promise<void>;
  // Received bytes are kept as chunks (concatenated once) so a 64 MiB download stays linear.
  private chunks: Buffer[] = [];
  private received = 0;
  private closed = false;
  private dataSeen!: () => void;

  constructor(
    port: number,
    private readonly opts: { noBody?: boolean; pauseOnFirstData?: boolean } = {},
  ) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setNoDelay(true);
    this.firstData = new Promise((r) => (this.dataSeen = r));
    this.response = new Promise<RawResponse>((resolve, reject) => {
      let head: { status: number; headers: Record<string, string>; rawHeaders: Array<[string, string]>; bodyStart: number; len?: number } | undefined;
      const all = () => {
        if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
        return this.chunks[0] ?? Buffer.alloc(0);
      };
      const tryParse = (final: boolean) => {
        if (!head) {
          const buf = all();
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            if (final) reject(new Error(`connection closed without a response (${buf.length} bytes)`));
            return;
          }
          const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
          const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]!);
          if (!m) return reject(new Error(`bad status line ${lines[0]}`));
          const status = Number(m[1]);
          const rawHeaders: Array<[string, string]> = lines.slice(1).map((l) => {
            const i = l.indexOf(':');
            return [l.slice(0, i).trim(), l.slice(i + 1).trim()];
          });
          const headers: Record<string, string> = {};
          for (const [k, v] of rawHeaders) {
            const key = k.toLowerCase();
            headers[key] = key in headers ? `${headers[key]}, ${v}` : v;
          }
          const noBody = this.opts.noBody || status === 204 || status === 304 || (status >= 100 && status < 200);
          const len = noBody ? 0 : headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
          head = { status, headers, rawHeaders, bodyStart: end + 4, len };
        }
        const h = head;
        if (h.len !== undefined && this.received - h.bodyStart >= h.len) {
          return resolve({ status: h.status, headers: h.headers, rawHeaders: h.rawHeaders, body: all().subarray(h.bodyStart, h.bodyStart + h.len) });
        }
        if (final) resolve({ status: h.status, headers: h.headers, rawHeaders: h.rawHeaders, body: all().subarray(h.bodyStart) });
      };
      this.sock.on('data', (d: Buffer) => {
        this.dataSeen();
        if (this.opts.pauseOnFirstData && this.received === 0) this.sock.pause();
        this.chunks.push(d);
        this.received += d.length;
        tryParse(false);
      });
      this.sock.on('error', () => {
        /* EPIPE / ECONNRESET once the server has answered and closed: the response (if any) is parsed on close */
      });
      this.sock.on('close', () => {
        this.closed = true;
        tryParse(true);
      });
    });
    this.response.catch(() => {});
  }

  get isClosed(): boolean {
    return this.closed || this.sock.destroyed;
  }

  write(data: string | Buffer): void {
    if (!this.isClosed) this.sock.write(data);
  }

  /** Sends the request line and headers (Host added). */
  head(method: string, target: string, headers: OutgoingHttpHeaders, host = '127.0.0.1'): void {
    let text = `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\n`;
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) text += `${k}: ${String(v)}\r\n`;
    this.write(`${text}\r\n`);
  }

  destroy(): void {
    this.sock.destroy();
  }

  resume(): void {
    this.sock.resume();
  }
}

/** Writes `data` in `chunk`-byte pieces every `everyMs` until done, stopped, or the connection closes. */
function drip(conn: RawConn, data: Buffer, chunk: number, everyMs: number) {
  let sent = 0;
  let stopped = false;
  const done = (async () => {
    while (!stopped && !conn.isClosed && sent < data.length) {
      const piece = data.subarray(sent, Math.min(sent + chunk, data.length));
      conn.write(piece);
      sent += piece.length;
      await sleep(everyMs);
    }
  })();
  return {
    done,
    get sent() {
      return sent;
    },
    stop() {
      stopped = true;
    },
  };
}

/**
 * Starts a PATCH of `total` bytes (Content-Length: total) on `uploadPath`, sends the first `first` bytes of
 * `data`, and waits until the server has stored exactly those bytes.
 */
async function stalledPatch(s: RunningServer, id: string, data: Buffer, first: number, extra: OutgoingHttpHeaders = {}) {
  const conn = new RawConn(s.port);
  conn.head('PATCH', `/files/${id}`, { ...TR, ...OOS, 'Upload-Offset': 0, 'Content-Length': data.length, ...extra });
  conn.write(data.subarray(0, first));
  if (!extra['Upload-Checksum']) {
    await waitFor(async () => (await s.store.size(id)) === first, `${first} bytes stored`);
  }
  return conn;
}

// ------------------------------------------------------------------------------------------------------------------
// Servers: one per configuration, started together.

let base: RunningServer; // download on, lock timeout 1.5 s: J, K (allow-all), N, O
let conc: RunningServer; // TUS_MAX_SIZE=100, defaults otherwise (download off, no proxy): I, L1, J8
let cors: RunningServer; // TUS_CORS_ALLOW_ORIGIN restricted: K3
let proxy: RunningServer; // TUS_BEHIND_PROXY=true: L2–L8

before(async () => {
  // Validation follows the test mode (plain, or manifest mode with DEX_TEST_MANIFEST_MODE=on).
  [base, conc, cors, proxy] = await Promise.all([
    startServer({ env: { TUS_DISABLE_DOWNLOAD: 'false', TUS_LOCK_TIMEOUT: '1500' } }),
    startServer({ env: { TUS_MAX_SIZE: '100' } }),
    startServer({ env: { TUS_CORS_ALLOW_ORIGIN: 'https?://tus\\.io' } }),
    startServer({ env: { TUS_BEHIND_PROXY: 'true' } }),
  ]);
});

after(async () => {
  await Promise.all([base, conc, cors, proxy].filter(Boolean).map((s) => s.cleanup()));
});

// A 64 MiB finished upload on `base`: its download cannot fit in socket buffers, so a paused GET holds the lock.
let bigUpload: Promise<{ id: string; url: string; hash: string; size: number }> | undefined;
function big() {
  bigUpload ??= (async () => {
    const data = randomBytes(64 * MiB);
    const { id, url } = await createUpload(base.url, { length: data.length });
    const p = await patch(url, 0, data);
    assert.equal(p.status, 204);
    return { id, url, hash: sha256(data), size: data.length };
  })();
  return bigUpload;
}

/** Starts a GET of the big upload and stops reading after its first bytes (the handler then holds the lock). */
async function heldDownload(id: string): Promise<RawConn> {
  const conn = new RawConn(base.port, { pauseOnFirstData: true });
  conn.head('GET', `/files/${id}`, {});
  await conn.firstData;
  return conn;
}

// ------------------------------------------------------------------------------------------------------------------
describe('I. Concatenation', () => {
  const partial = (s: RunningServer, length: number, body?: string, headers: OutgoingHttpHeaders = {}) =>
    createUpload(s.url, { length, headers: { 'Upload-Concat': 'partial', ...headers }, ...(body !== undefined ? { body } : {}) });

  it('I1 POST Upload-Concat: partial with Upload-Length 300 → 201, stored and reported as a partial', async () => {
    const { url, id, res } = await partial(base, 300);
    assert.equal(res.status, 201);
    const h = await head(url);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-concat'], 'partial');
    assert.equal(h.headers['upload-length'], '300');
    assert.equal(h.headers['upload-offset'], '0');
    const info = await base.store.readInfo(id);
    assert.equal(info.IsPartial, true);
    assert.equal(info.IsFinal, false);
    assert.equal(info.Size, 300);
  });

  it('I2 final of partials a+b via "final; <abs a> <rel b/>" → 201, length 10 offset 10, absolute echo, a then b stored', async () => {
    const host = { Host: 'tus.io' };
    const a = await partial(conc, 5, 'hello', host);
    const b = await partial(conc, 5, 'world', host);
    assert.equal(a.url, `http://tus.io/files/${a.id}`);
    const res = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: withManifest({ ...TR, ...host, 'Upload-Concat': `final; http://tus.io/files/${a.id} /files/${b.id}/` }),
    });
    assert.equal(res.status, 201, res.body);
    const loc = String(res.headers.location);
    const finalId = loc.split('/').pop()!;
    assert.equal(loc, `http://tus.io/files/${finalId}`);
    assert.match(finalId, UUID_V4);

    const h = await head(onServer(conc, loc), { ...TR, ...host });
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-length'], '10');
    assert.equal(h.headers['upload-offset'], '10');
    assert.equal(h.headers['upload-concat'], `final;http://tus.io/files/${a.id} http://tus.io/files/${b.id}`);
    assert.equal((await conc.store.read(finalId)).toString(), 'helloworld');
    const info = await conc.store.readInfo(finalId);
    assert.equal(info.IsFinal, true);
    assert.deepEqual(info.PartialUploads, [a.id, b.id]);

    // The partials are left as they were.
    const ha = await head(onServer(conc, a.url));
    assert.equal(ha.headers['upload-concat'], 'partial');
    assert.equal(ha.headers['upload-offset'], '5');

    // A PATCH on the final is refused and changes nothing.
    const p = await patch(onServer(conc, loc), 10, 'x');
    assert.equal(p.status, 403);
    assertCode(p, 'ERR_MODIFY_FINAL');
    assert.equal((await conc.store.read(finalId)).toString(), 'helloworld');

    // The same partial may appear several times and in several finals.
    const twice = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: withManifest({ ...TR, 'Upload-Concat': `final;/files/${b.id} /files/${a.id} /files/${b.id}` }),
    });
    assert.equal(twice.status, 201, twice.body);
    const twiceId = String(twice.headers.location).split('/').pop()!;
    assert.equal((await conc.store.read(twiceId)).toString(), 'worldhelloworld');
    assert.equal((await head(String(twice.headers.location))).headers['upload-length'], '15');
  });

  it('I3 a final naming an unfinished partial (3/5) → 400 ERR_UPLOAD_NOT_FINISHED, nothing created; once finished → 201', async () => {
    const done = await partial(conc, 2, 'ok');
    const p = await partial(conc, 5, 'abc');
    const before = await infoCount(conc);
    const concat = `final;/files/${done.id} /files/${p.id}`;
    const res = await request({ method: 'POST', url: `${conc.url}/files/`, headers: withManifest({ ...TR, 'Upload-Concat': concat }) });
    assert.equal(res.status, 400);
    assertCode(res, 'ERR_UPLOAD_NOT_FINISHED');
    assert.equal(res.headers.location, undefined);
    assert.equal(await infoCount(conc), before);

    assert.equal((await patch(p.url, 3, 'de')).status, 204);
    const ok = await request({ method: 'POST', url: `${conc.url}/files/`, headers: withManifest({ ...TR, 'Upload-Concat': concat }) });
    assert.equal(ok.status, 201, ok.body);
    assert.equal((await conc.store.read(String(ok.headers.location).split('/').pop()!)).toString(), 'okabcde');
  });

  it('I4 with TUS_MAX_SIZE=100 a partial of 1000 → 413, and a final whose partials sum past 100 → 413 ERR_MAX_SIZE_EXCEEDED', async () => {
    const tooBig = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: { ...TR, 'Upload-Concat': 'partial', 'Upload-Length': '1000' },
    });
    assert.equal(tooBig.status, 413);
    assertCode(tooBig, 'ERR_MAX_SIZE_EXCEEDED');

    const a = await partial(conc, 60, 'a'.repeat(60));
    const b = await partial(conc, 60, 'b'.repeat(60));
    const before = await infoCount(conc);
    const res = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: withManifest({ ...TR, 'Upload-Concat': `final;/files/${a.id} /files/${b.id}` }),
    });
    assert.equal(res.status, 413);
    assertCode(res, 'ERR_MAX_SIZE_EXCEEDED');
    assert.equal(await infoCount(conc), before);
  });

  it('I5 "final;" without URLs, "PARTIAL" and garbage Upload-Concat values → 400 ERR_INVALID_CONCAT', async () => {
    for (const value of ['final;', 'final; ', 'final', 'PARTIAL', 'Partial', 'partial;', 'garbage', 'FINAL;/files/x', '']) {
      const res = await request({
        method: 'POST',
        url: `${conc.url}/files/`,
        headers: withManifest({ ...TR, 'Upload-Length': '5', 'Upload-Concat': value }),
      });
      assert.equal(res.status, 400, `Upload-Concat: ${JSON.stringify(value)}`);
      assertCode(res, 'ERR_INVALID_CONCAT');
    }
  });

  it('I6 (ids with slashes do not apply) a final naming /files/aaa/123 and /files/bbb/123 → 404 ERR_UPLOAD_NOT_FOUND', async () => {
    const res = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: withManifest({ ...TR, 'Upload-Concat': 'final; http://tus.io/files/aaa/123 /files/bbb/123' }),
    });
    assert.equal(res.status, 404);
    assertCode(res, 'ERR_UPLOAD_NOT_FOUND');
  });

  it('I7 (concatenation cannot be disabled) concatenation is offered in Tus-Extension and partials are accepted', async () => {
    const o = await request({ method: 'OPTIONS', url: `${conc.url}/files/` });
    assert.equal(o.status, 200);
    const ext = String(o.headers['tus-extension']).split(',');
    assert.ok(ext.includes('concatenation'));
    assert.ok(!ext.includes('concatenation-unfinished'), 'concatenation-unfinished is not offered');
    const { res } = await partial(conc, 1);
    assert.equal(res.status, 201);
  });

  it('I8 a partial URL outside the base path, or naming no partial of ours → 404 (non-partial → 400)', async () => {
    const a = await partial(conc, 1, 'a');
    const post = (concat: string) =>
      request({ method: 'POST', url: `${conc.url}/files/`, headers: withManifest({ ...TR, 'Upload-Concat': concat }) });
    for (const concat of [`final;/other/${a.id}`, `final;http://tus.io/${a.id}`, `final;/files/${a.id} /upload/${a.id}`, `final;${a.id}`]) {
      const res = await post(concat);
      assert.equal(res.status, 404, concat);
      assertCode(res, 'ERR_UPLOAD_NOT_FOUND');
    }
    // An unknown id, and a partial that was terminated.
    const gone = await partial(conc, 1, 'g');
    assert.equal((await request({ method: 'DELETE', url: gone.url, headers: TR })).status, 204);
    for (const id of ['00000000-0000-4000-8000-000000000000', gone.id]) {
      const res = await post(`final;/files/${a.id} /files/${id}`);
      assert.equal(res.status, 404);
      assertCode(res, 'ERR_UPLOAD_NOT_FOUND');
    }
    // A regular (non-partial) upload cannot be part of a final.
    const plain = await finished(conc.url, 'p');
    const res = await post(`final;/files/${a.id} /files/${plain.id}`);
    assert.equal(res.status, 400);
    assertCode(res, 'ERR_INVALID_CONCAT');
  });

  it('I9 a final with Upload-Length (or Upload-Defer-Length) → 400 ERR_INVALID_CONCAT; a final with a body → 403 ERR_MODIFY_FINAL', async () => {
    const a = await partial(conc, 3, 'abc');
    const concat = `final;/files/${a.id}`;
    const before = await infoCount(conc);
    for (const extra of [{ 'Upload-Length': '3' }, { 'Upload-Defer-Length': '1' }]) {
      const res = await request({ method: 'POST', url: `${conc.url}/files/`, headers: withManifest({ ...TR, 'Upload-Concat': concat, ...extra }) });
      assert.equal(res.status, 400, JSON.stringify(extra));
      assertCode(res, 'ERR_INVALID_CONCAT');
    }
    const withBody = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: withManifest({ ...TR, ...OOS, 'Upload-Concat': concat }),
      body: 'xyz',
    });
    assert.equal(withBody.status, 403);
    assertCode(withBody, 'ERR_MODIFY_FINAL');
    assert.equal(await infoCount(conc), before, 'no upload was created');
  });

  it('I10 tus-js-client style: partials with their own metadata, then "final;<url1> <url2>" (no space) with the final metadata', async () => {
    const a = await partial(conc, 4, undefined, { 'Upload-Metadata': `part ${b64('a')}` });
    const b = await partial(conc, 3, undefined, { 'Upload-Metadata': `part ${b64('b')}` });
    assert.equal((await patch(a.url, 0, 'abcd')).status, 204);
    assert.equal((await patch(b.url, 0, 'efg')).status, 204);
    const res = await request({
      method: 'POST',
      url: `${conc.url}/files/`,
      headers: withManifest({ ...TR, 'Upload-Concat': `final;${a.url} ${b.url}`, 'Upload-Metadata': `filename ${b64('whole.txt')}` }),
    });
    assert.equal(res.status, 201, res.body);
    const loc = String(res.headers.location);
    const h = await head(loc);
    assert.equal(h.headers['upload-length'], '7');
    assert.equal(h.headers['upload-offset'], '7');
    assert.equal(h.headers['upload-concat'], `final;${a.url} ${b.url}`);
    const meta = String(h.headers['upload-metadata']).split(',');
    assert.equal(clientPairs(h.headers['upload-metadata']), `filename ${b64('whole.txt')}`, 'the final keeps its own metadata, and only it');
    assert.ok(!meta.some((p) => p.startsWith('part ')), 'partial metadata is not inherited');
    assert.equal((await conc.store.read(loc.split('/').pop()!)).toString(), 'abcdefg');
  });
});

// ------------------------------------------------------------------------------------------------------------------
describe('J. GET (download)', () => {
  const get = (url: string, headers: OutgoingHttpHeaders = {}) => request({ method: 'GET', url, headers });

  it('J1 only finished uploads are served: offset 5/20 → 404; finished → 200 with filetype, escaped filename, bytes', async () => {
    const metadata = `filetype ${b64('image/jpeg')},filename ${b64('file.jpg"evil')}`;
    const { url } = await createUpload(base.url, { length: 20, metadata });
    assert.equal((await patch(url, 0, 'hello')).status, 204);
    const partialGet = await get(url);
    assert.equal(partialGet.status, 404);
    assertCode(partialGet, 'ERR_UPLOAD_NOT_FOUND');

    const rest = ' world, and mor';
    assert.equal(rest.length, 15);
    assert.equal((await patch(url, 5, rest)).status, 204);
    const res = await get(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '20');
    assert.equal(res.headers['content-type'], 'image/jpeg');
    assert.equal(res.headers['content-disposition'], 'inline;filename="file.jpg\\"evil"');
    assert.equal(res.body, `hello${rest}`);
  });

  it('J2 (ours: unfinished → 404) an empty upload at offset 0/5 → 404; a finished 0-byte upload → 200, Content-Length 0, attachment', async () => {
    const { url } = await createUpload(base.url, { length: 5 });
    assert.equal((await get(url)).status, 404);
    const empty = await createUpload(base.url, { length: 0 });
    const res = await get(empty.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '0');
    assert.equal(res.headers['content-disposition'], 'attachment');
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.body, '');
  });

  it('J3 malformed filetypes → Content-Type application/octet-stream, attachment', async () => {
    for (const filetype of ['non-a-valid-mime-type', 'image_png', 'text/plain; invalid-param', 'text/plain; charset=utf-8; charset=utf-8', 'text/plain;\r\nX-Evil: 1']) {
      const { url } = await finished(base.url, 'data', `filetype ${b64(filetype)}`);
      const res = await get(url);
      assert.equal(res.status, 200, filetype);
      assert.equal(res.headers['content-type'], 'application/octet-stream', filetype);
      assert.equal(res.headers['content-disposition'], 'attachment', filetype);
      assert.equal(res.headers['x-evil'], undefined);
    }
  });

  it('J4 well-formed types outside the inline list keep their Content-Type and are attachments with the filename', async () => {
    const docx = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
    for (const [filetype, filename] of [[docx, 'invoice.docx'], ['application/zip', 'archive.zip'], ['text/html', 'page.html'], ['image/svg+xml', 'x.svg']] as const) {
      const { url } = await finished(base.url, 'PK..', `filetype ${b64(filetype)},filename ${b64(filename)}`);
      const res = await get(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], filetype);
      assert.equal(res.headers['content-disposition'], `attachment;filename="${filename}"`);
    }
  });

  it('J5 the inline allow-list (parameters allowed) is served inline', async () => {
    const inline = [
      'text/plain', 'image/png', 'image/jpeg', 'image/gif', 'image/bmp', 'image/webp',
      'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/webm', 'audio/ogg',
      'video/mp4', 'video/webm', 'video/ogg', 'application/ogg', 'audio/ogg; codecs=opus', 'text/plain; charset=utf-8',
    ];
    for (const filetype of inline) {
      const { url } = await finished(base.url, 'x', `filetype ${b64(filetype)}`);
      const res = await get(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], filetype);
      assert.equal(res.headers['content-disposition'], 'inline', filetype);
    }
  });

  it('J6 filenames are quoted with " and \\ escaped, tusd format inline;filename="x", never breaking the header', async () => {
    const cases: Array<[string, string]> = [
      ['plain.txt', 'plain.txt'],
      ['a"b.txt', 'a\\"b.txt'],
      ['back\\slash.txt', 'back\\\\slash.txt'],
      ['r\u00e9sum\u00e9.txt', 'r_sum_.txt'],
      ['line\r\nX-Evil: 1', 'line__X-Evil: 1'],
    ];
    for (const [filename, quoted] of cases) {
      const { url } = await finished(base.url, 'x', `filetype ${b64('text/plain')},filename ${b64(filename)}`);
      const res = await get(url);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-disposition'], `inline;filename="${quoted}"`, JSON.stringify(filename));
      assert.equal(res.headers['x-evil'], undefined);
    }
  });

  it('J7 a finished upload without metadata → 200, application/octet-stream, attachment, Content-Length = size', async () => {
    const data = randomBytes(3000);
    const { url } = await finished(base.url, data);
    const res = await new Promise<{ status: number; headers: Record<string, string>; body: Buffer }>((resolve, reject) => {
      const c = new RawConn(base.port);
      c.head('GET', new URL(url).pathname, { Connection: 'close' });
      c.response.then(resolve, reject);
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['content-disposition'], 'attachment');
    assert.equal(res.headers['content-length'], '3000');
    assert.ok(res.body.equals(data));
  });

  it('J8 (the file store always reads) unknown id → 404; with download disabled (default) GET → 405 Allow: HEAD, PATCH, DELETE', async () => {
    const unknown = await get(`${base.url}/files/00000000-0000-4000-8000-000000000000`);
    assert.equal(unknown.status, 404);
    assertCode(unknown, 'ERR_UPLOAD_NOT_FOUND');

    const { url } = await finished(conc.url, 'abc');
    const res = await get(url);
    assert.equal(res.status, 405);
    assertCode(res, 'ERR_METHOD_NOT_ALLOWED');
    assert.equal(res.headers.allow, 'HEAD, PATCH, DELETE');
    // With download on, GET is part of Allow.
    const put = await request({ method: 'PUT', url: `${base.url}/files/00000000-0000-4000-8000-000000000000`, headers: TR });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, HEAD, PATCH, DELETE');
  });

  it('J9 the stored file is closed after the response and after an aborted download (lock released); Range is ignored (full 200)', async () => {
    // Open file descriptors on the data, or requests reading it from a cloud backend.
    const openReads = (id: string) => base.store.openReads(id);
    const { url, id } = await finished(base.url, 'hello range');
    const ranged = await get(url, { Range: 'bytes=0-1' });
    assert.equal(ranged.status, 200);
    assert.equal(ranged.body, 'hello range');
    await waitFor(async () => (await openReads(id)) === 0, 'file closed after a complete GET');

    const b = await big();
    const conn = await heldDownload(b.id);
    conn.destroy();
    await waitFor(async () => (await openReads(b.id)) === 0, 'file closed after an aborted GET');
    const h = await head(b.url);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], String(b.size));
  });

  it('J10 (custom GET routes do not apply) the server\'s own GET routes are not shadowed; GET on the base path → 405', async () => {
    const health = await get(`${base.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(typeof JSON.parse(health.body), 'object');
    const root = await get(`${base.url}/files/`);
    assert.equal(root.status, 405);
    assert.equal(root.headers.allow, 'POST');
  });
});

// ------------------------------------------------------------------------------------------------------------------
describe('K. CORS', () => {
  it('K1 preflight with an allowed Origin → 200 echoing it, Vary: Origin, the exact allow lists, Max-Age 86400, no credentials', async () => {
    const res = await request({ method: 'OPTIONS', url: `${base.url}/files/`, headers: { Origin: 'https://tus.io' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], 'https://tus.io');
    assert.equal(res.headers.vary, 'Origin');
    assert.equal(res.headers['access-control-allow-methods'], ALLOW_METHODS);
    assert.equal(res.headers['access-control-allow-headers'], ALLOW_HEADERS);
    assert.equal(res.headers['access-control-max-age'], '86400');
    assert.equal(res.headers['access-control-allow-credentials'], undefined);
    assert.equal(res.headers['tus-version'], '1.0.0');
  });

  it('K2 an actual request with Origin and no Tus-Resumable → 412 still carrying ACAO, Vary, Expose-Headers, no preflight headers', async () => {
    const res = await request({ method: 'POST', url: `${base.url}/files/`, headers: withManifest({ Origin: 'https://tus.io', 'Upload-Length': '1' }) });
    assert.equal(res.status, 412);
    assertCode(res, 'ERR_UNSUPPORTED_VERSION');
    assert.equal(res.headers['tus-version'], '1.0.0');
    assert.equal(res.headers['access-control-allow-origin'], 'https://tus.io');
    assert.equal(res.headers.vary, 'Origin');
    assert.equal(res.headers['access-control-expose-headers'], EXPOSE_HEADERS);
    assert.equal(res.headers['access-control-allow-methods'], undefined);
    assert.equal(res.headers['access-control-allow-headers'], undefined);
    assert.equal(res.headers['access-control-max-age'], undefined);
  });

  it('K3 TUS_CORS_ALLOW_ORIGIN=https?://tus\\.io matches whole origins: http(s)://tus.io allowed; others → 403 ERR_ORIGIN_NOT_ALLOWED, no CORS headers', async () => {
    for (const origin of ['http://tus.io', 'https://tus.io']) {
      const pre = await request({ method: 'OPTIONS', url: `${cors.url}/files/`, headers: { Origin: origin } });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers['access-control-allow-origin'], origin);
      const post = await request({ method: 'POST', url: `${cors.url}/files/`, headers: withManifest({ ...TR, Origin: origin, 'Upload-Length': '1' }) });
      assert.equal(post.status, 201);
      assert.equal(post.headers['access-control-allow-origin'], origin);
    }
    const before = await infoCount(cors);
    for (const origin of ['http://example.com', 'http://tus.io.evil.com', 'http://sub.tus.io', 'xhttp://tus.io', 'http://tus.io:8080', 'http://tusxio']) {
      for (const method of ['OPTIONS', 'POST']) {
        const res = await request({ method, url: `${cors.url}/files/`, headers: withManifest({ ...TR, Origin: origin, 'Upload-Length': '1' }) });
        assert.equal(res.status, 403, `${method} ${origin}`);
        assertCode(res, 'ERR_ORIGIN_NOT_ALLOWED');
        for (const h of ['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age', 'access-control-expose-headers']) {
          assert.equal(res.headers[h], undefined, `${method} ${origin}: ${h}`);
        }
        assert.equal(res.headers.location, undefined);
      }
    }
    assert.equal(await infoCount(cors), before, 'refused origins created nothing');
  });

  it('K4 (custom CORS lists do not apply) the lists are fixed and credentials are never allowed, preflight or actual', async () => {
    for (const s of [base, cors]) {
      const pre = await request({ method: 'OPTIONS', url: `${s.url}/files/`, headers: { Origin: 'https://tus.io' } });
      assert.equal(pre.headers['access-control-allow-methods'], ALLOW_METHODS);
      assert.equal(pre.headers['access-control-allow-headers'], ALLOW_HEADERS);
      assert.equal(pre.headers['access-control-max-age'], '86400');
      assert.equal(pre.headers['access-control-allow-credentials'], undefined);
      const post = await request({ method: 'POST', url: `${s.url}/files/`, headers: withManifest({ ...TR, Origin: 'https://tus.io', 'Upload-Length': '1' }) });
      assert.equal(post.status, 201);
      assert.equal(post.headers['access-control-allow-credentials'], undefined);
      assert.equal(post.headers['access-control-expose-headers'], EXPOSE_HEADERS);
    }
  });

  it('K5 (CORS cannot be disabled) without Origin no ACAO/Vary/Expose is sent; a preflight without Origin is still 200', async () => {
    const post = await request({ method: 'POST', url: `${cors.url}/files/`, headers: withManifest({ ...TR, 'Upload-Length': '1' }) });
    assert.equal(post.status, 201);
    assert.equal(post.headers['access-control-allow-origin'], undefined);
    assert.equal(post.headers['access-control-expose-headers'], undefined);
    assert.equal(post.headers.vary, undefined);
    const pre = await request({ method: 'OPTIONS', url: `${cors.url}/files/` });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
  });

  it('K6 (no outer middleware) each Access-Control-* header is sent exactly once, never appended twice', async () => {
    for (const method of ['OPTIONS', 'HEAD']) {
      const c = new RawConn(base.port, { noBody: method === 'HEAD' });
      c.head(method, '/files/', { Origin: 'https://tus.io', Connection: 'close', ...TR });
      const res = await c.response;
      const names = res.rawHeaders.map(([k]) => k.toLowerCase()).filter((k) => k.startsWith('access-control-') || k === 'vary');
      assert.ok(names.length >= 2, `${method}: CORS headers present`);
      assert.equal(new Set(names).size, names.length, `${method}: duplicated ${names.join(' ')}`);
    }
  });

  it('K7 (node semantics) with the default pattern any origin is echoed, never "*"; no Origin → no ACAO', async () => {
    for (const origin of ['https://anything.example:3000', 'http://localhost:8081']) {
      const res = await request({ method: 'POST', url: `${base.url}/files/`, headers: withManifest({ ...TR, Origin: origin, 'Upload-Length': '1' }) });
      assert.equal(res.status, 201);
      assert.equal(res.headers['access-control-allow-origin'], origin);
    }
    const none = await request({ method: 'OPTIONS', url: `${base.url}/files/` });
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });
});

// ------------------------------------------------------------------------------------------------------------------
describe('L. Proxies / Location generation', () => {
  const create = async (s: RunningServer, headers: OutgoingHttpHeaders) => {
    const res = await request({ method: 'POST', url: `${s.url}/files/`, headers: withManifest({ ...TR, 'Upload-Length': '1', Host: 'tus.io', ...headers }) });
    assert.equal(res.status, 201, res.body);
    return String(res.headers.location);
  };
  const idRe = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';
  const loc = (prefix: string) => new RegExp(`^${prefix.replace(/[.]/g, '\\.')}${idRe}$`);

  it('L1 by default (TUS_BEHIND_PROXY=false) forwarding headers are ignored → http://tus.io/files/<id>', async () => {
    const l = await create(conc, {
      'X-Forwarded-Host': 'foo.com',
      'X-Forwarded-Proto': 'https',
      Forwarded: 'host=bar.com;proto=https',
    });
    assert.match(l, loc('http://tus.io/files/'));
  });

  it('L2 behind a proxy X-Forwarded-Host/Proto are honoured → https://foo.com/files/<id>', async () => {
    assert.match(await create(proxy, { 'X-Forwarded-Host': 'foo.com', 'X-Forwarded-Proto': 'https' }), loc('https://foo.com/files/'));
  });

  it('L3 Forwarded beats X-Forwarded-* → https://upload.example.tld/files/<id>', async () => {
    const l = await create(proxy, {
      Forwarded: 'for=192.168.10.112;host=upload.example.tld;proto=https;proto-version=',
      'X-Forwarded-Host': 'bar.com',
      'X-Forwarded-Proto': 'http',
    });
    assert.match(l, loc('https://upload.example.tld/files/'));
  });

  it('L4 a quoted Forwarded host with a port → https://upload.example.tld:8443/files/<id>', async () => {
    assert.match(await create(proxy, { Forwarded: 'host="upload.example.tld:8443";proto=https' }), loc('https://upload.example.tld:8443/files/'));
  });

  it('L5 invalid protos (X-Forwarded-Proto: aaa, Forwarded: proto=bbb) are ignored → http://tus.io/files/<id>', async () => {
    assert.match(await create(proxy, { 'X-Forwarded-Proto': 'aaa' }), loc('http://tus.io/files/'));
    assert.match(await create(proxy, { Forwarded: 'proto=bbb' }), loc('http://tus.io/files/'));
  });

  it('L6 default ports are stripped: upload.example.tld:443 over https → https://upload.example.tld/files/<id>', async () => {
    assert.match(
      await create(proxy, { 'X-Forwarded-Host': 'upload.example.tld:443', 'X-Forwarded-Proto': 'https' }),
      loc('https://upload.example.tld/files/'),
    );
    assert.match(await create(proxy, { 'X-Forwarded-Host': 'upload.example.tld:80', 'X-Forwarded-Proto': 'http' }), loc('http://upload.example.tld/files/'));
    // A non-default port stays.
    assert.match(await create(proxy, { 'X-Forwarded-Host': 'upload.example.tld:80', 'X-Forwarded-Proto': 'https' }), loc('https://upload.example.tld:80/files/'));
  });

  it('L7 "Forwarded: invalid" falls back to Host; with TUSD_HANDLER_BASE_PATH=/ → http://localhost:3000/<id>', async () => {
    assert.match(await create(proxy, { Forwarded: 'invalid' }), loc('http://tus.io/files/'));

    const root = await startServer({ env: { TUSD_HANDLER_BASE_PATH: '/' } });
    try {
      const res = await request({ method: 'POST', url: `${root.url}/`, headers: withManifest({ ...TR, 'Upload-Length': '2', Host: 'localhost:3000' }) });
      assert.equal(res.status, 201, res.body);
      const l = String(res.headers.location);
      assert.match(l, loc('http://localhost:3000/'));
      const p = await patch(`${root.url}${new URL(l).pathname}`, 0, 'hi');
      assert.equal(p.status, 204);
      const h = await head(`${root.url}${new URL(l).pathname}`);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], '2');
      // The DEX root document is still served at GET /.
      const doc = await request({ method: 'GET', url: `${root.url}/` });
      assert.equal(doc.status, 200);
      assert.equal(JSON.parse(doc.body).system, 'DEX');
    } finally {
      await root.cleanup();
    }
  });

  it('L8 a final upload\'s Upload-Concat echo uses the generated absolute URLs (forwarded host and proto)', async () => {
    const fwd = { 'X-Forwarded-Host': 'foo.com', 'X-Forwarded-Proto': 'https' };
    const a = await createUpload(proxy.url, { length: 1, body: 'a', headers: { 'Upload-Concat': 'partial' } });
    const b = await createUpload(proxy.url, { length: 1, body: 'b', headers: { 'Upload-Concat': 'partial' } });
    const res = await request({
      method: 'POST',
      url: `${proxy.url}/files/`,
      headers: withManifest({ ...TR, ...fwd, 'Upload-Concat': `final;/files/${a.id} /files/${b.id}` }),
    });
    assert.equal(res.status, 201, res.body);
    assert.match(String(res.headers.location), loc('https://foo.com/files/'));
    const h = await head(onServer(proxy, String(res.headers.location)), { ...TR, ...fwd });
    assert.equal(h.headers['upload-concat'], `final;https://foo.com/files/${a.id} https://foo.com/files/${b.id}`);
  });
});

// ------------------------------------------------------------------------------------------------------------------
describe('N. Locking / concurrent requests', () => {
  const SIZE = 50_000;

  it('N1 HEAD, PATCH, DELETE, GET and a POST with a body all take the upload lock (each pre-empts a stalled body)', async () => {
    const data = randomBytes(SIZE);
    const competitors: Array<[string, (url: string) => Promise<Response>, (r: Response, url: string, id: string) => Promise<void>]> = [
      ['HEAD', (url) => head(url), async (r) => {
        assert.equal(r.status, 200);
        assert.equal(r.headers['upload-offset'], '1000');
      }],
      ['PATCH', (url) => patch(url, 1000, data.subarray(1000)), async (r, _url, id) => {
        assert.equal(r.status, 204);
        assert.equal(r.headers['upload-offset'], String(SIZE));
        assert.ok((await base.store.read(id)).equals(data));
      }],
      ['DELETE', (url) => request({ method: 'DELETE', url, headers: TR }), async (r, url) => {
        assert.equal(r.status, 204);
        assert.equal((await head(url)).status, 404);
      }],
      ['GET', (url) => request({ method: 'GET', url }), async (r) => {
        assert.equal(r.status, 404, 'an unfinished upload is not served');
      }],
    ];
    for (const [name, compete, check] of competitors) {
      const { id, url } = await createUpload(base.url, { length: SIZE });
      const conn = await stalledPatch(base, id, data, 1000);
      const r = await compete(url);
      const held = await conn.response;
      assert.equal(held.status, 400, `${name}: the stalled PATCH is interrupted`);
      assertCode(held, 'ERR_UPLOAD_INTERRUPTED');
      await check(r, url, id);
      conn.destroy();
    }

    // POST with a body: the new upload's id is found in the store while its body is stalled.
    const before = await storedIds(base);
    const conn = new RawConn(base.port);
    conn.head('POST', '/files/', withManifest({ ...TR, ...OOS, 'Upload-Length': SIZE, 'Content-Length': SIZE }));
    conn.write(data.subarray(0, 1000));
    let id = '';
    await waitFor(async () => {
      const fresh = [...(await storedIds(base))].filter((x) => !before.has(x));
      if (fresh.length !== 1) return false;
      id = fresh[0]!;
      return (await base.store.size(id)) === 1000;
    }, 'the POST body stored');
    const h = await head(`${base.url}/files/${id}`);
    const held = await conn.response;
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '1000');
    assert.equal(held.status, 400);
    assertCode(held, 'ERR_UPLOAD_INTERRUPTED');
    assert.match(held.headers.location ?? '', new RegExp(`/files/${id}$`), 'the interrupted creation still names its upload');
    conn.destroy();
  });

  it('N2 the holder is asked to release: it saves what it has, unlocks, answers 400 ERR_UPLOAD_INTERRUPTED; the newcomer proceeds', async () => {
    const data = randomBytes(SIZE);
    const { id, url } = await createUpload(base.url, { length: SIZE });
    const conn = await stalledPatch(base, id, data, 4321);
    const [h, held] = await Promise.all([head(url), conn.response]);
    assert.equal(held.status, 400);
    assertCode(held, 'ERR_UPLOAD_INTERRUPTED');
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '4321');
    assert.ok((await base.store.read(id)).equals(data.subarray(0, 4321)), 'the bytes that arrived are kept');
    // Bytes the holder's client keeps sending after the interruption are not appended.
    conn.write(data.subarray(4321, 9000));
    await sleep(200);
    assert.equal((await head(url)).headers['upload-offset'], '4321');
    conn.destroy();
  });

  it('N3 a HEAD pre-empts a slow PATCH (50 KiB at ~5 KB/s) which answers 400 ERR_UPLOAD_INTERRUPTED; a PATCH from the HEAD offset completes', async () => {
    const total = 50 * 1024;
    const data = randomBytes(total);
    const { id, url } = await createUpload(base.url, { length: total });
    const conn = new RawConn(base.port);
    conn.head('PATCH', `/files/${id}`, { ...TR, ...OOS, 'Upload-Offset': 0, 'Content-Length': total });
    const sender = drip(conn, data, 500, 100);
    await sleep(2000);
    const h = await head(url);
    assert.equal(h.status, 200);
    const offset = Number(h.headers['upload-offset']);
    assert.ok(offset > 0 && offset < total, `HEAD offset ${offset} is part-way`);
    const held = await conn.response;
    sender.stop();
    await sender.done;
    assert.equal(held.status, 400);
    assertCode(held, 'ERR_UPLOAD_INTERRUPTED');
    assert.ok(sender.sent < total, 'the PATCH was answered before its body was complete');
    conn.destroy();

    const again = await head(url);
    assert.equal(Number(again.headers['upload-offset']), offset, 'the offset is stable after the interruption');
    const rest = await patch(url, offset, data.subarray(offset));
    assert.equal(rest.status, 204);
    assert.equal(rest.headers['upload-offset'], String(total));
    assert.ok((await base.store.read(id)).equals(data));
  });

  it('N4 a paused download does not hold the lock: HEAD and DELETE answer at once, the download still completes (the lock timeout itself: hooks.test.ts)', { timeout: 120_000 }, async () => {
    const b = await big();
    const conn = await heldDownload(b.id);
    const h = await head(b.url);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], String(b.size));
    const del = await request({ method: 'DELETE', url: b.url, headers: TR });
    assert.equal(del.status, 204);
    assert.equal((await head(b.url)).status, 404);

    // The download opened the data before the DELETE: reading on, it gets every byte.
    conn.resume();
    const res = await conn.response;
    assert.equal(res.status, 200);
    assert.equal(res.body.length, b.size);
    assert.equal(sha256(res.body), b.hash);
    conn.destroy();
  });

  it('N5 aborting a waiting request stops its lock acquisition (MemoryLocker directly; over HTTP: hooks.test.ts)', async () => {
    // In-process: the waiter's abort rejects it with a timeout error while the holder still holds the lock.
    const locker = new MemoryLocker();
    const holder = locker.newLock('u1');
    let asked = 0;
    await holder.lock(new AbortController().signal, () => asked++);
    const ctl = new AbortController();
    const waiting = locker.newLock('u1').lock(ctl.signal, () => {});
    await sleep(10);
    assert.equal(asked, 1, 'the holder was asked to release');
    ctl.abort();
    await assert.rejects(waiting, LockTimeoutError);
    await holder.unlock();
    const next = locker.newLock('u1');
    await next.lock(AbortSignal.timeout(1000), () => {});
    await next.unlock();
  });

  it('N6 unlocking a lock that is not held throws (MemoryLocker directly)', async () => {
    const locker = new MemoryLocker();
    await assert.rejects(locker.newLock('u2').unlock(), /not held/);
    const a = locker.newLock('u2');
    await a.lock(new AbortController().signal, () => {});
    // Another Lock object for the same id does not hold it and cannot release it.
    await assert.rejects(locker.newLock('u2').unlock(), /not held/);
    await a.unlock();
    await assert.rejects(a.unlock(), /not held/, 'a second unlock throws');
    const c = locker.newLock('u2');
    await c.lock(AbortSignal.timeout(1000), () => {});
    await c.unlock();
  });

  it('N7 DELETE right after an aborted PATCH (plain or checksummed) → 204, not stuck', async () => {
    const data = randomBytes(SIZE);
    for (const extra of [{}, { 'Upload-Checksum': `sha1 ${createHash('sha1').update(data).digest('base64')}` }] as OutgoingHttpHeaders[]) {
      const { id, url } = await createUpload(base.url, { length: SIZE });
      const conn = await stalledPatch(base, id, data, 1000, extra);
      conn.destroy();
      const del = await request({ method: 'DELETE', url, headers: TR });
      assert.equal(del.status, 204, JSON.stringify(extra));
      assert.equal((await head(url)).status, 404);
      await waitFor(async () => !(await base.store.names()).some((n) => n.startsWith(id)), 'all files of the upload removed');
    }
  });
});

// ------------------------------------------------------------------------------------------------------------------
describe('O. IDs / paths / security', () => {
  it('O1 DELETE /files/..%2Foutside-victim (and variants) → 404; files outside the store dir are untouched', async () => {
    // Beside the store's folder (or prefix), and in the server's own folder.
    const local = path.join(base.dir, 'outside-victim');
    await writeFile(local, 'precious');
    await base.store.write('../outside-victim', 'precious');
    // A victim shaped like an upload, outside the store.
    const fakeId = '11111111-1111-4111-8111-111111111111';
    await base.store.write(`../${fakeId}`, 'precious');
    await base.store.write(`../${fakeId}.info`, JSON.stringify({ ID: fakeId, Size: 8, Offset: 8, MetaData: {} }));
    const targets = [
      '/files/..%2Foutside-victim',
      '/files/..%2F..%2Foutside-victim',
      '/files/%2E%2E%2Foutside-victim',
      '/files/..%5Coutside-victim',
      '/files/%2e%2e%2f%2e%2e%2foutside-victim',
      `/files/..%2F${fakeId}`,
      '/files/../outside-victim',
    ];
    for (const t of targets) {
      for (const method of ['DELETE', 'HEAD', 'PATCH', 'GET']) {
        const c = new RawConn(base.port, { noBody: method === 'HEAD' });
        c.head(method, t, { ...TR, ...(method === 'PATCH' ? { ...OOS, 'Upload-Offset': 0, 'Content-Length': 0 } : {}), Connection: 'close' });
        const res = await c.response;
        assert.equal(res.status, 404, `${method} ${t}`);
      }
    }
    assert.equal(await readFile(local, 'utf8'), 'precious');
    assert.equal(await base.store.exists(`../${fakeId}.info`), true, `${fakeId}.info still exists`);
    for (const v of ['../outside-victim', `../${fakeId}`]) assert.equal((await base.store.read(v)).toString(), 'precious', `${v} untouched`);
  });

  it('O2 (client ids do not apply) only our lower-case UUIDs name uploads: %2F, \\, NUL, broken %, non-UUID, upper-case → 404', async () => {
    const { id, url } = await finished(base.url, 'abc');
    const enc = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
    // The last segment is URL-decoded: an id with an escaped character still names the upload.
    const escaped = await head(`${base.url}/files/${enc(id[0]!)}${id.slice(1)}`);
    assert.equal(escaped.status, 200);
    assert.equal(escaped.headers['upload-offset'], '3');
    const broken = await request({ method: 'DELETE', url: `${base.url}/files/${id.slice(0, -1)}%`, headers: TR });
    assert.equal(broken.headers['tus-resumable'], '1.0.0', 'an undecodable URL still gets a tus answer');
    assert.equal(broken.headers['content-type'], 'text/plain; charset=utf-8');
    for (const seg of [
      '1234%205%23',
      `${id.slice(0, 8)}%2F${id.slice(9)}`,
      `a%2F${id}`,
      `${id}%00`,
      `${id}%5C`,
      `${id.slice(0, -1)}%`,
      `${id}%zz`,
      'file..name',
      id.toUpperCase(),
      `${id}x`,
      `${id}.info`,
      '00000000-0000-0000-0000-000000000000',
    ]) {
      const res = await request({ method: 'DELETE', url: `${base.url}/files/${seg}`, headers: TR });
      assert.equal(res.status, 404, seg);
      assertCode(res, 'ERR_UPLOAD_NOT_FOUND');
    }
    // The client cannot choose an id: POST on an upload URL is not creation.
    const own = await request({ method: 'POST', url: `${base.url}/files/my-own-id`, headers: withManifest({ ...TR, 'Upload-Length': '1' }) });
    assert.equal(own.status, 404);
    assertCode(own, 'ERR_UPLOAD_NOT_FOUND');
    const post = await request({ method: 'POST', url, headers: withManifest({ ...TR, 'Upload-Length': '1' }) });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD, PATCH, DELETE');
    assert.equal((await head(url)).status, 200, 'the upload survived all of the above');
  });

  it('O3 stray files and folders in the store dir break nothing (start-up, clean-up sweeps, uploads) and are left alone', { timeout: 60_000 }, async () => {
    const strays: Record<string, string> = {
      'README.txt': 'hello',
      '.DS_Store': '\0\0',
      'junk.info': '{not json',
      'empty.info': '',
      '22222222-2222-4222-8222-222222222222.info': '[]',
      '33333333-3333-4333-8333-333333333333': 'data without info',
      'subdir/nested.info': '{}',
    };
    // Put into the store (with two folders) before the server starts.
    const s = await startServer({ seed: { 'subdir/': '', 'folder.info/': '', ...strays }, env: { TUS_UPLOAD_EXPIRATION: '1' } });
    try {
      // Each sweep warns once about the unreadable `junk.info`.
      const sweeps = () => s.logs().split('"uploadId":"junk"').length - 1;
      const { url, id } = await finished(s.url, 'survivor');
      await waitFor(() => sweeps() >= 2, 'two clean-up sweeps over the stray files');
      assert.equal((await head(url)).status, 200, 'a finished upload survives the sweeps');
      const second = await finished(s.url, 'second');
      assert.equal((await head(second.url)).headers['upload-offset'], '6');
      for (const seg of ['README.txt', 'junk', '33333333-3333-4333-8333-333333333333', '22222222-2222-4222-8222-222222222222']) {
        const r = await head(`${s.url}/files/${seg}`);
        assert.equal(r.status, 404, `HEAD ${seg}`);
      }
      const health = await request({ method: 'GET', url: `${s.url}/health` });
      assert.equal(health.status, 200);
      for (const [n, c] of Object.entries(strays)) assert.equal((await s.store.read(n)).toString(), c, `${n} untouched`);
      assert.equal((await s.store.read(id)).toString(), 'survivor');
      assert.equal(s.proc.exitCode, null, 'the server is still running');
    } finally {
      await s.cleanup();
    }
  });

  it('O4 ids are random lower-case UUID v4 (122 random bits); two creations differ; the id is the stored file name', async () => {
    const a = await createUpload(base.url, { length: 1 });
    const b = await createUpload(base.url, { length: 1 });
    for (const u of [a, b]) {
      assert.match(u.id, UUID_V4);
      assert.equal(u.url, `${base.url}/files/${u.id}`);
      assert.equal(await base.store.exists(u.id), true);
      assert.equal(await base.store.exists(`${u.id}.info`), true);
    }
    assert.notEqual(a.id, b.id);
  });

  it('O5 a long X-Request-ID never reaches the logs beyond 36 characters', async () => {
    const rid = `rid-${randomBytes(48).toString('hex')}`;
    const res = await request({ method: 'POST', url: `${base.url}/files/`, headers: withManifest({ ...TR, 'Upload-Length': '1', 'X-Request-ID': rid }) });
    assert.equal(res.status, 201);
    const bad = await request({ method: 'PATCH', url: String(res.headers.location), headers: { ...TR, 'X-Request-ID': rid } });
    assert.equal(bad.status, 415);
    await sleep(100);
    assert.ok(!base.logs().includes(rid.slice(0, 37)), 'no more than 36 characters of the request id are logged');
  });
});
