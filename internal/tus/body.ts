import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Hash } from 'node:crypto';
import { errors, type TusError } from './errors.js';

export interface BodyReaderOptions {
  /** Bytes the upload can still take; reading stops (413) as soon as the body goes beyond. */
  limit: number;
  limitError: () => TusError;
  /** Milliseconds without a byte before the body is abandoned (500 ERR_READ_TIMEOUT). */
  idleTimeoutMs: number;
  hash?: Hash;
}

/**
 * The request body as the store sees it. Whatever happens to the request (client gone, idle, too long, a newer
 * request for the same upload, shutdown) this stream ENDS cleanly instead of erroring, so the store keeps every
 * byte that arrived; the reason is kept in `stopError` for the response.
 */
export class BodyReader extends Readable {
  bytesRead = 0;
  stopError: TusError | null = null;
  private done = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly req: IncomingMessage,
    private readonly opts: BodyReaderOptions,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.timer = setTimeout(() => this.stop(errors.readTimeout()), opts.idleTimeoutMs);
    if (req.destroyed) {
      // The connection closed before the handler got here ('close' already fired): the bytes the request buffered
      // are still readable and are kept.
      for (let c = req.read() as Buffer | null; c !== null && !this.done; c = req.read() as Buffer | null) this.onData(c);
      if (req.complete) this.finishReading(null);
      else this.stop(errors.internal('the request body was cut short'));
      return;
    }
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('error', this.onAborted);
    req.on('close', this.onClose);
    if (req.readableEnded) this.onEnd();
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.done) return;
    this.timer.refresh();
    const room = this.opts.limit - this.bytesRead;
    if (chunk.length > room) {
      if (room > 0) this.forward(chunk.subarray(0, room));
      this.stop(this.opts.limitError());
      return;
    }
    if (!this.forward(chunk)) this.req.pause();
  };

  private forward(chunk: Buffer): boolean {
    this.bytesRead += chunk.length;
    this.opts.hash?.update(chunk);
    return this.push(chunk);
  }

  private readonly onEnd = () => this.finishReading(null);
  private readonly onAborted = () => this.stop(errors.internal('the request body was cut short'));
  private readonly onClose = () => {
    if (!this.req.complete) this.stop(errors.internal('the request body was cut short'));
  };

  override _read(): void {
    if (!this.done && this.req.isPaused()) this.req.resume();
  }

  /** Ends the body early; bytes already handed over stay with the store. */
  stop(reason: TusError): void {
    if (this.done) return;
    this.stopError = reason;
    this.finishReading(reason);
  }

  private finishReading(reason: TusError | null): void {
    if (this.done) return;
    this.done = true;
    this.stopError = reason;
    clearTimeout(this.timer);
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onAborted);
    this.req.off('close', this.onClose);
    // Unread bytes are discarded so a paused socket cannot hold the connection; the response closes it.
    if (reason) this.req.resume();
    this.push(null);
  }

  /** True when the request still has unread bytes (the connection must close after the response). */
  get leftUnread(): boolean {
    return !this.req.complete;
  }
}
