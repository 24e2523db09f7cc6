// A pass-through stream that counts and hashes (sha256) the bytes a delivery sends, and stops the copy as soon as
// the byte count cannot match the upload's size, so a wrong-sized copy is never committed at the destination.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export class SizeMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly actual: number,
    where: string,
  ) {
    super(`size mismatch: expected ${expected} bytes, ${where} ${actual}`);
    this.name = 'SizeMismatchError';
  }
}

export class HashingCounter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  private hex: string | undefined;
  /** The error this stream failed with, kept because some consumers (SDK uploaders) replace it with their own. */
  failure: Error | undefined;

  /** `expectedSize`: fail when more bytes arrive, or when the source ends short of it. */
  constructor(private readonly expectedSize?: number) {
    super();
  }

  get bytes(): number {
    return this.count;
  }

  /** Lowercase hex sha256 of everything that passed; available once the stream has ended. */
  get sha256(): string {
    if (this.hex === undefined) throw new Error('sha256 requested before the stream ended');
    return this.hex;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.count += chunk.length;
    if (this.expectedSize !== undefined && this.count > this.expectedSize) {
      done(this.fail(new SizeMismatchError(this.expectedSize, this.count, 'the source sent at least')));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (this.expectedSize !== undefined && this.count !== this.expectedSize) {
      done(this.fail(new SizeMismatchError(this.expectedSize, this.count, 'the source sent')));
      return;
    }
    this.hex = this.hash.digest('hex');
    done();
  }

  override _destroy(err: Error | null, done: (error?: Error | null) => void): void {
    if (err && !this.failure) this.failure = err;
    done(err);
  }

  private fail(err: Error): Error {
    this.failure ??= err;
    return err;
  }
}
