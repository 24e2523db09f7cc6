import type { FastifyInstance, FastifyReply } from 'fastify';
import type { EventBus } from '../events/select.js';
import { ManifestNotFoundError } from '../manifest/hooks.js';
import { UPLOAD_ID } from '../tus/core.js';
import { NoRoutingGroupError, TargetNotInGroupError, type Router } from './router.js';
import type { DeliverySource } from './source.js';

export interface RoutePluginOptions {
  router: Router;
  /** Named sources; DEX registers only `upload`. */
  sources: Map<string, DeliverySource>;
  bus: EventBus;
}

// Go's http.Error: text/plain, the message and a newline.
const fail = (reply: FastifyReply, status: number, message?: string) =>
  reply.code(status).type('text/plain; charset=utf-8').send(message === undefined ? '' : `${message}\n`);

/**
 * POST /route/{id} {"target", "source"?}: delivers a finished upload to one target of its routing group again
 * (dex-pipeline.md §4.7). The checks run in DEX's order, so an unknown upload is a 404 whatever the target.
 */
export async function routePlugin(app: FastifyInstance, opts: RoutePluginOptions): Promise<void> {
  // The body is parsed here, so that a bad one is a bare 400 rather than Fastify's JSON error.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, req, reply) => {
    req.log.debug({ err: (err as Error).message }, 'unreadable /route request');
    return fail(reply, (err as { statusCode?: number }).statusCode === 413 ? 413 : 400);
  });

  app.all('/route/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    if (id === '') return reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n');
    if (req.method !== 'POST') return fail(reply, 400);
    let body: { target?: unknown; source?: unknown };
    try {
      body = JSON.parse(typeof req.body === 'string' ? req.body : '') as typeof body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    } catch {
      return fail(reply, 400);
    }
    const sourceName = typeof body.source === 'string' && body.source !== '' ? body.source : 'upload';
    const target = typeof body.target === 'string' ? body.target : '';
    const source = opts.sources.get(sourceName);
    if (!source) return fail(reply, 500, 'Could not find source');

    let manifest;
    try {
      if (!UPLOAD_ID.test(id)) throw new ManifestNotFoundError();
      manifest = await source.manifest(id);
    } catch (err) {
      if (!(err instanceof ManifestNotFoundError)) req.log.error({ err, uploadId: id }, 'route: manifest lookup failed');
      return fail(reply, 404, err instanceof ManifestNotFoundError ? err.message : 'could not read the stored manifest');
    }
    if (!opts.router.hasTarget(target)) return fail(reply, 400, 'Invalid target');

    let event;
    try {
      event = opts.router.eventFor(id, manifest, target);
    } catch (err) {
      if (err instanceof NoRoutingGroupError || err instanceof TargetNotInGroupError) return fail(reply, 400, 'Invalid target for metadata');
      // A path that cannot be computed (bad ingest timestamp) is the manifest's fault too.
      req.log.warn({ err, uploadId: id, target }, 'route: no path for the target');
      return fail(reply, 400, 'Invalid target for metadata');
    }
    try {
      await opts.bus.publish(event);
    } catch (err) {
      req.log.error({ err, uploadId: id, target }, 'route: publishing the event failed');
      return fail(reply, 500, (err as Error).message);
    }
    req.log.info({ uploadId: id, target }, 're-delivery requested');
    return reply.code(200).type('text/plain; charset=utf-8').send(id);
  });
}
