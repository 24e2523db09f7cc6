// Builds the delivery targets named in deliver.yml.
import type { Logger } from '../../logging/logger.js';
import type { TargetConfig } from '../config.js';
import { FileTarget } from './file.js';
import type { DeliveryTarget } from './target.js';
import type { IoThread } from '../../fsutil/io-thread.js';

/**
 * One target. The cloud SDKs are loaded only when a target of their type is configured: each costs about 20 MiB of
 * memory, which a server with file targets only should not pay.
 */
export async function createTarget(cfg: TargetConfig, log: Logger, copier?: IoThread): Promise<DeliveryTarget> {
  switch (cfg.type) {
    case 'file':
      return new FileTarget(cfg, log, copier);
    case 's3':
      return new (await import('./s3.js')).S3Target(cfg, log);
    case 'az-blob':
      return new (await import('./azblob.js')).AzBlobTarget(cfg, log);
    default: {
      const unknown: never = cfg;
      throw new Error(`Unknown destination type: ${(unknown as { type?: string }).type}`);
    }
  }
}

/**
 * Every configured target, keyed by name, ready for use: file targets have their folders created here, so a
 * fresh install's /health is UP (decisions.md).
 */
export async function createTargets(configs: Map<string, TargetConfig>, log: Logger, copier?: IoThread): Promise<Map<string, DeliveryTarget>> {
  const targets = new Map<string, DeliveryTarget>();
  for (const [name, cfg] of configs) {
    const target = await createTarget(cfg, log, copier);
    // A folder that cannot be made now (an unmounted share) must not stop uploads: /health shows the target DOWN
    // and each delivery tries again.
    if (target instanceof FileTarget) {
      await target.init().catch((err: unknown) => log.warn({ target: name, err: (err as Error).message }, 'file delivery target folder is not available'));
    }
    targets.set(name, target);
  }
  return targets;
}

/** Releases the targets' connections (shutdown). */
export async function closeTargets(targets: Map<string, DeliveryTarget>): Promise<void> {
  await Promise.all([...targets.values()].map((t) => t.close?.()));
}
