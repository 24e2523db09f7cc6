import type { FastifyReply, FastifyRequest } from 'fastify';
import { errors } from './errors.js';

const ALLOW_METHODS = 'POST, HEAD, PATCH, OPTIONS, GET, DELETE';
const ALLOW_HEADERS =
  'Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum';
const EXPOSE_HEADERS =
  'Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires';

/** tusd's CORS rules: echo an allowed Origin, refuse others with 403; preflights get the allow lists. */
export function applyCors(req: FastifyRequest, reply: FastifyReply, allowOrigin: RegExp): void {
  const origin = req.headers.origin;
  const preflight = req.method === 'OPTIONS';
  if (preflight) {
    reply.header('Access-Control-Allow-Methods', ALLOW_METHODS);
    reply.header('Access-Control-Allow-Headers', ALLOW_HEADERS);
    reply.header('Access-Control-Max-Age', '86400');
  }
  if (origin === undefined) return;
  reply.header('Vary', 'Origin');
  if (!allowOrigin.test(origin)) {
    if (preflight) {
      reply.removeHeader('Access-Control-Allow-Methods');
      reply.removeHeader('Access-Control-Allow-Headers');
      reply.removeHeader('Access-Control-Max-Age');
    }
    throw errors.originNotAllowed();
  }
  reply.header('Access-Control-Allow-Origin', origin);
  if (!preflight) reply.header('Access-Control-Expose-Headers', EXPOSE_HEADERS);
}
