// Large uploads without holding them in memory: a generated body, and the server's resident memory.
import { randomBytes, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';

const PIECE = 1024 * 1024;

/** Resident set size (VmRSS) and its peak so far (VmHWM) of a process, in bytes. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB$`, 'm').exec(s);
    if (!m) throw new Error(`${key} is not readable for ${pid}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/**
 * `total` bytes generated on the fly from one small random buffer: each 1 MiB piece is the buffer with its index
 * stamped in front (so a lost, repeated or reordered piece changes the digest). The digest is computed as it goes.
 */
export function generatedBody(total: number, hash: Hash): Readable {
  const base = randomBytes(PIECE);
  let sent = 0;
  let index = 0n;
  return new Readable({
    highWaterMark: PIECE,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const piece = Buffer.from(base.subarray(0, Math.min(PIECE, total - sent)));
      if (piece.length >= 8) piece.writeBigUInt64BE(index++, 0);
      sent += piece.length;
      hash.update(piece);
      this.push(piece);
    },
  });
}
