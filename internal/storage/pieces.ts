// Writing a request body to a cloud store as a sequence of pieces (S3 parts, Azure blocks), with constant memory.
//
// Each piece of known length is streamed to the backend as it arrives, and also written to a spool file on local disk.
// The spool is what keeps every byte that arrived when the body is cut short (a streamed request cannot be finished
// with fewer bytes than it announced), or when the backend drops a slow request: the piece is then sent again from the
// spool, with the length it really has. A piece of unknown length (a chunked body) is spooled first and sent once
// complete. Several pieces are in flight at once (the next one streams while the backend answers the previous);
// the store records the pieces in order as they complete, so its state never runs ahead of what the backend holds.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';

/** How a cloud store takes the pieces of one write. */
export interface PieceSink<P> {
  /** The smallest piece that may be followed by another (S3: 5 MiB; Azure: 1). */
  readonly minPiece: number;
  /**
   * Sends piece `index` of this write: exactly `length` bytes of `body`; `last` when it completes the upload.
   * Called in order, several at once.
   */
  send(index: number, body: Readable, length: number, last: boolean, signal: AbortSignal): Promise<P>;
  /**
   * Persists the upload's state with `added`: the pieces of this write sent since the last record, in order. `aside`
   * is given once, at the end: the bytes after the last piece, too few for one, kept until more arrive (S3's
   * incomplete part); null means none (any kept before are now in a piece).
   */
  record(added: P[], aside: Buffer | null): Promise<void>;
}

export interface PieceWriteOptions {
  /** Most bytes in one piece. */
  pieceSize: number;
  /** Bytes the body brings if it is not cut short; undefined when unknown (chunked). */
  expected?: number;
  /** Bytes kept aside by an earlier write; they are sent first, at the start of the first piece. */
  prefix?: Buffer;
  /** Bytes from the start of `prefix` to the end of the upload (Infinity while its length is deferred). */
  untilComplete: number;
  /** Spool files are `<dir>/<name>.spool-<random>`. */
  spoolDir: string;
  spoolName: string;
  /** Pieces sent at once. */
  inFlight: number;
}

const SPOOL_HWM = 64 * 1024;

/**
 * Spool files and staged chunks left by a process that died: never part of an upload. `keepYoungerThanMs`: a
 * folder other instances may share (several servers on one volume): a young file may be another's request in progress.
 */
export async function removeSpoolLeftovers(dir: string, keepYoungerThanMs = 0): Promise<void> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /\.(spool|chunk)-[0-9a-f]+$/.test(n));
  const staleBefore = Date.now() - keepYoungerThanMs;
  await Promise.all(
    names.map(async (n) => {
      const file = path.join(dir, n);
      if (keepYoungerThanMs > 0 && ((await stat(file).catch(() => null))?.mtimeMs ?? Infinity) >= staleBefore) return;
      await rm(file, { force: true });
    }),
  );
}

/** Resolves once `stream` can take more (or is finished with, one way or another). */
function drained(stream: Writable): Promise<void> {
  // A stream destroyed already (the backend dropped the request) has emitted its 'close'.
  if (stream.destroyed || !stream.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

type Outcome<P> = { sent: P } | { aside: Buffer } | null;

/** One piece: its bytes go to the spool file and, while the backend takes them, straight to the backend. */
class Piece<P> {
  bytes = 0;
  readonly spoolFile: string;
  private readonly spool: WriteStream;
  private spoolError: Error | null = null;
  private upstream: PassThrough | null = null;
  private sending: Promise<P> | null = null;
  private abort = new AbortController();
  private cancelled = false;

  constructor(
    private readonly sink: PieceSink<P>,
    readonly index: number,
    /** Where the piece starts, counted from the start of the write (its prefix included). */
    readonly start: number,
    /** Bytes the piece gets if the body is not cut short; undefined when unknown. */
    readonly planned: number | undefined,
    /** The end of the upload, counted like `start`. */
    private readonly end: number,
    opts: PieceWriteOptions,
  ) {
    this.spoolFile = path.join(opts.spoolDir, `${opts.spoolName}.spool-${randomBytes(6).toString('hex')}`);
    this.spool = createWriteStream(this.spoolFile, { flags: 'wx', highWaterMark: SPOOL_HWM });
    this.spool.on('error', (err) => (this.spoolError ??= err));
    const completes = planned !== undefined && start + planned === end;
    if (planned !== undefined && (planned >= sink.minPiece || completes)) {
      const upstream = new PassThrough({ highWaterMark: SPOOL_HWM });
      this.upstream = upstream;
      this.sending = sink.send(index, upstream, planned, completes, this.abort.signal);
      // A failed stream (the backend dropped it) leaves the spool, to send the piece again once it is complete.
      this.sending.catch(() => {
        if (this.upstream === upstream) this.upstream = null;
        upstream.destroy();
      });
    }
  }

  /** Bytes the piece still takes. */
  room(pieceSize: number): number {
    return Math.min(this.planned ?? pieceSize, this.end - this.start) - this.bytes;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.spoolError) throw this.spoolError;
    this.bytes += chunk.length;
    const waits: Promise<void>[] = [];
    if (!this.spool.write(chunk)) waits.push(drained(this.spool));
    const up = this.upstream;
    if (up && !up.destroyed && !up.write(chunk)) waits.push(drained(up));
    if (waits.length) await Promise.all(waits);
  }

  /**
   * The piece has all its bytes, or the body ended: sends it if its stream did not, and resolves with what to
   * record: the sent piece, the bytes to keep aside (too few for a piece), or null when it is empty.
   */
  async finish(): Promise<Outcome<P>> {
    await new Promise<void>((resolve) => this.spool.end(resolve));
    if (this.spoolError) throw this.spoolError;
    const cancelled = () => new Error('the write failed: piece abandoned');
    const up = this.upstream;
    if (up && this.bytes === this.planned) {
      up.end();
      try {
        return await this.sent(await this.sending!);
      } catch {
        // Dropped by the backend: sent again from the spool below.
      }
    } else if (this.sending) {
      // Cut short: the request announced more bytes than there are, so it is abandoned.
      this.stopSending();
      await this.sending.catch(() => undefined);
    }
    if (this.cancelled) throw cancelled();
    if (this.bytes === 0) return null;
    const last = this.start + this.bytes === this.end;
    if (this.bytes < this.sink.minPiece && !last) return { aside: await readFile(this.spoolFile) };
    this.abort = new AbortController();
    const body = createReadStream(this.spoolFile, { highWaterMark: SPOOL_HWM });
    return this.sent(await this.sink.send(this.index, body, this.bytes, last, this.abort.signal));
  }

  /**
   * The backend holds the piece: its spool file goes now, before the piece is recorded, so that the spool and the
   * recorded state never both hold the same bytes (what is on local disk plus what is recorded is never more than arrived).
   */
  private async sent(piece: P): Promise<Outcome<P>> {
    await this.remove();
    return { sent: piece };
  }

  private stopSending(): void {
    this.abort.abort();
    this.upstream?.destroy();
    this.upstream = null;
  }

  /** Another piece failed: this one is not sent (or sent again) either. */
  cancel(): void {
    this.cancelled = true;
    this.stopSending();
  }

  /** Drops the piece: stops sending it and removes its spool file. */
  async discard(): Promise<void> {
    this.stopSending();
    this.spool.destroy();
    await rm(this.spoolFile, { force: true });
  }

  remove(): Promise<void> {
    return rm(this.spoolFile, { force: true });
  }
}

interface Entry<P> {
  piece: Piece<P>;
  result: Promise<Outcome<P>> | null;
  outcome?: { ok: true; value: Outcome<P> } | { ok: false };
}

/**
 * Writes `body` to the sink in pieces, recording them as they complete; resolves with the number of body bytes
 * stored (sent or kept aside). However the body ends, its bytes are stored; a failure of the backend rejects, with
 * the pieces completed before it recorded.
 */
export async function writePieces<P>(body: Readable, sink: PieceSink<P>, opts: PieceWriteOptions): Promise<number> {
  const prefix = opts.prefix ?? Buffer.alloc(0);
  let total = opts.expected === undefined ? undefined : prefix.length + opts.expected;
  const end = opts.untilComplete;
  const entries: Entry<P>[] = [];
  let position = 0; // bytes taken, counted from the start of the prefix
  let current: Entry<P> | null = null;
  let failure: unknown = null;
  let recorded = 0; // entries recorded
  let recording: Promise<void> | null = null;
  let settle: () => void = () => undefined;
  let anySettled = new Promise<void>((r) => (settle = r));

  const fail = (err: unknown) => {
    if (failure === null) {
      failure = err;
      for (const e of entries) if (!e.outcome) e.piece.cancel();
    }
    settle();
  };
  /** Sent pieces after the recorded ones, up to the first that is not (yet) sent. */
  const sentRun = (): P[] => {
    const sent: P[] = [];
    for (const e of entries.slice(recorded)) {
      if (!e.outcome?.ok || e.outcome.value === null || !('sent' in e.outcome.value)) break;
      sent.push(e.outcome.value.sent);
    }
    return sent;
  };
  /** Records the sent pieces in the background, one record at a time. */
  const recordInBackground = () => {
    if (recording) return;
    recording = (async () => {
      for (let added = sentRun(); added.length > 0 && failure === null; added = sentRun()) {
        await sink.record(added, null);
        recorded += added.length;
      }
    })()
      .catch(fail)
      .finally(() => (recording = null));
  };
  const close = (entry: Entry<P>) => {
    entry.result = entry.piece.finish();
    entry.result.then(
      (value) => {
        entry.outcome = { ok: true, value };
        recordInBackground();
      },
      (err: unknown) => {
        entry.outcome = { ok: false };
        fail(err);
      },
    ).finally(() => {
      settle();
      anySettled = new Promise<void>((r) => (settle = r));
    });
  };
  const open = (): Entry<P> => {
    if (total !== undefined && position >= total) total = undefined; // more than announced: length unknown now
    const planned = total === undefined ? undefined : Math.min(opts.pieceSize, end - position, total - position);
    const entry: Entry<P> = { piece: new Piece(sink, entries.length, position, planned, end, opts), result: null };
    entries.push(entry);
    return entry;
  };
  const sending = () => entries.filter((e) => e.result && !e.outcome).length;

  const take = async (chunk: Buffer) => {
    let c = chunk;
    while (c.length > 0 && failure === null) {
      if (position >= end) throw new Error('the body goes beyond the upload length');
      current ??= open();
      const part = c.subarray(0, current.piece.room(opts.pieceSize));
      await current.piece.write(part);
      position += part.length;
      c = c.subarray(part.length);
      if (current.piece.room(opts.pieceSize) > 0) continue;
      close(current);
      current = null;
      // At most `inFlight` pieces are being sent; the next one starts once one of them is done.
      while (sending() >= opts.inFlight && failure === null) await anySettled;
    }
  };

  try {
    if (prefix.length > 0) await take(prefix);
    for await (const chunk of body) {
      await take(chunk as Buffer);
      if (failure !== null) break;
    }
  } catch (err) {
    fail(err);
  }
  if (current) close(current);

  await Promise.allSettled(entries.map((e) => e.result));
  while (recording) await recording;
  const added = sentRun();
  const tail = entries[recorded + added.length]?.outcome;
  const aside = failure === null && tail?.ok && tail.value && 'aside' in tail.value ? tail.value.aside : null;
  try {
    if (added.length > 0 || aside) await sink.record(added, aside);
  } finally {
    await Promise.all(entries.map((e) => e.piece.discard()));
  }
  if (failure !== null) throw failure;
  return position - prefix.length;
}
