import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ChecksumAlgorithm } from './headers.js';

/** A digest fed chunk by chunk while the body streams in (the body is never held whole). */
export interface ChunkDigest {
  update(chunk: Buffer): unknown;
  digest(): Buffer;
}

/** CRC-32 (IEEE, as zlib and tus clients compute it), sent as its 4 bytes big-endian. */
class Crc32Digest implements ChunkDigest {
  private value = 0;

  update(chunk: Buffer): void {
    this.value = crc32(chunk, this.value);
  }

  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.value);
    return out;
  }
}

export function createDigest(algorithm: ChecksumAlgorithm): ChunkDigest {
  return algorithm === 'crc32' ? new Crc32Digest() : createHash(algorithm);
}
