import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { ChunkDigest } from './checksum.js';
import { errors, type TusError } from './errors.js';
import type { TusStats } from './stats.js';
import type { ArrivedBody } from '../storage/store.js';

export interface BodyReaderOptions {
  /** Bytes the upload can still take; reading stops (413) as soon as the body goes beyond. */
  limit: number;
  limitError: () => TusError;
  /** Milliseconds without a byte before the body is abandoned (500 ERR_READ_TIMEOUT). */
  idleTimeoutMs: number;
  hash?: ChunkDigest;
  /** Where every byte received is counted (tusd_bytes_received). */
  stats?: Pick<TusStats, 'bytesReceived'>;
}

const cutShort = () => errors.internal('the request body was cut short');

/**
 * The request body as the store sees it. Whatever happens to the request (client gone, idle, too long, a newer
 * request for the same upload, shutdown) this stream ENDS cleanly instead of erroring, so the store keeps every
 * byte that arrived; the reason is kept in `stopError` for the response.
 *
 * The request is piped in (not pipelined: a request error must end this stream, not destroy the store's sink), so
 * backpressure is plain stream piping, as cheap as `req.pipe(file)`.
 */
export class BodyReader extends Transform implements ArrivedBody {
  bytesRead = 0;
  stopError: TusError | null = null;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly req: IncomingMessage,
    private readonly opts: BodyReaderOptions,
  ) {
    super();
    this.timer = setTimeout(() => this.stop(errors.readTimeout()), opts.idleTimeoutMs);
    if (req.destroyed) {
      // The connection closed before the handler got here ('close' already fired): the bytes the request buffered
      // are still readable and are kept.
      for (let c = req.read() as Buffer | null; c !== null; c = req.read() as Buffer | null) this.write(c);
      if (req.complete) this.endReading();
      else this.stop(cutShort());
      return;
    }
    req.on('error', this.onAborted);
    req.on('close', this.onClose);
    req.pipe(this);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.timer.refresh();
    const room = this.opts.limit - this.bytesRead;
    if (chunk.length > room) {
      if (room > 0) this.accept(chunk.subarray(0, room));
      done();
      this.stop(this.opts.limitError());
      return;
    }
    this.accept(chunk);
    done();
  }

  override _flush(done: TransformCallback): void {
    this.detach();
    done();
  }

  private accept(chunk: Buffer): void {
    this.bytesRead += chunk.length;
    if (this.opts.stats) this.opts.stats.bytesReceived += chunk.length;
    this.opts.hash?.update(chunk);
    this.push(chunk);
  }

  private readonly onAborted = () => this.stop(cutShort());
  private readonly onClose = () => {
    if (!this.req.complete) this.stop(cutShort());
  };

  /** Ends the body early; bytes already received stay with the store. */
  stop(reason: TusError): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopError = reason;
    this.req.unpipe(this);
    // Unread bytes are discarded so a paused socket cannot hold the connection; the response closes it.
    this.req.resume();
    this.endReading();
  }

  private endReading(): void {
    this.detach();
    // A store that failed may have destroyed this stream already.
    if (!this.writableEnded && !this.destroyed) this.end();
  }

  private detach(): void {
    clearTimeout(this.timer);
    this.req.off('error', this.onAborted);
    this.req.off('close', this.onClose);
  }

  /** Every byte of the request has been received: what is left to read is buffered in memory (see ArrivedBody). */
  get arrived(): boolean {
    return this.req.complete;
  }

  /** True when the request still has unread bytes (the connection must close after the response). */
  get leftUnread(): boolean {
    return !this.arrived;
  }
}
