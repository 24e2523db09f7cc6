import type { FastifyReply } from 'fastify';

/** The request still has unread body bytes: do not reuse the connection. */
export function closeAfterResponse(reply: FastifyReply): void {
  reply.header('Connection', 'close');
}
