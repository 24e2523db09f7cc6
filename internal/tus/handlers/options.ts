import type { FastifyReply } from 'fastify';
import type { TusCore } from '../core.js';
import { CHECKSUM_ALGORITHMS, TUS_VERSION } from '../headers.js';

const BASE_EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,termination,concatenation,checksum';

/** Discovery: what this server speaks. Never version-checked. */
export function handleOptions(core: TusCore, reply: FastifyReply): void {
  reply.header('Tus-Version', TUS_VERSION);
  reply.header('Tus-Extension', core.opts.expirationMs > 0 ? `${BASE_EXTENSIONS},expiration` : BASE_EXTENSIONS);
  reply.header('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
  if (core.opts.maxSize > 0) reply.header('Tus-Max-Size', String(core.opts.maxSize));
  reply.code(200).header('Content-Length', '0').send();
}
