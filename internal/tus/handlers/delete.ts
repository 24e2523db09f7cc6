import type { FastifyReply, FastifyRequest } from 'fastify';
import { isTerminater } from '../../storage/store.js';
import type { TusCore } from '../core.js';
import { errors } from '../errors.js';

/** Termination. Takes the lock, so an in-flight PATCH saves and stops first. */
export async function handleDelete(core: TusCore, req: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  if (!isTerminater(core.store)) throw errors.methodNotAllowed('GET, HEAD, PATCH');
  const store = core.store;
  await core.withLock(req, id, async () => {
    const { info } = await core.find(id).catch((err: unknown) => {
      // An expired upload can still be terminated.
      if ((err as { code?: string }).code === 'ERR_UPLOAD_EXPIRED') return core.store.get(id).then(async (u) => ({ upload: u, info: await u.getInfo() }));
      throw err;
    });
    const ev = core.hookEvent(req, info);
    const rejection = await core.hooks.preTerminate(ev);
    if (rejection) throw errors.terminationRejected(rejection.body || undefined);
    await store.terminate(id);
    core.stats.uploadsTerminated++;
    core.log.info({ uploadId: id }, 'upload terminated');
    reply.raw.once('close', () => core.hooks.emit('postTerminate', ev));
    reply.code(204).send();
  });
}
