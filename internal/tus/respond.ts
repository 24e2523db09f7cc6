import type { FastifyReply } from 'fastify';

const LINGER_MS = 2_000;

/**
 * The request still has unread body bytes (the answer came early: 413, interrupted, timed out). Closing the
 * connection at once resets it while the client is still sending, and a reset can make the client's system drop our
 * answer before the client reads it. So, like a web server's lingering close, the rest of the body is drained
 * (discarded) for a short while after the answer is sent; a body that goes on longer has its connection cut.
 */
const closing = new WeakSet<FastifyReply>();

export function closeAfterResponse(reply: FastifyReply): void {
  if (closing.has(reply)) return;
  closing.add(reply);
  const req = reply.request.raw;
  reply.raw.once('finish', () => {
    if (req.complete || req.destroyed) return;
    req.resume();
    const socket = req.socket;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    const done = () => clearTimeout(timer);
    req.once('end', done);
    socket.once('close', done);
  });
}
