// The piece writer of the cloud stores (internal/storage/pieces.ts), in-process with a sink that keeps what it is sent
// in memory, the way a backend would: pieces of known length streamed as they arrive, bodies cut short, unknown
// lengths, a backend that drops a stream or fails, at most `inFlight` pieces sent at once, spool files removed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { writePieces, type PieceSink } from '../../internal/storage/pieces.js';

const KiB = 1024;

interface Sent {
  index: number;
  bytes: Buffer;
  last: boolean;
}

/** A backend in memory: records the order of events; `fail(index, attempt)` makes a send fail. */
class MemorySink implements PieceSink<Sent> {
  readonly events: string[] = [];
  readonly sends: Array<{ index: number; length: number; last: boolean }> = [];
  readonly stored: Sent[] = [];
  aside: Buffer | null = null;
  sending = 0;
  maxSending = 0;
  private attempts = new Map<number, number>();

  constructor(
    readonly minPiece: number,
    private readonly fail: (index: number, attempt: number, received: number) => boolean = () => false,
    private readonly answerDelayMs = 0,
  ) {}

  async send(index: number, body: Readable, length: number, last: boolean, signal: AbortSignal): Promise<Sent> {
    const attempt = (this.attempts.get(index) ?? 0) + 1;
    this.attempts.set(index, attempt);
    this.sends.push({ index, length, last });
    this.sending++;
    this.maxSending = Math.max(this.maxSending, this.sending);
    try {
      const chunks: Buffer[] = [];
      let received = 0;
      for await (const c of body) {
        if (signal.aborted) throw new Error('aborted');
        chunks.push(c as Buffer);
        received += (c as Buffer).length;
        if (this.fail(index, attempt, received)) throw new Error(`backend failed piece ${index}`);
      }
      if (signal.aborted) throw new Error('aborted');
      const bytes = Buffer.concat(chunks);
      // A real backend refuses a request whose body is not the length it announced.
      if (bytes.length !== length) throw new Error(`piece ${index}: ${bytes.length} bytes, ${length} announced`);
      if (this.fail(index, attempt, received)) throw new Error(`backend failed piece ${index}`);
      if (this.answerDelayMs) await sleep(this.answerDelayMs);
      return { index, bytes, last };
    } finally {
      this.sending--;
    }
  }

  async record(added: Sent[], aside: Buffer | null): Promise<void> {
    this.stored.push(...added);
    this.aside = aside;
    this.events.push(`record ${added.map((p) => p.index).join(',')}${aside ? ` aside ${aside.length}` : ''}`);
  }

  content(): Buffer {
    return Buffer.concat([...this.stored.map((p) => p.bytes), this.aside ?? Buffer.alloc(0)]);
  }
}

/** A body that hands over `data` in `piece`-sized chunks, and ends after `cutAt` bytes if given (a cut request). */
function bodyOf(data: Buffer, piece = 16 * KiB, cutAt = data.length, delayMs = 0): Readable {
  const out = new PassThrough();
  void (async () => {
    for (let i = 0; i < cutAt; i += piece) {
      if (!out.write(data.subarray(i, Math.min(i + piece, cutAt)))) await new Promise((r) => out.once('drain', r));
      if (delayMs) await sleep(delayMs);
    }
    out.end();
  })();
  return out;
}

describe('cloud stores: the piece writer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dex-pieces-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const opts = (o: Partial<Parameters<typeof writePieces>[2]> = {}) => ({
    pieceSize: 64 * KiB,
    untilComplete: Infinity,
    spoolDir: dir,
    spoolName: 'u1',
    inFlight: 2,
    ...o,
  });
  const spoolLeft = async () => (await readdir(dir)).filter((n) => n.includes('.spool-'));

  it('a body of known length goes up in pieces of the piece size, in order, the last one completing the upload', async () => {
    const data = randomBytes(200 * KiB + 123);
    const sink = new MemorySink(32 * KiB, undefined, 5);
    const n = await writePieces(bodyOf(data), sink, opts({ expected: data.length, untilComplete: data.length }));
    assert.equal(n, data.length);
    assert.ok(sink.content().equals(data));
    assert.deepEqual(sink.stored.map((p) => p.bytes.length), [64 * KiB, 64 * KiB, 64 * KiB, 8 * KiB + 123]);
    assert.deepEqual(sink.stored.map((p) => p.last), [false, false, false, true]);
    // Every piece was streamed once (none sent again from the spool), at most two at once.
    assert.deepEqual(sink.sends.map((s) => s.index), [0, 1, 2, 3]);
    assert.ok(sink.maxSending <= 2, `${sink.maxSending} pieces were sent at once`);
    assert.equal(sink.aside, null);
    assert.deepEqual(await spoolLeft(), []);
  });

  it('a body cut short keeps its bytes: a whole piece from the spool, or the bytes aside when too few for one', async () => {
    const data = randomBytes(150 * KiB);
    const big = new MemorySink(32 * KiB);
    // Cut at 100 KiB: the first piece (64 KiB) is complete; 36 KiB of the second arrived, enough for a piece.
    assert.equal(await writePieces(bodyOf(data, 4 * KiB, 100 * KiB), big, opts({ expected: data.length })), 100 * KiB);
    assert.ok(big.content().equals(data.subarray(0, 100 * KiB)));
    assert.deepEqual(big.stored.map((p) => p.bytes.length), [64 * KiB, 36 * KiB]);
    assert.equal(big.aside, null);
    // Cut at 80 KiB: 16 KiB of the second piece, fewer than the 32 KiB minimum: kept aside.
    const small = new MemorySink(32 * KiB);
    assert.equal(await writePieces(bodyOf(data, 4 * KiB, 80 * KiB), small, opts({ expected: data.length })), 80 * KiB);
    assert.deepEqual(small.stored.map((p) => p.bytes.length), [64 * KiB]);
    assert.ok(small.aside?.equals(data.subarray(64 * KiB, 80 * KiB)));
    assert.ok(small.content().equals(data.subarray(0, 80 * KiB)));
    assert.deepEqual(await spoolLeft(), []);
  });

  it('bytes kept aside before go first; with them the next write reaches a whole piece', async () => {
    const earlier = randomBytes(10 * KiB);
    const data = randomBytes(60 * KiB);
    const sink = new MemorySink(32 * KiB);
    const n = await writePieces(bodyOf(data), sink, opts({ expected: data.length, prefix: earlier, untilComplete: 70 * KiB }));
    assert.equal(n, data.length, 'the count is of the body, without the bytes kept before');
    assert.ok(sink.content().equals(Buffer.concat([earlier, data])));
    assert.deepEqual(sink.stored.map((p) => [p.bytes.length, p.last]), [[64 * KiB, false], [6 * KiB, true]]);
    assert.equal(sink.aside, null, 'nothing is aside any more');
  });

  it('a body of unknown length (chunked) is spooled piece by piece and sent once each piece is complete', async () => {
    const data = randomBytes(150 * KiB);
    const sink = new MemorySink(32 * KiB);
    const n = await writePieces(bodyOf(data), sink, opts({ untilComplete: 150 * KiB }));
    assert.equal(n, data.length);
    assert.ok(sink.content().equals(data));
    assert.deepEqual(sink.stored.map((p) => [p.bytes.length, p.last]), [[64 * KiB, false], [64 * KiB, false], [22 * KiB, true]]);
    assert.deepEqual(await spoolLeft(), []);
  });

  it('a stream the backend drops half way is sent again from the spool once the piece is complete', async () => {
    const data = randomBytes(128 * KiB);
    const sink = new MemorySink(32 * KiB, (index, attempt, received) => index === 1 && attempt === 1 && received >= 20 * KiB);
    const n = await writePieces(bodyOf(data), sink, opts({ expected: data.length }));
    assert.equal(n, data.length);
    assert.ok(sink.content().equals(data));
    assert.deepEqual(sink.sends.map((s) => s.index), [0, 1, 1]);
  });

  it('a backend that keeps failing rejects the write, with the pieces stored before the failure recorded', async () => {
    const data = randomBytes(256 * KiB);
    const sink = new MemorySink(32 * KiB, (index) => index === 2, 5);
    await assert.rejects(writePieces(bodyOf(data), sink, opts({ expected: data.length })), /backend failed piece 2/);
    assert.deepEqual(sink.stored.map((p) => p.index), [0, 1]);
    assert.ok(sink.content().equals(data.subarray(0, 128 * KiB)));
    assert.deepEqual(await spoolLeft(), []);
  });

  it('records pieces as they complete, while the body is still arriving', async () => {
    const data = randomBytes(256 * KiB);
    const sink = new MemorySink(32 * KiB);
    const body = new PassThrough();
    const writing = writePieces(body, sink, opts({ expected: data.length }));
    body.write(data.subarray(0, 140 * KiB));
    const deadline = Date.now() + 10_000;
    while (sink.stored.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(sink.stored.map((p) => p.index), [0, 1], 'the first two pieces are recorded before the body ends');
    body.end(data.subarray(140 * KiB));
    assert.equal(await writing, data.length);
    assert.ok(sink.content().equals(data));
  });
});
