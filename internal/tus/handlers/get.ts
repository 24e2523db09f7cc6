import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TusCore } from '../core.js';
import { errors } from '../errors.js';

// Types a browser may show inline; anything else is an attachment (stored-XSS guard).
const INLINE = new Set([
  'text/plain', 'image/png', 'image/jpeg', 'image/gif', 'image/bmp', 'image/webp',
  'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/webm', 'audio/ogg',
  'video/mp4', 'video/webm', 'video/ogg', 'application/ogg',
]);
const MIME = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(?:; ?[a-z0-9!#$&^_.+-]+=(?:[a-z0-9!#$&^_.+-]+|"[^"\\\r\n]*"))?$/i;

/**
 * Download of a finished upload (off unless TUS_DISABLE_DOWNLOAD=false). The lock is held only to look the upload
 * up: a finished upload never changes, and an open file outlives a DELETE, so a slow download never blocks a HEAD or a
 * termination of the same upload (tusd #1356).
 */
export async function handleGet(core: TusCore, req: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  const { stream, info } = await core.withLock(req, id, async () => {
    const { upload, info } = await core.find(id);
    if (!core.isFinished(info) || !upload.read) throw errors.notFound();
    return { stream: await upload.read(), info };
  });
  const filetype = info.MetaData['filetype'];
  let contentType = 'application/octet-stream';
  let disposition = 'attachment';
  if (filetype && MIME.test(filetype)) {
    contentType = filetype;
    if (INLINE.has(filetype.split(';')[0]!.trim().toLowerCase())) disposition = 'inline';
  }
  const filename = info.MetaData['filename'];
  if (filename !== undefined) {
    // Header values must be printable ASCII; quotes and backslashes are escaped.
    const safe = filename.replace(/[^\x20-\x7e]/g, '_').replace(/[\\"]/g, (c) => `\\${c}`);
    disposition += `;filename="${safe}"`;
  }
  reply.header('Content-Type', contentType);
  reply.header('Content-Disposition', disposition);
  reply.header('Content-Length', String(info.Size));
  await reply.code(200).send(stream);
}
