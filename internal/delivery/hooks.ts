import type { EventBus } from '../events/select.js';
import type { Logger } from '../logging/logger.js';
import { ManifestNotFoundError } from '../manifest/hooks.js';
import { NotFoundError } from '../storage/store.js';
import type { TusHooks } from '../tus/hooks.js';
import { NoRoutingGroupError, type Router } from './router.js';
import type { DeliverySource } from './source.js';

export interface DeliveryHookOptions {
  source: DeliverySource;
  router: Router;
  bus: EventBus;
  log: Logger;
}

/** Publishes one FileReady per routing-group target for the upload's stored (hydrated) manifest. */
export async function routeUpload(opts: DeliveryHookOptions, id: string): Promise<number> {
  const manifest = await opts.source.manifest(id);
  let events;
  try {
    events = opts.router.events(id, manifest);
  } catch (err) {
    if (err instanceof NoRoutingGroupError) {
      opts.log.warn({ uploadId: id, err: err.message }, 'upload not routed');
      return 0;
    }
    throw err;
  }
  // In order; a failure stops the rest, as in DEX (the start-up redelivery picks them up again).
  for (const e of events) await opts.bus.publish(e);
  return events.length;
}

/**
 * post-finish (after the response): routes the upload, and makes sure its sha256 gets kept in its info for every
 * delivery to be checked against. Partial uploads are fragments and are never routed.
 */
export function deliveryHooks(opts: DeliveryHookOptions): TusHooks {
  return {
    async postFinish(ev) {
      if (ev.upload.IsPartial) return;
      const id = ev.upload.ID;
      // A client may terminate its upload right after finishing it: then there is nothing to hash or route.
      const removed = (err: unknown) => err instanceof NotFoundError || err instanceof ManifestNotFoundError;
      let routed = 0;
      try {
        routed = await routeUpload(opts, id);
      } catch (err) {
        if (!removed(err)) throw err;
        opts.log.info({ uploadId: id }, 'upload removed before it was routed');
        return;
      }
      // A routed upload is hashed by its first delivery, which streams the bytes anyway; any other is hashed here.
      if (routed > 0) return;
      await opts.source.sha256(id).catch((err: unknown) => {
        if (removed(err)) opts.log.debug({ uploadId: id }, 'upload removed before it was hashed');
        else opts.log.error({ err, uploadId: id }, 'could not hash the finished upload');
      });
    },
  };
}
