import type { Config } from '../config/config.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import type { Locker } from './locker.js';
import { MemoryLocker } from './memory/memorylocker.js';

export interface LockerChoice {
  locker: Locker;
  /**
   * Other instances may serve the same uploads from the same storage (the Redis locker is the sign of it): stores and
   * caches must then not trust what this process remembers about an upload.
   */
  sharedStorage: boolean;
  /** The locker's /health entry (Redis only). */
  health: HealthCheck[];
  /** Shared storage: changes while this instance keeps an upload's lock with it (RedisLocker.heldMark). */
  heldMark?: (id: string) => number | undefined;
}

/** REDIS_CONNECTION_STRING set → the Redis locker, PINGed now (unreachable = a fatal start-up error); else in memory. */
export async function selectLocker(config: Config, log: Logger): Promise<LockerChoice> {
  const url = config.locking.redisUrl;
  if (!url) return { locker: new MemoryLocker(), sharedStorage: false, health: [] };
  // Loaded only when configured, like the other optional clients.
  const { RedisLocker } = await import('./redis/redislocker.js');
  const locker = await RedisLocker.connect(url, { log: log.child({ component: 'redis-locker' }) });
  log.info({ leaseMs: locker.leaseMs }, 'upload locks are held in Redis: several instances may serve one upload');
  return { locker, sharedStorage: true, health: [{ name: locker.healthName, check: () => locker.health() }], heldMark: (id) => locker.heldMark(id) };
}
