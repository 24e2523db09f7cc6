// The Redis lock protocol of tusd's redislocker as DEX runs it (dex-pipeline.md §5.2): our instances and the
// original's take, extend, release and hand over the same keys on the same channels.

/** Lease of a held lock; the holder extends it at half its remaining validity. */
export const LEASE_MS = 8000;

/** Key = the upload id itself (no prefix); value = 16 random bytes, standard base64. */
export const lockKey = (id: string) => id;

const REQUEST_PREFIX = 'tusd_lock_release_request_';
const RELEASED_PREFIX = 'tusd_lock_released_';
/** Someone wants the lock: the message is the upload id. */
export const releaseRequestChannel = (id: string) => `${REQUEST_PREFIX}${id}`;
/** The holder let go: the message is the upload id. */
export const releasedChannel = (id: string) => `${RELEASED_PREFIX}${id}`;
/** One pattern subscription covers the release requests of every lock this instance may hold. */
export const RELEASE_REQUEST_PATTERN = `${REQUEST_PREFIX}*`;

export const idOfReleaseRequest = (channel: string) => (channel.startsWith(REQUEST_PREFIX) ? channel.slice(REQUEST_PREFIX.length) : undefined);
export const idOfReleased = (channel: string) => (channel.startsWith(RELEASED_PREFIX) ? channel.slice(RELEASED_PREFIX.length) : undefined);

/** redsync's clock-drift allowance: a lock is trusted until start + lease − 1 % − 2 ms. */
export const driftMs = (leaseMs: number) => Math.floor(leaseMs * 0.01) + 2;

/** redsync's extend script: only the token's owner moves the lease. */
export const EXTEND_SCRIPT = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;

/**
 * redsync's release script followed by tusd's release notice, in one round trip: the key is deleted only by its
 * owner (an expired or stolen lock is left alone), and the notice is published either way, as tusd does.
 */
export const RELEASE_SCRIPT = `if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end return redis.call("PUBLISH", ARGV[2], ARGV[3])`;
