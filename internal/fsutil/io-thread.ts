import { Piscina } from 'piscina';
import type { CopyResult, FileToWrite, IoOp, IoResult } from './io-ops.js';

export type { CopyResult, FileToWrite, IoOp } from './io-ops.js';

/** An operation an I/O thread could not carry out, with the file system's error code (ENOENT, EEXIST …). */
export class IoError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'IoError';
  }
}

export interface IoThreadOptions {
  /** Threads (default 1). */
  threads?: number;
  /** Added to the threads' nice value (0 = the event loop's priority): background work yields the CPU to requests. */
  niceIncrement?: number;
  /** Small operations sent in one task at most (default 256). Copies of more than 256 KiB and hashes travel alone. */
  maxBatch?: number;
}

// Each thread is a V8 isolate of its own: small heaps keep the process's memory flat (the work holds only strings
// of a batch and one copy buffer).
const RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 };

/** Copies up to this size go in batches with other small operations. */
const SMALL_COPY = 256 * 1024;

interface Pending {
  op: IoOp;
  resolve: (r: CopyResult | undefined) => void;
  reject: (err: Error) => void;
}

/**
 * Threads of our own for whole-file work: a new upload's files, report and event lines, copies to file targets and
 * hashes. Operations asked for in the same turn of the event loop travel as one batch and run there with synchronous
 * calls. On this kind of machine every hand-off to libuv's thread pool costs a thread wake-up, and appending a line
 * through `fs.appendFile` costs three (open, write, close); here a whole batch costs one. The event loop itself never
 * blocks.
 */
export class IoThread {
  private readonly poolOptions: ConstructorParameters<typeof Piscina>[0];
  private pool: Piscina<IoOp[], IoResult[]> | undefined;
  private stopped = false;
  private queue: Pending[] = [];
  private scheduled = false;
  private draining: Promise<void> | null = null;
  private readonly maxBatch: number;
  private copying = 0;

  constructor(opts: IoThreadOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 256;
    const threads = opts.threads ?? 1;
    this.poolOptions = {
      filename: new URL('./io-thread-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      niceIncrement: opts.niceIncrement ?? 0,
      atomics: 'disabled',
      resourceLimits: RESOURCE_LIMITS,
    };
  }

  /**
   * Starts the threads now rather than at the first operation (so that the first upload does not wait for them).
   * They are not started by the constructor: a process that exits (process.exit) while a worker thread is still
   * starting can abort natively (nodejs/node#25007), so the server starts them only once its configuration has been
   * accepted, and closes them before exiting.
   */
  start(): void {
    this.threads();
  }

  /** Operations asked for and not yet handed to a thread. */
  get pending(): number {
    return this.queue.length;
  }

  /** Bytes of the copies asked for and not yet done: what a queue of large deliveries weighs (admission). */
  get copyBytes(): number {
    return this.copying;
  }

  /** Appends `data` to `path`, creating it with `mode`. */
  async append(path: string, data: string, mode: number): Promise<void> {
    await this.run({ op: 'append', path, data, mode });
  }

  /** Writes whole files in order, stopping at the first that fails. */
  async writeFiles(files: FileToWrite[]): Promise<void> {
    await this.run({ op: 'write', files });
  }

  /** See the `copy` operation: a hashed, size-checked copy that appears at `to` only when complete. */
  async copy(from: string, temp: string, to: string, size: number, mode: number): Promise<CopyResult> {
    this.copying += size;
    try {
      return (await this.run({ op: 'copy', from, temp, to, size, mode }))!;
    } finally {
      this.copying -= size;
    }
  }

  /** The sha256 of a whole file, and its size. */
  async hash(path: string): Promise<CopyResult> {
    return (await this.run({ op: 'hash', path }))!;
  }

  private run(op: IoOp): Promise<CopyResult | undefined> {
    return new Promise((resolve, reject) => {
      // A large copy or a hash may take seconds: batched with lines, it would hold them back. Small copies (the many
      // small uploads of a busy server) travel with the lines: one hand-off for many deliveries.
      if (op.op === 'hash' || (op.op === 'copy' && op.size > SMALL_COPY)) {
        void this.send([{ op, resolve, reject }]);
        return;
      }
      this.queue.push({ op, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.draining) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  /**
   * One batch of small operations in flight at a time, so that they happen in the order they were asked for (lines
   * appended to one file stay in order even with several threads); what is asked meanwhile forms the next batch.
   */
  private drain(): Promise<void> {
    this.draining ??= (async () => {
      while (this.queue.length > 0) await this.send(this.nextBatch());
    })().finally(() => {
      this.draining = null;
      if (this.queue.length > 0) this.schedule();
    });
    return this.draining;
  }

  private threads(): Piscina<IoOp[], IoResult[]> {
    if (this.stopped) throw new IoError('the I/O thread is closed', undefined);
    return (this.pool ??= new Piscina(this.poolOptions));
  }

  /**
   * The next batch: small copies first (a delivery waits for its copy; report lines wait for nobody), then the other
   * operations in the order asked, which keeps the appends to one file in order.
   */
  private nextBatch(): Pending[] {
    const copies: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.queue) (p.op.op === 'copy' ? copies : rest).push(p);
    const batch = [...copies, ...rest].slice(0, Math.max(this.maxBatch, copies.length));
    this.queue = [...copies, ...rest].slice(batch.length);
    return batch;
  }

  private async send(batch: Pending[]): Promise<void> {
    let results: IoResult[];
    try {
      results = await this.threads().run(batch.map((p) => p.op));
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
      return;
    }
    batch.forEach((p, i) => {
      const r = results[i]!;
      if ('error' in r) p.reject(new IoError(r.error.message, r.error.code));
      else p.resolve(r.value);
    });
  }

  /** Lets queued operations finish, then stops the threads and waits for them to have exited. */
  async close(): Promise<void> {
    await this.drain();
    this.stopped = true;
    await this.pool?.close();
  }
}
