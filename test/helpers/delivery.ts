// Shared pieces of the delivery target suites: generated bodies, digests, a logger whose records can be read.
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../internal/logging/logger.js';
import type { DeliveryRequest } from '../../internal/delivery/targets/target.js';

export const MiB = 1024 * 1024;

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/**
 * `total` bytes generated on the fly (never held in memory): each piece is one random buffer with its index
 * stamped in front, so a lost, repeated or reordered piece changes the digest. `digest()` once it has ended.
 */
export function generatedStream(total: number, piece = MiB): { stream: Readable; digest(): string } {
  const base = randomBytes(piece);
  const hash = createHash('sha256');
  let sent = 0;
  let index = 0n;
  let hex: string | undefined;
  const stream = new Readable({
    highWaterMark: piece,
    read() {
      if (sent >= total) {
        hex = hash.digest('hex');
        this.push(null);
        return;
      }
      const chunk = Buffer.from(base.subarray(0, Math.min(piece, total - sent)));
      if (chunk.length >= 8) chunk.writeBigUInt64BE(index++, 0);
      sent += chunk.length;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return {
    stream,
    digest() {
      if (hex === undefined) throw new Error('the generated stream has not ended');
      return hex;
    },
  };
}

/** A delivery request for a body held in memory (small test files). */
export function requestFor(path: string, data: Buffer | string, metadata: Record<string, string> = {}, size?: number): DeliveryRequest {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { path, size: size ?? buf.length, body: Readable.from([buf]), metadata };
}

export interface CapturedLog {
  log: Logger;
  records(): Array<Record<string, unknown>>;
  text(): string;
}

/** A pino logger writing into memory, to assert on warnings (and that no secret is logged). */
export function captureLogger(): CapturedLog {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  return {
    log,
    text: () => text,
    records: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Collects a readable (an SDK download) into its sha256 and length, without keeping the bytes. */
export async function digestOf(body: AsyncIterable<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** A stream that fails after sending `before` bytes (a source that breaks mid-copy). */
export function failingStream(before: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(before, 1));
        return;
      }
      this.destroy(new Error('source broke'));
    },
  });
}
