// Interoperability with the official tus client (tus-js-client v4, Node build) against the real server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';
import { startServer, type RunningServer } from '../helpers/server.js';
import { decodeMetadata, head, idOf, request } from '../helpers/http.js';
import { MANIFEST_MODE, VALID_MANIFEST, clientPairs } from '../helpers/manifest-mode.js';

const MiB = 1024 * 1024;
const SIZE = 20 * MiB + 12_345; // deliberately not a multiple of any chunk size

type UploadOptions = ConstructorParameters<typeof tus.Upload>[1];

/** The client's metadata, followed in manifest mode by the valid manifest (the creation must carry it). */
const withManifestPairs = (own: Record<string, string>): Record<string, string> => ({
  ...own,
  ...(MANIFEST_MODE ? VALID_MANIFEST : {}),
});

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}



/** Runs a tus.Upload to success (or rejects with its error). */
function run(data: Buffer, options: UploadOptions): Promise<tus.Upload> {
  return new Promise((resolve, reject) => {
    const upload: tus.Upload = new tus.Upload(data, {
      retryDelays: [0, 200, 1000],
      ...options,
      onSuccess: () => resolve(upload),
      onError: (err) => reject(err),
    });
    upload.start();
  });
}

describe('interop: tus-js-client v4', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.cleanup();
  });

  /** The stored file equals the sent bytes and HEAD says the upload is complete. */
  async function assertStored(uploadUrl: string | null, data: Buffer): Promise<string> {
    const id = idOf(uploadUrl);
    assert.equal(sha256(await s.store.read(id)), sha256(data), 'stored bytes equal the sent bytes');
    const h = await head(uploadUrl!);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], String(data.length));
    assert.equal(h.headers['upload-length'], String(data.length));
    return id;
  }

  it('uploads ~20 MiB in a single PATCH (chunkSize Infinity)', { timeout: 120_000 }, async () => {
    const data = randomBytes(SIZE);
    const patches: string[] = [];
    const upload = await run(data, {
      endpoint: `${s.url}/files/`,
      chunkSize: Infinity,
      metadata: withManifestPairs({ filename: 'single.bin', filetype: 'application/octet-stream' }),
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patches.push(String(req.getHeader('Upload-Offset')));
      },
    });
    assert.deepEqual(patches, ['0'], 'one PATCH, from offset 0');
    await assertStored(upload.url, data);
  });

  it('uploads ~20 MiB in 1 MiB chunks', { timeout: 120_000 }, async () => {
    const data = randomBytes(SIZE);
    const patches: number[] = [];
    const upload = await run(data, {
      endpoint: `${s.url}/files/`,
      chunkSize: MiB,
      metadata: withManifestPairs({ filename: 'chunked.bin' }),
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patches.push(Number(req.getHeader('Upload-Offset')));
      },
    });
    assert.equal(patches.length, Math.ceil(SIZE / MiB));
    assert.deepEqual(
      patches,
      patches.map((_, i) => i * MiB),
      'each PATCH starts where the previous one ended',
    );
    await assertStored(upload.url, data);
  });

  it('uploads ~20 MiB with parallelUploads: 4 (concatenation) and keeps the final metadata', { timeout: 120_000 }, async () => {
    const data = randomBytes(SIZE);
    const posts: { concat: string | undefined; metadata: string | undefined }[] = [];
    const metadata = { filename: 'parallel.bin', filetype: 'application/octet-stream', note: 'ünïcode ✓' };
    const upload = await run(data, {
      endpoint: `${s.url}/files/`,
      parallelUploads: 4,
      metadata: withManifestPairs(metadata),
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'POST') posts.push({ concat: req.getHeader('Upload-Concat'), metadata: req.getHeader('Upload-Metadata') });
      },
    });
    assert.equal(posts.filter((p) => p.concat === 'partial').length, 4, 'four partial uploads');
    const finals = posts.filter((p) => p.concat?.startsWith('final;'));
    assert.equal(finals.length, 1, 'one final upload');
    assert.equal(finals[0]!.concat!.slice('final;'.length).trim().split(' ').length, 4, 'the final names the four partials');

    const id = await assertStored(upload.url, data);
    const h = await head(upload.url!);
    assert.match(String(h.headers['upload-concat']), /^final;/);
    assert.deepEqual(
      decodeMetadata(clientPairs(h.headers['upload-metadata'])),
      Object.entries(metadata),
      "the final upload's metadata holds the client's pairs, in order",
    );
    // The partials were stored too (they are separate uploads), each finished.
    const partialUrls = String(h.headers['upload-concat']).slice('final;'.length).trim().split(' ');
    let total = 0;
    for (const u of partialUrls) {
      assert.notEqual(idOf(u), id);
      const ph = await head(u);
      assert.equal(ph.status, 200);
      assert.equal(ph.headers['upload-concat'], 'partial');
      assert.equal(ph.headers['upload-offset'], ph.headers['upload-length']);
      total += Number(ph.headers['upload-offset']);
    }
    assert.equal(total, data.length, 'the partials add up to the whole');
  });

  /**
   * tus-js-client reports progress at most every 100 ms, and a loopback upload of 20 MiB is over sooner, so the
   * upload that gets aborted reads its bytes from a source that hands them out in small paced pieces (the same
   * bytes as the Buffer; the client's own request and progress code is unchanged).
   */
  const pacedReader: tus.FileReader = {
    openFile: async (input) => {
      const buf = input as unknown as Buffer;
      return {
        size: buf.length,
        slice: async (start: number, end: number) => {
          const part = buf.subarray(start, Math.min(end, buf.length));
          let pos = 0;
          const value = new Readable({
            read() {
              setTimeout(() => {
                const piece = part.subarray(pos, pos + 128 * 1024);
                pos += piece.length;
                this.push(piece.length > 0 ? piece : null);
              }, 4);
            },
          });
          return { value: Object.assign(value, { size: part.length }), done: end >= buf.length };
        },
        close: () => {},
      } as unknown as tus.FileSource;
    },
  };

  /** Starts an upload and aborts it from onProgress at ~40 %; resolves once aborted. */
  async function startAndAbort(data: Buffer, extra: UploadOptions = {}): Promise<tus.Upload> {
    return new Promise((resolve, reject) => {
      let aborted = false;
      const upload: tus.Upload = new tus.Upload(data, {
        endpoint: `${s.url}/files/`,
        chunkSize: Infinity,
        retryDelays: [0, 200, 1000],
        metadata: withManifestPairs({ filename: 'resume.bin' }),
        fileReader: pacedReader,
        ...extra,
        onProgress: (sent, total) => {
          if (aborted || sent < 0.4 * total) return;
          aborted = true;
          upload.abort().then(() => resolve(upload), reject);
        },
        onSuccess: () => reject(new Error('the upload finished before it could be aborted')),
        onError: (err) => {
          if (!aborted) reject(err);
        },
      });
      upload.start();
    });
  }

  it('resumes an upload aborted at ~40% from its URL (uploadUrl)', { timeout: 120_000 }, async () => {
    const data = randomBytes(SIZE);
    const first = await startAndAbort(data);
    const url = first.url;
    assert.ok(url);
    // HEAD takes the upload's lock, so it sees every byte the aborted PATCH got stored.
    const h = await head(url);
    assert.equal(h.status, 200);
    const storedOffset = Number(h.headers['upload-offset']);
    assert.ok(storedOffset < data.length, `the aborted upload is unfinished (offset ${storedOffset})`);

    const patches: number[] = [];
    const methods: string[] = [];
    const resumed = await run(data, {
      uploadUrl: url,
      chunkSize: Infinity,
      onBeforeRequest: (req) => {
        methods.push(req.getMethod());
        if (req.getMethod() === 'PATCH') patches.push(Number(req.getHeader('Upload-Offset')));
      },
    });
    assert.equal(resumed.url, url, 'the same upload was continued');
    assert.ok(!methods.includes('POST'), 'no new upload was created');
    assert.equal(methods[0], 'HEAD');
    assert.equal(patches[0], storedOffset, 'the client resumed at the stored offset');
    assert.ok(patches[0]! > 0, 'bytes sent before the abort were kept');
    await assertStored(url, data);
  });

  it('resumes an upload aborted at ~40% through findPreviousUploads (urlStorage)', { timeout: 120_000 }, async () => {
    const data = randomBytes(SIZE);
    const fingerprint = `fp-${sha256(data)}`;
    const entries = new Map<string, tus.PreviousUpload & { fingerprint: string }>();
    let n = 0;
    const urlStorage: tus.UrlStorage = {
      findAllUploads: async () => [...entries.values()],
      findUploadsByFingerprint: async (fp) => [...entries.values()].filter((e) => e.fingerprint === fp),
      removeUpload: async (key) => {
        entries.delete(key);
      },
      addUpload: async (fp, u) => {
        const key = `k${++n}`;
        entries.set(key, { ...u, urlStorageKey: key, fingerprint: fp });
        return key;
      },
    };
    const opts: UploadOptions = { urlStorage, fingerprint: async () => fingerprint, removeFingerprintOnSuccess: true };

    const first = await startAndAbort(data, opts);
    assert.ok(first.url);
    assert.equal(entries.size, 1, 'the client stored the upload URL');

    const patches: number[] = [];
    const resumed = await new Promise<tus.Upload>((resolve, reject) => {
      const upload: tus.Upload = new tus.Upload(data, {
        ...opts,
        endpoint: `${s.url}/files/`,
        chunkSize: Infinity,
        retryDelays: [0, 200, 1000],
        onBeforeRequest: (req) => {
          if (req.getMethod() === 'POST') reject(new Error('a new upload was created instead of resuming'));
          if (req.getMethod() === 'PATCH') patches.push(Number(req.getHeader('Upload-Offset')));
        },
        onSuccess: () => resolve(upload),
        onError: reject,
      });
      upload
        .findPreviousUploads()
        .then((previous) => {
          assert.equal(previous.length, 1);
          assert.equal(previous[0]!.uploadUrl, first.url);
          upload.resumeFromPreviousUpload(previous[0]!);
          upload.start();
        })
        .catch(reject);
    });
    assert.equal(resumed.url, first.url);
    assert.ok(patches[0]! > 0 && patches[0]! < data.length, `resumed mid-way (offset ${patches[0]})`);
    assert.equal(entries.size, 0, 'the stored URL was removed on success');
    await assertStored(resumed.url, data);
  });

  it('works through the base path without a trailing slash (endpoint <url>/files)', { timeout: 120_000 }, async () => {
    const data = randomBytes(3 * MiB + 7);
    const upload = await run(data, {
      endpoint: `${s.url}/files`,
      chunkSize: MiB,
      metadata: withManifestPairs({ filename: 'noslash.bin' }),
    });
    const url = new URL(upload.url!);
    assert.equal(url.origin, s.url);
    assert.match(url.pathname, /^\/files\/[0-9a-f-]{36}$/);
    await assertStored(upload.url, data);
    // The same path answers OPTIONS like the slash form.
    const o = await request({ method: 'OPTIONS', url: `${s.url}/files` });
    assert.ok(o.status === 200 || o.status === 204, `OPTIONS /files: ${o.status}`);
    assert.equal(o.headers['tus-resumable'], '1.0.0');
  });
});
