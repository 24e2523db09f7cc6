import { fileReady, type FileReady } from '../events/event.js';
import type { Manifest } from '../manifest/validate.js';
import type { DeliveryConfig } from './config.js';
import { deliveredPath } from './path-template.js';

export class NoRoutingGroupError extends Error {
  constructor(key: string) {
    super(`no routing group found for metadata ${key}`);
    this.name = 'NoRoutingGroupError';
  }
}

/** A target that exists but is not one of the upload's group's designations (/route: `Invalid target for metadata`). */
export class TargetNotInGroupError extends Error {
  constructor(target: string, key: string) {
    super(`target ${target} is not in the routing group ${key}`);
    this.name = 'TargetNotInGroupError';
  }
}

/** Decides where an upload goes (dex-pipeline.md §4.5): its routing group's designations, each with its path. */
export class Router {
  constructor(private readonly config: DeliveryConfig) {}

  hasTarget(name: string): boolean {
    return this.config.targets.has(name);
  }

  private designations(manifest: Manifest) {
    const key = `${manifest['data_stream_id'] ?? ''}_${manifest['data_stream_route'] ?? ''}`;
    const group = this.config.groups.get(key);
    if (!group) throw new NoRoutingGroupError(key);
    return { key, group };
  }

  /** One FileReady per designation; a path that cannot be computed (bad ingest timestamp) throws. */
  events(uploadId: string, manifest: Manifest): FileReady[] {
    const { group } = this.designations(manifest);
    return group.map((d) => fileReady({ uploadId, path: deliveredPath(uploadId, d.template, manifest), target: d.name, metadata: manifest }));
  }

  /** The event for one target of the group (/route re-delivery; src_url = the upload id as in DEX). */
  eventFor(uploadId: string, manifest: Manifest, target: string): FileReady {
    const { key, group } = this.designations(manifest);
    const d = group.find((x) => x.name === target);
    if (!d) throw new TargetNotInGroupError(target, key);
    return fileReady({ uploadId, path: deliveredPath(uploadId, d.template, manifest), target, metadata: manifest, srcUrl: uploadId });
  }
}
