// Conformance list groups F (HEAD), G (PATCH) and H (DELETE) of tus-protocol.md §2, plus the checksum extension,
// against the real server. Raw node:http requests for ordinary exchanges; raw node:net sockets where the test needs
// exact bytes, slow or chunked bodies, or a body cut mid-stream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { startServer, type RunningServer } from '../helpers/server.js';
import { startInProcess, type InProcessServer } from '../helpers/in-process.js';
import { createUpload, head, patch, request, b64, OOS, TR, type Response } from '../helpers/http.js';
import { clientPairs, creationMetadata, MANIFEST_MODE, VALID_MANIFEST, withManifest } from '../helpers/manifest-mode.js';
import { CHECKSUM_ALGORITHMS, checksumOf } from '../helpers/checksum.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value other than undefined; fails after `timeoutMs` (a deadline against hangs only). */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Waits until the store holds exactly `size` bytes of `id` (whichever backend: test/helpers/backend.ts). */
function waitForStored(s: RunningServer, id: string, size: number): Promise<true> {
  return waitFor(`${id} to hold ${size} bytes in the store`, async () => ((await s.store.size(id)) === size ? true : undefined));
}

const stored = (s: RunningServer, id: string) => s.store.read(id);

function assertErrorCode(res: Response | RawResponse, status: number, code: string): void {
  const body = Buffer.isBuffer(res.body) ? res.body.toString() : res.body;
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${body}`);
  assert.match(body, new RegExp(`^${code}: .+\\n$`));
  assert.match(String(res.headers['content-type']), /^text\/plain; charset=utf-8$/);
  assert.equal(res.headers['tus-resumable'], '1.0.0');
}

// ---------------------------------------------------------------------------------------------------------------
// Raw socket client: writes exact bytes, reads one HTTP/1.1 response.

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** Bytes after the response head, however many arrived before the connection closed. */
  rest: Buffer;
}

class RawClient {
  private buf = Buffer.alloc(0);
  private parsed: RawResponse | null = null;
  private bodyLength = -1;
  private resolveResponse!: (r: RawResponse | null) => void;
  /** The response, or null when the connection closed without one. */
  readonly response: Promise<RawResponse | null>;
  readonly closed: Promise<void>;
  got: RawResponse | null = null;
  isClosed = false;

  private constructor(readonly socket: net.Socket) {
    this.response = new Promise((r) => (this.resolveResponse = r));
    this.closed = new Promise((r) =>
      socket.once('close', () => {
        this.isClosed = true;
        if (this.parsed) this.parsed.rest = this.buf.subarray(this.headEnd);
        if (this.parsed && !this.got) this.deliver();
        this.resolveResponse(null);
        r();
      }),
    );
    socket.on('error', () => {}); // the server may close or reset while we are still sending
    socket.on('data', (d: Buffer) => this.onData(d));
  }

  private headEnd = 0;

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    if (!this.parsed) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.headEnd = end + 4;
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)?.[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
      }
      this.parsed = { status, headers, body: Buffer.alloc(0), rest: Buffer.alloc(0) };
      if (status === 204 || status === 304) this.bodyLength = 0;
      else if (headers['content-length'] !== undefined) this.bodyLength = Number(headers['content-length']);
    }
    this.parsed.rest = this.buf.subarray(this.headEnd);
    if (!this.got && this.bodyLength >= 0 && this.parsed.rest.length >= this.bodyLength) this.deliver();
  }

  private deliver(): void {
    const p = this.parsed!;
    p.body = this.bodyLength >= 0 ? p.rest.subarray(0, this.bodyLength) : p.rest;
    this.got = p;
    this.resolveResponse(p);
  }

  /** Resolves true once the bytes are handed to the kernel, false when the connection is gone. */
  write(data: string | Buffer): Promise<boolean> {
    if (this.socket.destroyed || !this.socket.writable) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(data, (err) => resolve(!err)));
  }

  /** Waits for the response, failing after a generous deadline. */
  async awaitResponse(what: string, timeoutMs = 15_000): Promise<RawResponse> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no response within ${timeoutMs} ms: ${what}`)), timeoutMs);
    });
    try {
      const r = await Promise.race([this.response, deadline]);
      assert.ok(r, `connection closed without a response: ${what}`);
      return r;
    } finally {
      clearTimeout(timer);
    }
  }

  async awaitClosed(what: string, timeoutMs = 15_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms: ${what}`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A request head with exact header lines (Host first). */
function requestHead(method: string, url: string, headers: Record<string, string | number>): string {
  const u = new URL(url);
  const lines = [`${method} ${u.pathname} HTTP/1.1`, `Host: ${u.host}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** A raw PATCH whose head is sent at once; the body is written by the test. */
async function startPatch(s: RunningServer, url: string, offset: number, headers: Record<string, string | number>): Promise<RawClient> {
  const c = await RawClient.connect(s.port);
  await c.write(requestHead('PATCH', url, { ...TR, ...OOS, 'Upload-Offset': offset, ...headers }));
  return c;
}

const chunk = (data: Buffer) => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
const LAST_CHUNK = '0\r\n\r\n';

/** Writes `data` in pieces of `piece` bytes (chunk-framed when `chunked`), stopping once the server has answered. */
async function sendUntilAnswered(c: RawClient, data: Buffer, opts: { piece: number; chunked: boolean; delayMs?: number }): Promise<number> {
  let sent = 0;
  while (sent < data.length && !c.got && !c.isClosed) {
    const part = data.subarray(sent, sent + opts.piece);
    if (!(await c.write(opts.chunked ? chunk(part) : part))) break;
    sent += part.length;
    if (opts.delayMs) await sleep(opts.delayMs);
  }
  if (opts.chunked && sent === data.length && !c.got && !c.isClosed) await c.write(LAST_CHUNK);
  return sent;
}

// ---------------------------------------------------------------------------------------------------------------

describe('tus conformance F (HEAD), G (PATCH), H (DELETE) and checksum', () => {
  describe('server with TUS_MAX_SIZE=1048576', () => {
    const MAX = MiB;
    let s: RunningServer;
    before(async () => {
      s = await startServer({ env: { TUS_MAX_SIZE: String(MAX) } });
    });
    after(async () => {
      await s.cleanup();
    });

    // ---------------------------------------------------------------- F. HEAD
    it('F1 HEAD reports offset, length, no-store and the metadata', async () => {
      const metadata = `name ${b64('lunrjs.png')},empty`;
      const data = randomBytes(11);
      const { url } = await createUpload(s.url, { length: 44, metadata });
      assert.equal((await patch(url, 0, data)).status, 204);
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.equal(h.headers['upload-length'], '44');
      assert.equal(h.headers['cache-control'], 'no-store');
      assert.equal(h.headers['tus-resumable'], '1.0.0');
      // A key with an empty value is echoed as the key alone (decisions.md).
      assert.equal(clientPairs(h.headers['upload-metadata']), metadata);
      assert.equal(h.headers['upload-defer-length'], undefined);
      assert.equal(h.body, '');
    });

    it('F2 HEAD of an unknown id is 404 with no body and no Upload-Offset', async () => {
      const h = await head(`${s.url}/files/${randomUUID()}`);
      assert.equal(h.status, 404);
      assert.equal(h.body, '');
      assert.equal(h.headers['upload-offset'], undefined);
      assert.equal(h.headers['tus-resumable'], '1.0.0');
      const bad = await head(`${s.url}/files/dont_exist`);
      assert.equal(bad.status, 404);
      assert.equal(bad.headers['upload-offset'], undefined);
      assert.equal(bad.headers['tus-resumable'], '1.0.0');
    });

    it('F3 HEAD /files/ (no id) is refused without Upload-Offset (ours: 405 Allow: POST)', async () => {
      // tus-protocol.md lists 404 (node); our server answers every non-POST method on the base path 405 Allow: POST.
      for (const p of ['/files/', '/files']) {
        const h = await head(`${s.url}${p}`);
        assert.equal(h.status, 405, p);
        assert.equal(h.headers.allow, 'POST');
        assert.equal(h.headers['upload-offset'], undefined);
        assert.equal(h.headers['tus-resumable'], '1.0.0');
        assert.equal(h.body, '');
      }
    });

    it('F4 HEAD: deferred length sends Upload-Defer-Length: 1 and no Upload-Length; known length the reverse', async () => {
      const deferred = await createUpload(s.url, { defer: true });
      let h = await head(deferred.url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.equal(h.headers['upload-length'], undefined);
      assert.equal(h.headers['upload-offset'], '0');

      // Once the length is declared (in a PATCH) it is reported and the deferral is gone.
      const p = await patch(deferred.url, 0, 'abc', { 'Upload-Length': '7' });
      assert.equal(p.status, 204);
      h = await head(deferred.url);
      assert.equal(h.headers['upload-length'], '7');
      assert.equal(h.headers['upload-defer-length'], undefined);
      assert.equal(h.headers['upload-offset'], '3');

      const known = await createUpload(s.url, { length: 12 });
      h = await head(known.url);
      assert.equal(h.headers['upload-length'], '12');
      assert.equal(h.headers['upload-defer-length'], undefined);
    });

    it('F5 HEAD echoes the metadata exactly as the client sent it; none sent → only the two server-added pairs', async () => {
      for (const metadata of [`filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential`, `is_confidential,foo ${b64('bar')}`]) {
        const { url } = await createUpload(s.url, { length: 10, metadata });
        const h = await head(url);
        assert.equal(h.status, 200);
        const echoed = String(h.headers['upload-metadata']);
        // Order preserved, key-only stays key-only; the manifest (manifest mode) and server-added pairs come after.
        assert.ok(echoed.startsWith(`${metadata},`), `${echoed} starts with ${metadata}`);
        assert.equal(clientPairs(echoed), metadata);
      }
      // The server always adds dex_ingest_datetime and upload_id (decisions.md), so no client pairs leaves just those
      // (after the manifest's pairs, echoed as sent, in manifest mode).
      const { url, id } = await createUpload(s.url, { length: 10 });
      const h = await head(url);
      assert.equal(h.status, 200);
      const echoed = String(h.headers['upload-metadata']);
      const manifest = creationMetadata();
      if (manifest !== undefined) assert.ok(echoed.startsWith(`${manifest},`), `${echoed} starts with the manifest`);
      const pairs = echoed.split(',').map((p) => p.split(' '));
      const manifestKeys = MANIFEST_MODE ? Object.keys(VALID_MANIFEST) : [];
      assert.deepEqual(pairs.map((p) => p[0]), [...manifestKeys, 'dex_ingest_datetime', 'upload_id']);
      assert.equal(Buffer.from(pairs.at(-1)![1]!, 'base64').toString(), id);
      assert.equal(clientPairs(String(h.headers['upload-metadata'])), '');
    });

    it('F6 HEAD after a full upload: Upload-Offset == Upload-Length == 960244, metadata still present', async () => {
      const data = randomBytes(960_244);
      const metadata = `filename ${b64('big file.bin')},filetype ${b64('application/octet-stream')}`;
      const { url, id } = await createUpload(s.url, { length: data.length, metadata });
      for (let off = 0; off < data.length; off += 400_000) {
        const part = data.subarray(off, off + 400_000);
        const p = await patch(url, off, part);
        assert.equal(p.status, 204);
        assert.equal(p.headers['upload-offset'], String(off + part.length));
      }
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.equal(h.headers['upload-length'], String(data.length));
      assert.equal(clientPairs(h.headers['upload-metadata']), metadata);
      assert.ok((await stored(s, id)).equals(data), 'stored bytes equal the uploaded bytes');
    });

    it('F7 HEAD of partial and final uploads carries Upload-Concat (absolute URLs, single spaces)', async () => {
      const a = await createUpload(s.url, { length: 5, body: 'hello', headers: { 'Upload-Concat': 'partial' } });
      const b = await createUpload(s.url, { length: 5, body: 'world', headers: { 'Upload-Concat': 'partial' } });
      const ha = await head(a.url);
      assert.equal(ha.headers['upload-concat'], 'partial');
      assert.equal(ha.headers['upload-offset'], '5');
      const final = await createUpload(s.url, { headers: { 'Upload-Concat': `final;${a.url} ${b.url}` } });
      const h = await head(final.url);
      assert.equal(h.status, 200);
      assert.match(a.url, /^http:\/\//);
      assert.equal(h.headers['upload-concat'], `final;${a.url} ${b.url}`);
      assert.equal(h.headers['upload-length'], '10');
      assert.equal(h.headers['upload-offset'], '10');
      assert.equal((await stored(s, final.id)).toString(), 'helloworld');
    });

    it('F9 HEAD takes the lock: an in-flight PATCH is pre-empted and HEAD reports the bytes it stored', async () => {
      const { url, id } = await createUpload(s.url, { length: 1000 });
      const c = await startPatch(s, url, 0, { 'Content-Length': 1000 });
      const first = randomBytes(100);
      await c.write(first);
      await waitForStored(s, id, first.length);
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(first.length));
      const r = await c.awaitResponse('pre-empted PATCH');
      assertErrorCode(r, 400, 'ERR_UPLOAD_INTERRUPTED');
      assert.equal(r.headers['upload-offset'], undefined);
      c.destroy();
      assert.ok((await stored(s, id)).equals(first));
    });

    // ---------------------------------------------------------------- G. PATCH
    it('G1 PATCH at offset 5 of a 10-byte upload → 204 Upload-Offset: 10, and the upload is finished', async () => {
      const { url, id } = await createUpload(s.url, { length: 10 });
      assert.equal((await patch(url, 0, 'abcde')).status, 204);
      const p = await patch(url, 5, 'hello');
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], '10');
      assert.equal((await stored(s, id)).toString(), 'abcdehello');
      // As in tusd, `.info` keeps the upload's declared state; the offset is what is on disk.
      const info = await s.store.readInfo(id);
      assert.equal(info.Size, 10);
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], '10');
      assert.equal(h.headers['upload-length'], '10');
    });

    it('G2 PATCH of a complete upload at its length with an empty body → 204, nothing written', async () => {
      const data = randomBytes(20);
      const { url, id } = await createUpload(s.url, { length: 20, body: data });
      const before = await s.store.size(id);
      const p = await patch(url, 20, '');
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], '20');
      assert.ok((await stored(s, id)).equals(data));
      assert.equal(await s.store.size(id), before);
    });

    it('G3 PATCH of an unknown id or of the base path is refused with Tus-Resumable', async () => {
      for (const u of [`${s.url}/files/${randomUUID()}`, `${s.url}/files/dont_exist`]) {
        const p = await patch(u, 0, 'hello');
        assertErrorCode(p, 404, 'ERR_UPLOAD_NOT_FOUND');
        assert.equal(p.headers['upload-offset'], undefined);
      }
      // The list says 404 for `PATCH /files/`; ours answers every non-POST method on the base path 405 Allow: POST.
      const base = await patch(`${s.url}/files/`, 0, 'hello');
      assertErrorCode(base, 405, 'ERR_METHOD_NOT_ALLOWED');
      assert.equal(base.headers.allow, 'POST');
    });

    it('G4 PATCH at a wrong offset is 409 and changes nothing', async () => {
      const { url, id } = await createUpload(s.url, { length: 10 });
      assertErrorCode(await patch(url, 10, 'x'), 409, 'ERR_MISMATCHED_OFFSET');
      assert.equal(await s.store.size(id), 0);
      assert.equal((await patch(url, 0, 'abcde')).status, 204);
      for (const wrong of [4, 6, 10]) {
        const p = await patch(url, wrong, 'f');
        assertErrorCode(p, 409, 'ERR_MISMATCHED_OFFSET');
        assert.equal(p.headers['upload-offset'], undefined);
      }
      assert.equal((await stored(s, id)).toString(), 'abcde');
      assert.equal((await head(url)).headers['upload-offset'], '5');
    });

    it('G5 PATCH whose Content-Length goes beyond the upload length → 413 before any byte is read', async () => {
      const { url, id } = await createUpload(s.url, { length: 10, body: 'abcde' });
      const body = randomBytes(26);
      // Only the head is sent: the answer comes before a single body byte is on the wire.
      const c = await startPatch(s, url, 5, { 'Content-Length': body.length });
      const r = await c.awaitResponse('413 for an oversize Content-Length');
      assertErrorCode(r, 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      assert.equal(r.headers['upload-offset'], undefined);
      c.destroy();
      assert.equal((await stored(s, id)).toString(), 'abcde');
      assert.equal((await head(url)).headers['upload-offset'], '5');
    });

    it('G6 PATCH with a wrong or missing Content-Type → 415, nothing stored', async () => {
      const { url, id } = await createUpload(s.url, { length: 10 });
      const wrong = await request({
        method: 'PATCH',
        url,
        headers: { ...TR, 'Content-Type': 'application/fail', 'Upload-Offset': '0' },
        body: 'hello',
      });
      assertErrorCode(wrong, 415, 'ERR_INVALID_CONTENT_TYPE');
      const missing = await request({ method: 'PATCH', url, headers: { ...TR, 'Upload-Offset': '0' }, body: 'hello' });
      assertErrorCode(missing, 415, 'ERR_INVALID_CONTENT_TYPE');
      assert.equal(await s.store.size(id), 0);
      assert.equal((await head(url)).headers['upload-offset'], '0');
    });

    it('G7 PATCH with Upload-Offset -5 or without Upload-Offset → 400', async () => {
      const { url, id } = await createUpload(s.url, { length: 10 });
      assertErrorCode(await patch(url, 0, 'hello', { 'Upload-Offset': '-5' }), 400, 'ERR_INVALID_OFFSET');
      const missing = await request({ method: 'PATCH', url, headers: { ...TR, ...OOS }, body: 'hello' });
      assertErrorCode(missing, 400, 'ERR_INVALID_OFFSET');
      assert.equal(await s.store.size(id), 0);
    });

    it('G8 chunked PATCH longer than the remaining length stores exactly the remaining bytes and answers 413', async () => {
      const { url, id } = await createUpload(s.url, { length: 20, body: 'abcde' });
      const body = randomBytes(26);
      const c = await startPatch(s, url, 5, { 'Transfer-Encoding': 'chunked' });
      await c.write(Buffer.concat([chunk(body), Buffer.from(LAST_CHUNK)]));
      const r = await c.awaitResponse('413 for an oversize chunked body');
      assertErrorCode(r, 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      assert.equal(r.headers['upload-offset'], undefined);
      c.destroy();
      const expected = Buffer.concat([Buffer.from('abcde'), body.subarray(0, 15)]);
      assert.ok((await stored(s, id)).equals(expected), 'exactly the 15 remaining bytes were stored');
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], '20');
    });

    it('G9 a slow chunked body beyond the length is cut with 413 as soon as the limit is reached', async () => {
      const length = 10_240;
      const { url, id } = await createUpload(s.url, { length });
      const body = randomBytes(51_200);
      const c = await startPatch(s, url, 0, { 'Transfer-Encoding': 'chunked' });
      // ~5 KB/s: 512 bytes every 100 ms.
      const sent = await sendUntilAnswered(c, body, { piece: 512, chunked: true, delayMs: 100 });
      const r = await c.awaitResponse('413 for a slow oversize body');
      assertErrorCode(r, 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      // The server answered while the client still had most of the body to send.
      assert.ok(sent < body.length, `answered after ${sent} of ${body.length} bytes`);
      assert.ok(sent >= length);
      c.destroy();
      assert.equal((await head(url)).headers['upload-offset'], String(length));
      assert.ok((await stored(s, id)).equals(body.subarray(0, length)));
    });

    it('G10 1 MiB limit: 512 KiB + 512 KiB → 204, 204; more → 413 (Content-Length and chunked); deferred → ERR_MAX_SIZE_EXCEEDED', async () => {
      const half = MAX / 2;
      const data = randomBytes(MAX);
      const { url, id } = await createUpload(s.url, { length: MAX });
      const p1 = await patch(url, 0, data.subarray(0, half));
      assert.equal(p1.status, 204);
      assert.equal(p1.headers['upload-offset'], String(half));
      const p2 = await patch(url, half, data.subarray(half));
      assert.equal(p2.status, 204);
      assert.equal(p2.headers['upload-offset'], String(MAX));

      const c1 = await startPatch(s, url, MAX, { 'Content-Length': half });
      assertErrorCode(await c1.awaitResponse('413 with Content-Length'), 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      c1.destroy();
      const c2 = await startPatch(s, url, MAX, { 'Transfer-Encoding': 'chunked' });
      await sendUntilAnswered(c2, randomBytes(half), { piece: 64 * KiB, chunked: true });
      assertErrorCode(await c2.awaitResponse('413 with a chunked body'), 413, 'ERR_UPLOAD_SIZE_EXCEEDED');
      c2.destroy();
      assert.ok((await stored(s, id)).equals(data));

      // Deferred length: only TUS_MAX_SIZE bounds the body.
      const d = await createUpload(s.url, { defer: true });
      const big = randomBytes(MAX + half);
      const c3 = await startPatch(s, d.url, 0, { 'Transfer-Encoding': 'chunked' });
      await sendUntilAnswered(c3, big, { piece: 64 * KiB, chunked: true });
      assertErrorCode(await c3.awaitResponse('413 for a deferred upload beyond TUS_MAX_SIZE'), 413, 'ERR_MAX_SIZE_EXCEEDED');
      c3.destroy();
      const h = await head(d.url);
      assert.equal(h.headers['upload-offset'], String(MAX));
      assert.equal(h.headers['upload-defer-length'], '1');
      assert.ok((await stored(s, d.id)).equals(big.subarray(0, MAX)));
      // With Content-Length the same body is refused before it is read.
      const d2 = await createUpload(s.url, { defer: true });
      const c4 = await startPatch(s, d2.url, 0, { 'Content-Length': MAX + 1 });
      assertErrorCode(await c4.awaitResponse('413 for Content-Length beyond TUS_MAX_SIZE'), 413, 'ERR_MAX_SIZE_EXCEEDED');
      c4.destroy();
      assert.equal(await s.store.size(d2.id), 0);
    });

    it('G11 a successful PATCH is 204 with Upload-Offset, no body and no Content-Length', async () => {
      const { url } = await createUpload(s.url, { length: 10 });
      const c = await startPatch(s, url, 0, { 'Content-Length': 4, Connection: 'close' });
      await c.write('abcd');
      const r = await c.awaitResponse('204');
      await c.awaitClosed('Connection: close');
      assert.equal(r.status, 204);
      assert.equal(r.headers['upload-offset'], '4');
      assert.equal(r.headers['tus-resumable'], '1.0.0');
      assert.equal(r.headers['content-length'], undefined);
      assert.equal(r.headers['transfer-encoding'], undefined);
      assert.equal(r.rest.length, 0, 'nothing follows the response head');
    });

    it('G14 PATCH on a final concatenated upload → 403, nothing modified', async () => {
      const a = await createUpload(s.url, { length: 3, body: 'abc', headers: { 'Upload-Concat': 'partial' } });
      const b = await createUpload(s.url, { length: 3, body: 'def', headers: { 'Upload-Concat': 'partial' } });
      const final = await createUpload(s.url, { headers: { 'Upload-Concat': `final;${a.url} ${b.url}` } });
      for (const offset of [0, 6]) {
        const p = await patch(final.url, offset, 'xyz');
        assertErrorCode(p, 403, 'ERR_MODIFY_FINAL');
        assert.equal(p.headers['upload-offset'], undefined);
      }
      assert.equal((await stored(s, final.id)).toString(), 'abcdef');
      assert.equal((await head(final.url)).headers['upload-offset'], '6');
    });

    it('G15 a body cut short after 6 bytes (client half-closes) keeps the 6 bytes; the answer is a 500 without Upload-Offset', async () => {
      const { url, id } = await createUpload(s.url, { length: 20 });
      const c = await startPatch(s, url, 0, { 'Content-Length': 20 });
      const sent = Buffer.from('hello!');
      await c.write(sent);
      c.socket.end(); // FIN: the server still can answer
      const r = await c.awaitResponse('answer to a cut body');
      assertErrorCode(r, 500, 'ERR_INTERNAL_SERVER_ERROR');
      assert.equal(r.headers['upload-offset'], undefined);
      await c.awaitClosed('cut body');
      await waitForStored(s, id, sent.length);
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], String(sent.length));
      assert.ok((await stored(s, id)).equals(sent));
      // The upload resumes from there.
      const p = await patch(url, sent.length, randomBytes(14));
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], '20');
    });

    it('G17 a client that cancels after 20 KiB + 15 KiB has all 35 KiB persisted', async () => {
      const { url, id } = await createUpload(s.url, { length: 100 * KiB });
      const data = randomBytes(35 * KiB);
      const c = await startPatch(s, url, 0, { 'Content-Length': 100 * KiB });
      assert.ok(await c.write(data.subarray(0, 20 * KiB)));
      assert.ok(await c.write(data.subarray(20 * KiB)));
      c.destroy();
      await waitForStored(s, id, data.length);
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.ok((await stored(s, id)).equals(data));
    });

    it('G18 a slow PATCH stores its bytes as they arrive (progress visible on disk) and a later HEAD reports them', async () => {
      const { url, id } = await createUpload(s.url, { length: 300 });
      const data = randomBytes(300);
      const c = await startPatch(s, url, 0, { 'Content-Length': data.length });
      for (let off = 0; off < data.length; off += 100) {
        await c.write(data.subarray(off, off + 100));
        // Still in flight, yet the bytes so far are already stored.
        await waitForStored(s, id, off + 100);
        if (off + 100 < data.length) assert.equal(c.got, null, 'the PATCH is still running');
      }
      const r = await c.awaitResponse('slow PATCH');
      assert.equal(r.status, 204);
      assert.equal(r.headers['upload-offset'], String(data.length));
      c.destroy();
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.ok((await stored(s, id)).equals(data));
    });

    it('G19 (no response-overriding hooks) the PATCH completing an upload answers 204 with Upload-Offset and no body; the upload stays', async () => {
      const data = randomBytes(8);
      const { url, id } = await createUpload(s.url, { length: data.length });
      assert.equal((await patch(url, 0, data.subarray(0, 3))).status, 204);
      const p = await patch(url, 3, data.subarray(3));
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], String(data.length));
      assert.equal(p.body, '');
      const h = await head(url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(data.length));
      assert.ok((await stored(s, id)).equals(data));
    });

    it('G20 (no response-overriding hooks) a one-PATCH 4-byte upload answers 204, Upload-Offset: 4, no body', async () => {
      const { url, id } = await createUpload(s.url, { length: 4 });
      const p = await patch(url, 0, 'abcd');
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], '4');
      assert.equal(p.body, '');
      assert.equal(p.headers['content-length'], undefined);
      assert.equal((await stored(s, id)).toString(), 'abcd');
    });

    it('G22 a connection reset mid-body keeps the bytes received, and the upload resumes from them', async () => {
      const length = 10 * KiB;
      const data = randomBytes(length);
      const { url, id } = await createUpload(s.url, { length });
      const c = await startPatch(s, url, 0, { 'Content-Length': length });
      const half = 5 * KiB;
      await c.write(data.subarray(0, half));
      await waitForStored(s, id, half);
      c.socket.resetAndDestroy(); // RST
      await c.awaitClosed('reset');
      const h = await head(url);
      const onDisk = await s.store.size(id);
      assert.ok(onDisk > 0);
      assert.equal(h.headers['upload-offset'], String(onDisk));
      assert.equal(onDisk, half);
      const p = await patch(url, onDisk, data.subarray(onDisk));
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], String(length));
      assert.ok((await stored(s, id)).equals(data));
    });

    it('G23 full flow: POST Upload-Length: 11 → 201; PATCH "hello world" → 204 Upload-Offset: 11', async () => {
      const res = await request({ method: 'POST', url: `${s.url}/files/`, headers: withManifest({ ...TR, 'Upload-Length': '11' }) });
      assert.equal(res.status, 201);
      const url = String(res.headers.location);
      const p = await patch(url, 0, 'hello world');
      assert.equal(p.status, 204);
      assert.equal(p.headers['upload-offset'], '11');
      assert.equal((await stored(s, url.split('/').pop()!)).toString(), 'hello world');
    });

    // ---------------------------------------------------------------- H. DELETE
    it('H1 DELETE of an existing upload → 204; its files are removed and later requests are 404', async () => {
      const { url, id } = await createUpload(s.url, { length: 10, body: 'hello' });
      const d = await request({ method: 'DELETE', url, headers: TR });
      assert.equal(d.status, 204);
      assert.equal(d.body, '');
      assert.equal(d.headers['tus-resumable'], '1.0.0');
      assert.equal(await s.store.exists(id), false);
      assert.equal(await s.store.exists(`${id}.info`), false);
      assert.equal((await head(url)).status, 404);
      assertErrorCode(await patch(url, 5, 'world'), 404, 'ERR_UPLOAD_NOT_FOUND');
      assertErrorCode(await request({ method: 'DELETE', url, headers: TR }), 404, 'ERR_UPLOAD_NOT_FOUND');
    });

    it('H2 (no pre-terminate hook) DELETE of an unknown id → 404 and other uploads are untouched', async () => {
      const kept = await createUpload(s.url, { length: 10, body: 'hello' });
      const d = await request({ method: 'DELETE', url: `${s.url}/files/${randomUUID()}`, headers: TR });
      assertErrorCode(d, 404, 'ERR_UPLOAD_NOT_FOUND');
      const h = await head(kept.url);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], '5');
      assert.equal((await stored(s, kept.id)).toString(), 'hello');
    });

    it('H3 DELETE of an unknown id or of a path outside the base path → 404', async () => {
      assertErrorCode(await request({ method: 'DELETE', url: `${s.url}/files/dont_exist`, headers: TR }), 404, 'ERR_UPLOAD_NOT_FOUND');
      const outside = await request({ method: 'DELETE', url: `${s.url}/this/is/wrong/123`, headers: TR });
      assert.equal(outside.status, 404);
    });

    it('H4 termination is supported: announced in Tus-Extension, DELETE → 204 (never 501/405)', async () => {
      const o = await request({ method: 'OPTIONS', url: `${s.url}/files/` });
      assert.ok(String(o.headers['tus-extension']).split(',').includes('termination'));
      const { url } = await createUpload(s.url, { length: 10 });
      const d = await request({ method: 'DELETE', url, headers: TR });
      assert.equal(d.status, 204);
      assert.equal((await head(url)).status, 404);
    });

    it('H5 a finished upload can be deleted (204)', async () => {
      const { url, id } = await createUpload(s.url, { length: 5, body: 'hello' });
      assert.equal((await head(url)).headers['upload-offset'], '5');
      const d = await request({ method: 'DELETE', url, headers: TR });
      assert.equal(d.status, 204);
      assert.equal((await head(url)).status, 404);
      assert.equal(await s.store.exists(id), false);
    });

    it('H6 DELETE takes the lock: an in-flight PATCH is pre-empted and the upload is removed', async () => {
      const { url, id } = await createUpload(s.url, { length: 1000 });
      const c = await startPatch(s, url, 0, { 'Content-Length': 1000 });
      await c.write(randomBytes(100));
      await waitForStored(s, id, 100);
      const d = await request({ method: 'DELETE', url, headers: TR });
      assert.equal(d.status, 204);
      const r = await c.awaitResponse('pre-empted PATCH');
      assertErrorCode(r, 400, 'ERR_UPLOAD_INTERRUPTED');
      c.destroy();
      assert.equal((await head(url)).status, 404);
      assert.equal(await s.store.exists(id), false);
      assert.equal(await s.store.exists(`${id}.info`), false);
    });

    // ---------------------------------------------------------------- checksum extension
    const stagedLeft = (id: string) => s.store.staged(id);

    it('checksum: OPTIONS announces the extension and sha1,md5,sha256,sha512,crc32', async () => {
      const o = await request({ method: 'OPTIONS', url: `${s.url}/files/` });
      assert.ok(String(o.headers['tus-extension']).split(',').includes('checksum'));
      assert.equal(o.headers['tus-checksum-algorithm'], 'sha1,md5,sha256,sha512,crc32');
    });

    for (const algorithm of CHECKSUM_ALGORITHMS) {
      it(`checksum: PATCH with a matching ${algorithm} Upload-Checksum → 204 and the bytes are stored`, async () => {
        const data = randomBytes(3000);
        const { url, id } = await createUpload(s.url, { length: 5000 });
        const p = await patch(url, 0, data, { 'Upload-Checksum': `${algorithm} ${checksumOf(algorithm, data)}` });
        assert.equal(p.status, 204, p.body);
        assert.equal(p.headers['upload-offset'], String(data.length));
        assert.ok((await stored(s, id)).equals(data));
        assert.deepEqual(await stagedLeft(id), []);
        // A second checksummed chunk completes the upload.
        const more = randomBytes(2000);
        const p2 = await patch(url, data.length, more, { 'Upload-Checksum': `${algorithm} ${checksumOf(algorithm, more)}` });
        assert.equal(p2.status, 204);
        assert.equal(p2.headers['upload-offset'], '5000');
        assert.ok((await stored(s, id)).equals(Buffer.concat([data, more])));
      });
    }

    it('checksum: a digest that does not match → 460, offset unchanged, nothing of the PATCH stored', async () => {
      const first = Buffer.from('abcde');
      const { url, id } = await createUpload(s.url, { length: 20, body: first });
      const data = randomBytes(10);
      const other = randomBytes(10);
      for (const algorithm of CHECKSUM_ALGORITHMS) {
        const p = await patch(url, first.length, data, { 'Upload-Checksum': `${algorithm} ${checksumOf(algorithm, other)}` });
        assertErrorCode(p, 460, 'ERR_CHECKSUM_MISMATCH');
        assert.equal(p.headers['upload-offset'], undefined);
      }
      // A well-formed digest of the wrong size is a mismatch too.
      assertErrorCode(await patch(url, first.length, data, { 'Upload-Checksum': `sha1 ${b64('short')}` }), 460, 'ERR_CHECKSUM_MISMATCH');
      assert.ok((await stored(s, id)).equals(first));
      assert.equal((await head(url)).headers['upload-offset'], String(first.length));
      assert.deepEqual(await stagedLeft(id), []);
      // The same chunk with its right digest then goes through.
      const ok = await patch(url, first.length, data, { 'Upload-Checksum': `sha256 ${checksumOf('sha256', data)}` });
      assert.equal(ok.status, 204);
      assert.equal(ok.headers['upload-offset'], String(first.length + data.length));
    });

    it('checksum: an unsupported algorithm → 400 ERR_UNSUPPORTED_CHECKSUM_ALGORITHM, nothing stored', async () => {
      const { url, id } = await createUpload(s.url, { length: 10 });
      for (const header of ['crc32c AAAAAA==', 'crc64 AAAAAAAAAAA=', 'sha3-256 AAAA', 'md4 AAAA']) {
        const p = await patch(url, 0, 'hello', { 'Upload-Checksum': header });
        assertErrorCode(p, 400, 'ERR_UNSUPPORTED_CHECKSUM_ALGORITHM');
      }
      assert.equal(await s.store.size(id), 0);
      assert.equal((await head(url)).headers['upload-offset'], '0');
    });

    it('checksum: crc32 is the standard CRC-32 as 4 bytes big-endian (check values of the CRC catalogue)', async () => {
      // The catalogue's check value, independent of any implementation: CRC-32("123456789") = 0xCBF43926.
      const { url } = await createUpload(s.url, { length: 9 });
      const wrongEndian = Buffer.from('2639f4cb', 'hex').toString('base64');
      assertErrorCode(await patch(url, 0, '123456789', { 'Upload-Checksum': `crc32 ${wrongEndian}` }), 460, 'ERR_CHECKSUM_MISMATCH');
      const p = await patch(url, 0, '123456789', { 'Upload-Checksum': `crc32 ${Buffer.from('cbf43926', 'hex').toString('base64')}` });
      assert.equal(p.status, 204, p.body);
      assert.equal(p.headers['upload-offset'], '9');
    });

    it('checksum: crc32 over a large chunked body arriving in many pieces (computed as it streams) → 204', async () => {
      const data = randomBytes(MAX);
      const { url, id } = await createUpload(s.url, { length: data.length });
      const c = await startPatch(s, url, 0, { 'Transfer-Encoding': 'chunked', 'Upload-Checksum': `crc32 ${checksumOf('crc32', data)}` });
      const sent = await sendUntilAnswered(c, data, { piece: 16 * KiB + 3, chunked: true });
      assert.equal(sent, data.length);
      const r = await c.awaitResponse('chunked crc32 PATCH');
      assert.equal(r.status, 204, r.body.toString());
      assert.equal(r.headers['upload-offset'], String(data.length));
      assert.ok((await stored(s, id)).equals(data));
      assert.deepEqual(await stagedLeft(id), []);
      c.destroy();
    });

    it('checksum: a crc32 mismatch over a large body → 460, offset unchanged, nothing of the PATCH stored', async () => {
      const first = randomBytes(1000);
      const { url, id } = await createUpload(s.url, { length: MAX, body: first });
      const data = randomBytes(MAX - first.length);
      const flipped = Buffer.from(data);
      flipped[flipped.length - 1] ^= 1;
      const p = await patch(url, first.length, data, { 'Upload-Checksum': `crc32 ${checksumOf('crc32', flipped)}` });
      assertErrorCode(p, 460, 'ERR_CHECKSUM_MISMATCH');
      assert.equal(p.headers['upload-offset'], undefined);
      assert.equal((await head(url)).headers['upload-offset'], String(first.length));
      assert.ok((await stored(s, id)).equals(first));
      assert.deepEqual(await stagedLeft(id), []);
      const ok = await patch(url, first.length, data, { 'Upload-Checksum': `crc32 ${checksumOf('crc32', data)}` });
      assert.equal(ok.status, 204);
      assert.equal(ok.headers['upload-offset'], String(MAX));
      assert.ok((await stored(s, id)).equals(Buffer.concat([first, data])));
    });

    it('checksum: a malformed Upload-Checksum → 400 ERR_INVALID_CHECKSUM_HEADER, nothing stored', async () => {
      const data = Buffer.from('hello');
      const { url, id } = await createUpload(s.url, { length: 10 });
      const good = checksumOf('sha1', data);
      for (const header of ['sha1', good, `sha1 ${good} extra`, 'sha1 !!!!', `sha1  ${good}`, 'sha1 A']) {
        const p = await patch(url, 0, data, { 'Upload-Checksum': header });
        assertErrorCode(p, 400, 'ERR_INVALID_CHECKSUM_HEADER');
      }
      assert.equal(await s.store.size(id), 0);
      assert.equal((await head(url)).headers['upload-offset'], '0');
    });

    it('checksum: a checksummed PATCH cut short keeps nothing of that PATCH', async () => {
      const first = Buffer.from('abcde');
      const { url, id } = await createUpload(s.url, { length: 100, body: first });
      const data = randomBytes(95);
      const c = await startPatch(s, url, first.length, { 'Content-Length': data.length, 'Upload-Checksum': `sha1 ${checksumOf('sha1', data)}` });
      await c.write(data.subarray(0, 50));
      // The bytes reached the server (they are staged beside the upload) before the connection is cut.
      await waitFor('staged chunk of 50 bytes', async () => {
        return (await stagedLeft(id)).includes(50) ? true : undefined;
      });
      c.destroy();
      await waitFor('staged chunk to be discarded', async () => ((await stagedLeft(id)).length === 0 ? true : undefined));
      assert.equal((await head(url)).headers['upload-offset'], String(first.length));
      assert.ok((await stored(s, id)).equals(first));
    });
  });

  describe('server with TUS_UPLOAD_EXPIRATION=1 (seconds)', () => {
    let s: RunningServer;
    before(async () => {
      s = await startServer({ env: { TUS_UPLOAD_EXPIRATION: '1' } });
    });
    after(async () => {
      await s.cleanup();
    });

    /**
     * Creates uploads spaced over one expiration period, so that at least one of them spends a long time between
     * expiring and the periodic clean-up (every second), then polls `probe` on each until it stops succeeding.
     */
    async function firstFailures(probe: (url: string) => Promise<Response>, okStatus: number): Promise<{ res: Response; id: string }[]> {
      const uploads: { url: string; id: string }[] = [];
      for (let i = 0; i < 4; i++) {
        const u = await createUpload(s.url, { length: 10 });
        const fresh = await probe(u.url);
        assert.equal(fresh.status, okStatus, 'a fresh upload has not expired');
        uploads.push(u);
        if (i < 3) await sleep(250);
      }
      return Promise.all(
        uploads.map(async (u) => ({
          id: u.id,
          res: await waitFor(`${u.id} to expire`, async () => {
            const r = await probe(u.url);
            return r.status === okStatus ? undefined : r;
          }),
        })),
      );
    }

    it('F8 HEAD of an expired upload → 410, then 404 once the clean-up has removed it', async () => {
      const results = await firstFailures((url) => head(url), 200);
      for (const { res } of results) {
        assert.ok(res.status === 410 || res.status === 404, `expired upload answered ${res.status}`);
        assert.equal(res.headers['upload-offset'], undefined);
        assert.equal(res.body, '');
      }
      assert.ok(results.some((r) => r.res.status === 410), 'an expired upload answered 410 before the clean-up');
      for (const { id } of results) {
        await waitFor(`${id} to be cleaned up`, async () => ((await head(`${s.url}/files/${id}`)).status === 404 ? true : undefined));
        assert.equal(await s.store.exists(id), false);
        assert.equal(await s.store.exists(`${id}.info`), false);
      }
    });

    it('G13 PATCH to an expired upload → 410 ERR_UPLOAD_EXPIRED', async () => {
      const emptyPatch = (url: string) => patch(url, 0, '', { 'Content-Length': '0' });
      const results = await firstFailures(emptyPatch, 204);
      for (const { res } of results) {
        assert.ok(res.status === 410 || res.status === 404, `expired upload answered ${res.status}`);
        assertErrorCode(res, res.status, res.status === 410 ? 'ERR_UPLOAD_EXPIRED' : 'ERR_UPLOAD_NOT_FOUND');
      }
      assert.ok(results.some((r) => r.res.status === 410), 'an expired upload answered 410 before the clean-up');
    });
  });

  describe('server with TUS_NETWORK_TIMEOUT=1000 (ms) and TUS_UPLOAD_EXPIRATION=3600', () => {
    const EXPIRATION_MS = 3600 * 1000;
    let s: RunningServer;
    before(async () => {
      s = await startServer({ env: { TUS_NETWORK_TIMEOUT: '1000', TUS_UPLOAD_EXPIRATION: '3600' } });
    });
    after(async () => {
      await s.cleanup();
    });

    it('G12 PATCH answers Upload-Expires (IMF-fixdate) while unfinished, and none once complete', async () => {
      const before = Math.floor(Date.now() / 1000) * 1000;
      const { url, res } = await createUpload(s.url, { length: 10 });
      const after = Date.now();
      const created = String(res.headers['upload-expires']);
      assert.match(created, IMF_FIXDATE);
      const p = await patch(url, 0, 'hello');
      assert.equal(p.status, 204);
      const expires = p.headers['upload-expires'];
      assert.match(String(expires), IMF_FIXDATE);
      assert.equal(expires, created, 'the expiry is fixed at creation');
      const at = Date.parse(String(expires));
      assert.ok(at >= before + EXPIRATION_MS && at <= after + EXPIRATION_MS, `${expires} is TUS_UPLOAD_EXPIRATION after creation`);
      const done = await patch(url, 5, 'world');
      assert.equal(done.status, 204);
      assert.equal(done.headers['upload-offset'], '10');
      assert.equal(done.headers['upload-expires'], undefined);
    });

    it('G21 a body idle for TUS_NETWORK_TIMEOUT → 500 ERR_READ_TIMEOUT, bytes before the stall kept', async () => {
      const { url, id } = await createUpload(s.url, { length: 100 });
      const c = await startPatch(s, url, 0, { 'Content-Length': 100 });
      const sent = randomBytes(10);
      await c.write(sent);
      const r = await c.awaitResponse('read timeout');
      assertErrorCode(r, 500, 'ERR_READ_TIMEOUT');
      assert.equal(r.headers['upload-offset'], undefined);
      await c.awaitClosed('abandoned body');
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], String(sent.length));
      assert.ok((await stored(s, id)).equals(sent));
    });
  });

  // A grace period far longer than the test: a 503 can only come from shutdown stopping the body at once.
  describe('server with SERVER_SHUTDOWN_TIMEOUT=600000 (ms)', () => {
    let s: RunningServer;
    let restarted: RunningServer | undefined;
    before(async () => {
      s = await startServer({ env: { SERVER_SHUTDOWN_TIMEOUT: '600000' } });
    });
    after(async () => {
      await restarted?.cleanup();
      await s.cleanup();
    });

    it('G16 SIGTERM while a PATCH body is still streaming → 503 ERR_SERVER_SHUTDOWN without Upload-Offset, bytes kept, resumable after restart', async () => {
      const data = randomBytes(MiB);
      const half = data.length / 2;
      const { url, id } = await createUpload(s.url, { length: data.length });
      const c = await startPatch(s, url, 0, { 'Content-Length': data.length });
      await c.write(data.subarray(0, half));
      await waitForStored(s, id, half);
      const exit = s.stop(); // SIGTERM
      // The client keeps streaming (never the last byte, so the body cannot complete) until the server answers.
      const streaming = sendUntilAnswered(c, data.subarray(half, data.length - 1), { piece: 4 * KiB, chunked: false, delayMs: 20 });
      const r = await c.awaitResponse('PATCH interrupted by shutdown');
      assertErrorCode(r, 503, 'ERR_SERVER_SHUTDOWN');
      assert.equal(r.headers['upload-offset'], undefined);
      await c.awaitClosed('body stream closed');
      await streaming;
      assert.equal(await exit, 0);
      const saved = await stored(s, id);
      assert.ok(saved.length >= half && saved.length < data.length, `saved ${saved.length} of ${data.length} bytes`);
      assert.ok(saved.equals(data.subarray(0, saved.length)), 'the saved bytes are the body as sent');

      // A restarted server shows exactly the saved offset and takes the rest of the upload from there.
      restarted = await startServer({ dir: s.dir });
      const resumedUrl = `${restarted.url}/files/${id}`;
      const h = await head(resumedUrl);
      assert.equal(h.status, 200);
      assert.equal(h.headers['upload-offset'], String(saved.length));
      const p = await patch(resumedUrl, saved.length, data.subarray(saved.length));
      assert.equal(p.status, 204, p.body);
      assert.equal(p.headers['upload-offset'], String(data.length));
      assert.ok((await stored(restarted, id)).equals(data), 'the resumed upload holds exactly the bytes sent');
    });
  });

  describe('in-process server: shutdown while a PATCH whose body has fully arrived is still being stored', () => {
    let server: InProcessServer;
    before(async () => {
      server = await startInProcess([]);
    });
    after(async () => {
      await server.close();
    });

    it('G16 the PATCH finishes with 204 within the grace period (only bodies still streaming are stopped)', async () => {
      // Holds the store's answer (after the real write) until shutdown has begun. Nothing else is replaced.
      const store = server.server.core.store;
      const realGet = store.get.bind(store);
      let reached!: () => void;
      const atGate = new Promise<void>((r) => (reached = r));
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      store.get = async (id) => {
        const upload = await realGet(id);
        const realWrite = upload.writeChunk.bind(upload);
        upload.writeChunk = async (offset, body) => {
          const n = await realWrite(offset, body);
          reached();
          await gate;
          return n;
        };
        return upload;
      };
      const { url } = await createUpload(server.base, { length: 11 });
      const p = patch(url, 0, 'hello world');
      await atGate;
      server.server.core.shutdown();
      open();
      const res = await p;
      assert.equal(res.status, 204, res.body);
      assert.equal(res.headers['upload-offset'], '11');
    });
  });
});
