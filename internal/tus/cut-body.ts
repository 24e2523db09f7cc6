import { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errors } from './errors.js';
import { TUS_VERSION, isUnderBasePath } from './headers.js';

/**
 * A connection that ends in the middle of a tus request body (the client half-closes) is a parse error for Node,
 * which Fastify would answer with a generic 400 JSON. The handler keeps the bytes that arrived; answer as it would.
 */
export function answerCutBodiesInTusFormat(server: Server, basePath: string): void {
  server.prependListener('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code !== 'HPE_INVALID_EOF_STATE' || !res || res.headersSent || socket.destroyed) return;
    if (!isUnderBasePath(res.req?.url ?? '', basePath)) return;
    const e = errors.internal('the request body was cut short');
    const body = `${e.code}: ${e.message}\n`;
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nTus-Resumable: ${TUS_VERSION}\r\nX-Content-Type-Options: nosniff\r\n` +
          `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  });
}
