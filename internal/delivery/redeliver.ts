import { readFile } from '../fsutil/fast-fs.js';
import path from 'node:path';
import type { EventBus } from '../events/select.js';
import type { Logger } from '../logging/logger.js';
import type { DataStore, Lister } from '../storage/store.js';
import { NoRoutingGroupError, type Router } from './router.js';
import type { DeliverySource } from './source.js';

export interface RedeliverOptions {
  store: DataStore & Lister;
  source: DeliverySource;
  router: Router;
  bus: EventBus;
  reportsFolder: string;
  log: Logger;
}

/** Targets with a SUCCESS blob-file-copy report for the upload. */
async function deliveredTargets(reportsFolder: string, id: string): Promise<Set<string>> {
  const done = new Set<string>();
  let text: string;
  try {
    text = await readFile(path.join(reportsFolder, `${id}_blob-file-copy`), 'utf8');
  } catch {
    return done;
  }
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as { stage_info?: { status?: string }; content?: { destination_name?: string } };
      if (r.stage_info?.status === 'SUCCESS' && r.content?.destination_name) done.add(r.content.destination_name);
    } catch {
      /* a torn last line (crash while appending) is not a success */
    }
  }
  return done;
}

/**
 * At start-up: every finished upload whose routing-group targets lack a SUCCESS report is delivered again, so a
 * crash between finishing and delivering loses nothing. Runs in the background; returns the events published.
 */
export async function redeliverPending(opts: RedeliverOptions): Promise<number> {
  let published = 0;
  for (const id of await opts.store.list()) {
    try {
      const info = await (await opts.store.get(id)).getInfo();
      if (info.IsPartial || info.SizeIsDeferred || info.Offset !== info.Size) continue;
      const manifest = await opts.source.manifest(id).catch(() => null);
      if (!manifest) continue; // finished before pre-finish stored it: the upload was never acknowledged as complete
      let events;
      try {
        events = opts.router.events(id, manifest);
      } catch (err) {
        if (err instanceof NoRoutingGroupError) continue;
        throw err;
      }
      const done = await deliveredTargets(opts.reportsFolder, id);
      for (const e of events) {
        if (done.has(e.deliver_target)) continue;
        await opts.bus.publish(e);
        published++;
      }
    } catch (err) {
      opts.log.error({ err, uploadId: id }, 'could not check the upload for redelivery');
    }
  }
  if (published > 0) opts.log.info({ events: published }, 'redelivering finished uploads that were not delivered');
  return published;
}
