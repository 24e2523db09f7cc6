// kill -9 in the middle of a PATCH, restart on the same folder, resume: nothing acknowledged or stored is lost,
// the offset never runs ahead of the stored bytes, and no temporary file survives the restart.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, head, patch, b64 } from '../helpers/http.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const PIECE = 64 * 1024;
const LEFTOVER = /\.tmp$|\.chunk-/;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** Largest staged-chunk file of an upload (0 when none). */
function stagedSize(dir: string, id: string): number {
  return Math.max(0, ...readdirSync(dir).filter((n) => n.startsWith(`${id}.chunk-`)).map((n) => sizeOf(path.join(dir, n))));
}

/** socket.write that resolves once the bytes reached the kernel (true) or the socket failed (false). */
function write(sock: net.Socket, buf: Buffer): Promise<boolean> {
  if (sock.destroyed || !sock.writable) return Promise.resolve(false);
  return new Promise((resolve) => sock.write(buf, (err) => resolve(!err)));
}

interface CrashOptions {
  port: number;
  id: string;
  offset: number;
  body: Buffer;
  /** Kill once at least this many body bytes were sent and `ready()` holds. */
  killAfter: number;
  ready: () => boolean;
  kill: () => Promise<void>;
  extraHeaders?: string;
}

/**
 * Sends a PATCH over a raw socket in 64 KiB pieces with small pauses and SIGKILLs the server while the body is
 * still streaming (the last piece is never sent, so the request cannot complete). Resolves with the number of body
 * bytes handed to the kernel (an upper bound of what the server can have received) and whatever the server
 * answered before dying (expected: nothing).
 */
async function patchAndKill(o: CrashOptions): Promise<{ sent: number; answer: string }> {
  const sock = net.connect({ host: '127.0.0.1', port: o.port });
  let answer = '';
  sock.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const headers =
    `PATCH /files/${o.id} HTTP/1.1\r\n` +
    `Host: 127.0.0.1:${o.port}\r\n` +
    'Tus-Resumable: 1.0.0\r\n' +
    'Content-Type: application/offset+octet-stream\r\n' +
    `Upload-Offset: ${o.offset}\r\n` +
    `Content-Length: ${o.body.length}\r\n` +
    (o.extraHeaders ?? '') +
    '\r\n';
  assert.ok(await write(sock, Buffer.from(headers, 'latin1')));

  const cap = o.body.length - PIECE;
  let sent = 0;
  let killing: Promise<void> | null = null;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (!killing && sent >= o.killAfter && o.ready()) killing = o.kill(); // the writer keeps going meanwhile
    if (sent < cap) {
      const piece = o.body.subarray(sent, Math.min(sent + PIECE, cap));
      if (!(await write(sock, piece))) break;
      sent += piece.length;
    } else if (killing) {
      break;
    }
    await sleep(2);
  }
  assert.ok(killing, 'the server was killed mid-PATCH');
  await killing;
  sock.destroy();
  return { sent, answer };
}

describe('crash: kill -9 mid-PATCH, restart on the same folder, resume', () => {
  let s: RunningServer;
  let dir: string;
  before(async () => {
    s = await startServer();
    dir = s.dir;
  });
  after(async () => {
    await s.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const rounds = [
    { killAt: 0.1, checksum: false },
    { killAt: 0.3, checksum: false },
    { killAt: 0.5, checksum: true }, // a checksummed PATCH is staged beside the upload: all or nothing
    { killAt: 0.7, checksum: false },
    { killAt: 0.9, checksum: false },
  ];

  for (const [i, round] of rounds.entries()) {
    it(`round ${i + 1}: killed after ~${round.killAt * 100}% of an 8 MiB PATCH${round.checksum ? ' with Upload-Checksum' : ''}`, { timeout: 120_000 }, async (t) => {
      // A round that failed after its kill must not take the next rounds down with it.
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) s = await startServer({ dir });
      const source = randomBytes(SIZE);
      const { id } = await createUpload(s.url, { length: SIZE, metadata: `filename ${b64(`crash-${i + 1}.bin`)}` });
      const dataFile = path.join(s.storeDir, id);

      // The checksummed round first stores 1 MiB plainly, so "unchanged" means a non-zero offset.
      let start = 0;
      if (round.checksum) {
        const p = await patch(`${s.url}/files/${id}`, 0, source.subarray(0, MiB));
        assert.equal(p.status, 204);
        start = MiB;
      }
      const body = source.subarray(start);
      const extraHeaders = round.checksum ? `Upload-Checksum: sha256 ${createHash('sha256').update(body).digest('base64')}\r\n` : '';
      const server = s;
      const { sent, answer } = await patchAndKill({
        port: s.port,
        id,
        offset: start,
        body,
        killAfter: Math.floor(round.killAt * SIZE) - start,
        ready: () => (round.checksum ? stagedSize(server.storeDir, id) > 0 : sizeOf(dataFile) > start),
        kill: () => server.kill9(),
        extraHeaders,
      });
      assert.equal(answer, '', 'the server answered nothing before it was killed');
      assert.equal(s.proc.signalCode, 'SIGKILL');

      const onDisk = sizeOf(dataFile);
      if (round.checksum) {
        assert.ok(stagedSize(s.storeDir, id) > 0, 'the killed PATCH left a staged chunk behind');
        assert.equal(onDisk, start, 'nothing of the checksummed PATCH reached the upload');
      } else {
        assert.ok(onDisk > start, 'some bytes of the killed PATCH were stored');
      }
      assert.ok(onDisk <= start + sent, `stored ${onDisk} bytes, sent ${start + sent}`);
      assert.ok(onDisk < SIZE);
      t.diagnostic(`sent ${start + sent} bytes before the kill finished, ${onDisk} stored`);

      // Restart on the same folder.
      s = await startServer({ dir });
      const url = `${s.url}/files/${id}`;
      const leftovers = readdirSync(s.storeDir).filter((n) => LEFTOVER.test(n));
      assert.deepEqual(leftovers, [], 'no staged chunk or temporary info survives a restart');

      const h = await head(url);
      assert.equal(h.status, 200);
      const offset = Number(h.headers['upload-offset']);
      assert.equal(h.headers['upload-length'], String(SIZE));
      assert.equal(offset, sizeOf(dataFile), 'HEAD offset = size of the data file');
      assert.equal(offset, onDisk, 'the restart neither lost nor invented bytes');
      assert.ok(offset <= start + sent, 'the offset never runs ahead of what was sent');
      // What is stored is exactly the start of the source.
      assert.equal(sha256(await readFile(dataFile)), sha256(source.subarray(0, offset)), 'stored prefix equals the source');

      // A PATCH at any other offset is refused; the stored offset is accepted.
      const wrong = await patch(url, offset === 0 ? 1 : offset - 1, Buffer.from('x'));
      assert.equal(wrong.status, 409);
      const rest = await patch(url, offset, source.subarray(offset));
      assert.equal(rest.status, 204, rest.body);
      assert.equal(rest.headers['upload-offset'], String(SIZE));

      const done = await head(url);
      assert.equal(done.headers['upload-offset'], String(SIZE));
      assert.equal(await sha256File(dataFile), sha256(source), 'the stored file is byte-identical to the source');
      // Once finished, the server hashes the upload and rewrites its info (atomically, through a temporary file):
      // wait for that to land, then nothing temporary may remain.
      const infoFile = path.join(s.storeDir, `${id}.info`);
      for (const end = Date.now() + 20_000; !(JSON.parse(await readFile(infoFile, 'utf8')) as { Sha256?: string }).Sha256; ) {
        if (Date.now() > end) assert.fail('the finished upload was never hashed');
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal((JSON.parse(await readFile(infoFile, 'utf8')) as { Sha256?: string }).Sha256, sha256(source));
      assert.deepEqual(readdirSync(s.storeDir).filter((n) => LEFTOVER.test(n)), []);
    });
  }
});
