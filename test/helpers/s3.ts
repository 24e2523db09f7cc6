// s3rver on 127.0.0.1 for tests (test-infrastructure.md §3), as a child process on a port of its choosing, with
// its data in a temporary folder. s3rver checks SigV4 signatures with the fixed credentials S3RVER/S3RVER. It has
// no ListParts / AbortMultipartUpload; the S3 upload store needs AbortMultipartUpload (termination of an unfinished
// upload), so a middleware in front of s3rver's routes adds it, removing the parts s3rver keeps on disk.
// s3rver also answers a PUT (object or part) before the bytes are in the file, leaves a PUT cut off half way as an
// object, and reads an object's size and bytes from its path at two different moments: unlike S3, a read during or
// right after a write may see a torn object. Its store is made to write to a temporary file renamed into place once
// complete, and to read size and bytes from one open file, as S3 behaves (a write is whole and visible when answered).
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnChildServer, waitFor, type ChildServer } from './child-server.js';

export const S3RVER_ACCESS_KEY = 'S3RVER';
export const S3RVER_SECRET_KEY = 'S3RVER';
export const S3RVER_REGION = 'us-east-1';

export interface S3rver {
  port: number;
  pid: number;
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Where s3rver keeps buckets and objects. */
  directory: string;
  /** The file of part `partNumber` of a multipart upload not yet completed (or aborted). */
  partFile(bucket: string, uploadId: string, partNumber: number): string;
  client(): S3Client;
  /** `METHOD /bucket/key?query` of every request served since this start (or restart). */
  requests(): string[];
  createBucket(name: string): Promise<void>;
  /** Lets the test process exit while it runs (for an emulator shared by a whole test file; killed at exit). */
  unref(): void;
  /** Stops the process (the server is then down). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder: buckets and objects are still there. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

const requireHere = createRequire(import.meta.url);

// The child resolves s3rver from here, runs it and prints the bound address as one JSON line.
const RUNNER = `
const S3rver = require(process.argv[1]);
{
  const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto'), { Transform } = require('node:stream');
  const { pipeline } = require('node:stream/promises');
  const FilesystemStore = require(path.join(path.dirname(process.argv[1]), 'stores', 'filesystem.js'));
  // Writes whole files only: a temporary file renamed into place once every byte is flushed.
  const writeWhole = async (file, content) => {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const tmp = file + '.' + crypto.randomBytes(6).toString('hex') + '.tmp';
    const md5 = crypto.createHash('md5');
    let size = 0;
    const count = new Transform({ transform(c, e, cb) { md5.update(c); size += c.length; cb(null, c); } });
    try {
      if (Buffer.isBuffer(content)) await pipeline([content], count, fs.createWriteStream(tmp));
      else await pipeline(content, count, fs.createWriteStream(tmp));
      await fs.promises.rename(tmp, file);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    return { size, md5: md5.digest('hex') };
  };
  FilesystemStore.prototype.putObject = async function (object) {
    const r = await writeWhole(this.getResourcePath(object.bucket, object.key, 'object'), object.content);
    await this.putMetadata(object.bucket, object.key, object.metadata, r.md5);
    return r;
  };
  const S3Object = require(path.join(path.dirname(process.argv[1]), 'models', 'object.js'));
  FilesystemStore.prototype.getObject = async function (bucket, key, options) {
    let fd;
    try {
      fd = await fs.promises.open(this.getResourcePath(bucket, key, 'object'), 'r');
    } catch (err) {
      if (err.code === 'ENOENT') return null;
      throw err;
    }
    try {
      const st = await fd.stat();
      const stored = await this.getMetadata(bucket, key).catch(() => ({ etag: '""' }));
      const metadata = { ...stored, 'content-length': st.size, 'last-modified': st.mtime.toUTCString() };
      const lastByte = Math.max(0, st.size - 1);
      const ranged = options && (options.start !== undefined || options.end);
      const range = { start: (options && options.start) || 0, end: Math.min((options && options.end) || Infinity, lastByte) };
      if (range.start < 0 || range.end < range.start) {
        await fd.close();
        const object = new S3Object(bucket, key, null, metadata);
        if (ranged) object.range = range;
        return object;
      }
      const object = new S3Object(bucket, key, fd.createReadStream({ start: range.start, end: range.end }), metadata);
      if (ranged) object.range = range;
      return object;
    } catch (err) {
      await fd.close();
      throw err;
    }
  };
  FilesystemStore.prototype.putPart = async function (bucket, uploadId, partNumber, content) {
    const file = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
    const r = await writeWhole(file, content);
    await fs.promises.writeFile(file + '.md5', r.md5);
    return r;
  };
}
const server = new S3rver({ address: '127.0.0.1', port: Number(process.argv[3]), directory: process.argv[2], silent: true });
// One line per request (method and URL, no headers), so tests can see which S3 operations a client used.
server.middleware.unshift((ctx, next) => { console.log(JSON.stringify({ s3req: ctx.method + ' ' + ctx.url })); return next(); });
// AbortMultipartUpload (DELETE /<bucket>/<key>?uploadId=<id>): s3rver keeps the parts in <dir>/<bucket>/._S3rver_uploads/<id>/.
server.middleware.splice(1, 0, (ctx, next) => {
  if (ctx.method !== 'DELETE' || ctx.query.uploadId === undefined) return next();
  const fs = require('node:fs'), path = require('node:path');
  const bucket = decodeURIComponent(ctx.path.split('/')[1] || '');
  const id = String(ctx.query.uploadId);
  const dir = path.join(process.argv[2], bucket, '._S3rver_uploads', id);
  if (!/^[0-9a-f]+$/.test(id) || !/^[a-z0-9.-]+$/.test(bucket) || !fs.existsSync(dir)) {
    ctx.status = 404;
    ctx.type = 'application/xml';
    ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
    return;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  ctx.status = 204;
});
server.run().then((addr) => console.log(JSON.stringify({ s3rverPort: addr.port })), (err) => { console.error(err); process.exit(1); });
process.on('SIGTERM', () => server.close().finally(() => process.exit(0)));
`;

async function launch(directory: string, port: number): Promise<ChildServer> {
  return spawnChildServer({
    name: 's3rver',
    code: RUNNER,
    args: [requireHere.resolve('s3rver'), directory, String(port)],
    cwd: directory,
    portFrom: (out) => {
      const m = /\{"s3rverPort":(\d+)\}/.exec(out);
      return m ? Number(m[1]) : undefined;
    },
  });
}

export async function startS3rver(): Promise<S3rver> {
  const directory = await mkdtemp(path.join(tmpdir(), 's3rver-'));
  let child: ChildServer;
  let unrefd = false;
  try {
    child = await launch(directory, 0);
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const port = child.port;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = () =>
    new S3Client({
      endpoint,
      region: S3RVER_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
  // Any HTTP answer will do (no keep-alive socket left behind).
  const answers = () =>
    new Promise<boolean>((resolve, reject) => {
      const req = http.get(`${endpoint}/`, { agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', reject);
    });
  await waitFor('s3rver to answer', answers);
  return {
    port,
    get pid() {
      return child.pid;
    },
    endpoint,
    directory,
    partFile: (bucket, uploadId, partNumber) => path.join(directory, bucket, '._S3rver_uploads', uploadId, String(partNumber)),
    client,
    requests: () => [...child.output().matchAll(/^\{"s3req":(".*")\}$/gm)].map((m) => JSON.parse(m[1]!) as string),
    async createBucket(name: string) {
      const c = client();
      try {
        await c.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        c.destroy();
      }
    },
    unref() {
      unrefd = true;
      child.unref();
    },
    stop: () => child.stop(),
    async restart() {
      await child.stop();
      child = await launch(directory, port);
      if (unrefd) child.unref();
      await waitFor('s3rver to answer after restart', answers);
    },
    async cleanup() {
      await child.stop();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
