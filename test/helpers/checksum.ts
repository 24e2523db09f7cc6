// Upload-Checksum values as a client computes them (tus: base64 of the raw digest; crc32 as 4 bytes big-endian).
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** The algorithms the server announces, in the order of its Tus-Checksum-Algorithm header. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512', 'crc32'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export function checksumOf(algorithm: ChecksumAlgorithm, data: Buffer | string): string {
  if (algorithm !== 'crc32') return createHash(algorithm).update(data).digest('base64');
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data));
  return out.toString('base64');
}
