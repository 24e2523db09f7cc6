// The Redis locker against a real redis-server: the original's redislocker tests (dex-pipeline.md §9.5, lease
// shortened to 200 ms), the wire protocol checked with raw Redis commands (§5.2), and Redis lost and regained.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { LockTimeoutError } from '../../internal/locking/locker.js';
import { RedisLocker } from '../../internal/locking/redis/redislocker.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const log = pino({ level: 'silent' });
const never = () => new AbortController().signal;
const within = (ms: number) => AbortSignal.timeout(ms);
const TOKEN = /^[A-Za-z0-9+/]{22}==$/; // 16 random bytes, standard base64

let redis: RedisServer;
let raw: Redis;
const lockers: RedisLocker[] = [];
// retainMs 0 unless a test says otherwise: keys go back at unlock, as in tusd.
async function locker(opts: { leaseMs?: number; retryMs?: number; retainMs?: number } = {}): Promise<RedisLocker> {
  const l = await RedisLocker.connect(redis.url, { log, leaseMs: 200, retryMs: 50, retainMs: 0, ...opts });
  lockers.push(l);
  return l;
}

before(async () => {
  redis = await startRedis();
  raw = await redis.client();
});
after(async () => {
  await Promise.all(lockers.map((l) => l.close()));
  await redis?.stop();
});

/** A raw subscription from the test: the messages seen on `channel` (or a pattern). */
async function listen(channel: string, pattern = false): Promise<{ messages: Array<[string, string]>; close(): void }> {
  const sub = await redis.client();
  const messages: Array<[string, string]> = [];
  if (pattern) {
    sub.on('pmessage', (_p: string, ch: string, msg: string) => messages.push([ch, msg]));
    await sub.psubscribe(channel);
  } else {
    sub.on('message', (ch: string, msg: string) => messages.push([ch, msg]));
    await sub.subscribe(channel);
  }
  return { messages, close: () => sub.disconnect() };
}

describe('Redis locker: the original redislocker tests (lease 200 ms)', () => {
  it('TestLockUnlock: lock, unlock, lock again, unlock; the release callback is never called', async () => {
    const l = await locker();
    const id = randomUUID();
    let asked = 0;
    const lock = l.newLock(id);
    await lock.lock(never(), () => asked++);
    await lock.unlock();
    await lock.lock(never(), () => asked++);
    await lock.unlock();
    assert.equal(asked, 0);
    assert.equal(await raw.exists(id), 0, 'the key is gone after unlock');
  });

  it('TestMultipleLocks: two ids are held at once, without release requests', async () => {
    const l = await locker();
    let asked = 0;
    const a = l.newLock(randomUUID());
    const b = l.newLock(randomUUID());
    await a.lock(never(), () => asked++);
    await b.lock(never(), () => asked++);
    await a.unlock();
    await b.unlock();
    assert.equal(asked, 0);
  });

  it('TestKeepAlive: a held lock outlives its lease many times over (extended at half its validity)', async () => {
    const l = await locker();
    const id = randomUUID();
    const lock = l.newLock(id);
    let asked = 0;
    await lock.lock(never(), () => asked++);
    const token = await raw.get(id);
    assert.match(String(token), TOKEN);
    await sleep(1000);
    assert.equal(await raw.get(id), token, 'still held with the same token after 5 leases');
    const pttl = await raw.pttl(id);
    assert.ok(pttl > 0 && pttl <= 200, `PTTL ${pttl} is within the lease`);
    assert.equal(asked, 0, 'keeping the lease asks nobody to let go');
    // Another attempt on the same id fails meanwhile (it asks, the holder does not let go).
    await assert.rejects(l.newLock(id).lock(within(150), () => {}), LockTimeoutError);
    assert.equal(asked, 1);
    await lock.unlock();
  });

  it('TestHeldLockExchange: the holder lets go when asked; the second lock on the same id gets it', async () => {
    const l = await locker();
    const id = randomUUID();
    const first = l.newLock(id);
    let asked = 0;
    await first.lock(never(), () => {
      asked++;
      void first.unlock();
    });
    const second = l.newLock(id);
    await second.lock(within(5000), () => {});
    assert.equal(asked, 1);
    await second.unlock();
  });

  it('TestHeldLockNoExchange: a holder that ignores the request keeps the lock; the other attempt times out', async () => {
    const l = await locker();
    const id = randomUUID();
    const first = l.newLock(id);
    let asked = 0;
    await first.lock(never(), () => asked++);
    await assert.rejects(l.newLock(id).lock(within(300), () => {}), LockTimeoutError);
    assert.equal(asked, 1, 'asked once, however often the waiter tried');
    await first.unlock();
  });
});

describe('Redis locker: a key kept a moment for the next request of the same instance (retainMs)', () => {
  it('the next request here takes it without Redis; a release request from elsewhere gets it at once; then it goes back', async () => {
    const [a, b] = [await locker({ retainMs: 60_000 }), await locker()];
    const id = randomUUID();
    const first = a.newLock(id);
    await first.lock(never(), () => {});
    const token = await raw.get(id);
    await first.unlock();
    assert.equal(await raw.get(id), token, 'kept after the request');
    const second = a.newLock(id);
    await second.lock(within(1000), () => {});
    assert.equal(await raw.get(id), token, 'the same key, taken again here');
    await second.unlock();
    // Another instance asks: the idle key is released at once (with its notice), long before retainMs.
    const other = b.newLock(id);
    await other.lock(within(5000), () => {});
    assert.notEqual(await raw.get(id), token);
    await other.unlock();
    assert.equal(await raw.exists(id), 0);
  });

  it('two requests of one instance: the second asks the first in memory and takes over', async () => {
    const l = await locker({ retainMs: 1000 });
    const id = randomUUID();
    const first = l.newLock(id);
    await first.lock(never(), () => void first.unlock());
    const second = l.newLock(id);
    await second.lock(within(5000), () => {});
    await second.unlock();
  });

  it('closing the locker gives kept keys back', async () => {
    const l = await RedisLocker.connect(redis.url, { log, retainMs: 60_000 });
    const id = randomUUID();
    const lock = l.newLock(id);
    await lock.lock(never(), () => {});
    await lock.unlock();
    assert.equal(await raw.exists(id), 1);
    await l.close();
    assert.equal(await raw.exists(id), 0);
  });
});

describe('Redis locker: between instances', () => {
  it('a waiter on instance B makes the holder on instance A let go', async () => {
    const [a, b] = [await locker(), await locker()];
    const id = randomUUID();
    const held = a.newLock(id);
    await held.lock(never(), () => void held.unlock());
    const lock = b.newLock(id);
    await lock.lock(within(5000), () => {});
    await lock.unlock();
  });

  it('a lock whose holder died frees itself when its lease runs out', async () => {
    const l = await locker();
    const id = randomUUID();
    await raw.set(id, 'dead-holder-token', 'PX', 300, 'NX');
    const start = Date.now();
    const lock = l.newLock(id);
    await lock.lock(within(10_000), () => {});
    assert.ok(Date.now() - start >= 250, 'taken only once the lease ended');
    await lock.unlock();
  });

  it('a lease that could not be extended (the key was taken meanwhile) stops the holder', async () => {
    const l = await locker();
    const id = randomUUID();
    const lock = l.newLock(id);
    let asked = 0;
    await lock.lock(never(), () => asked++);
    await raw.set(id, 'someone-else'); // as if the lease had run out and another instance took it
    await waitUntil('the holder is told', () => (asked > 0 ? true : undefined), 5000);
    await lock.unlock();
    assert.equal(await raw.get(id), 'someone-else', 'the release is token-checked: another owner keeps its lock');
  });

  it('unlocking a lock not held is an error; an aborted wait is a LockTimeoutError', async () => {
    const l = await locker();
    await assert.rejects(l.newLock(randomUUID()).unlock(), /not held/);
    const id = randomUUID();
    const held = l.newLock(id);
    await held.lock(never(), () => {});
    const ctl = new AbortController();
    const waiting = l.newLock(id).lock(ctl.signal, () => {});
    await sleep(100);
    ctl.abort();
    await assert.rejects(waiting, LockTimeoutError);
    await held.unlock();
  });
});

describe('Redis locker: the wire protocol, checked with raw Redis commands', () => {
  it('key = upload id, value = 16 random bytes base64, lease 8 s (SET NX PX 8000)', async () => {
    const l = await locker({ leaseMs: undefined });
    assert.equal(l.leaseMs, 8000);
    const id = randomUUID();
    const lock = l.newLock(id);
    await lock.lock(never(), () => {});
    const token = await raw.get(id);
    assert.match(String(token), TOKEN);
    const pttl = await raw.pttl(id);
    assert.ok(pttl > 7000 && pttl <= 8000, `PTTL ${pttl}`);
    // NX: nobody else can set it meanwhile.
    assert.equal(await raw.set(id, 'x', 'PX', 8000, 'NX'), null);
    const released = await listen(`tusd_lock_released_${id}`);
    await lock.unlock();
    assert.equal(await raw.exists(id), 0);
    await waitUntil('the release notice', () => (released.messages.length > 0 ? true : undefined), 5000);
    assert.deepEqual(released.messages, [[`tusd_lock_released_${id}`, id]], 'the notice names the upload');
    released.close();
  });

  it('a PUBLISH of the id on tusd_lock_release_request_<id> asks our holder to let go', async () => {
    const l = await locker();
    const id = randomUUID();
    const lock = l.newLock(id);
    let asked = 0;
    await lock.lock(never(), () => asked++);
    assert.ok((await raw.publish(`tusd_lock_release_request_${id}`, id)) >= 1, 'every locker listens to the pattern');
    await waitUntil('the holder is asked', () => (asked === 1 ? true : undefined), 5000);
    // A request for another id is not ours.
    await raw.publish(`tusd_lock_release_request_${randomUUID()}`, 'x');
    await sleep(50);
    assert.equal(asked, 1);
    await lock.unlock();
  });

  it('a lock held by someone else (e.g. the original server): we publish a release request and take it on the notice', async () => {
    const l = await locker({ leaseMs: undefined, retryMs: 10_000 });
    const id = randomUUID();
    const requests = await listen('tusd_lock_release_request_*', true);
    assert.equal(await raw.set(id, 'foreign-token', 'PX', 8000, 'NX'), 'OK');
    const lock = l.newLock(id);
    let acquired = false;
    const waiting = lock.lock(within(15_000), () => {}).then(() => (acquired = true));
    await waitUntil('the release request', () => (requests.messages.length > 0 ? true : undefined), 5000);
    assert.deepEqual(requests.messages[0], [`tusd_lock_release_request_${id}`, id]);
    assert.equal(acquired, false, 'still waiting');
    // The foreign holder lets go as tusd does: token-checked delete, then the notice.
    await raw.del(id);
    await raw.publish(`tusd_lock_released_${id}`, id);
    await waiting;
    assert.match(String(await raw.get(id)), TOKEN);
    await lock.unlock();
    requests.close();
  });

  it('our release is token-checked and still sends the notice', async () => {
    const l = await locker();
    const id = randomUUID();
    const lock = l.newLock(id);
    await lock.lock(never(), () => {});
    await raw.set(id, 'another-owner', 'PX', 8000);
    const released = await listen(`tusd_lock_released_${id}`);
    await lock.unlock();
    assert.equal(await raw.get(id), 'another-owner');
    await waitUntil('the notice', () => (released.messages.length > 0 ? true : undefined), 5000);
    released.close();
  });
});

describe('Redis locker: Redis lost and regained', () => {
  it('while Redis is down lock() fails at once (not a timeout) and health is DOWN; both recover by themselves', async () => {
    const l = await locker();
    await l.health();
    const id = randomUUID();
    await redis.kill9();
    try {
      await waitUntil('health DOWN', () => l.health().then(() => undefined, (err: Error) => err.message), 10_000);
      const err = await l.newLock(id).lock(within(10_000), () => {}).then(
        () => assert.fail('locked while Redis is down'),
        (e: Error) => e,
      );
      assert.ok(!(err instanceof LockTimeoutError), `a connection error, not a timeout: ${err.message}`);
      assert.match((await l.health().catch((e: Error) => e))?.message ?? '', /Redis .*connection is|Connection|ECONNREFUSED|writeable/i);
    } finally {
      await redis.restart();
      raw = await redis.client();
    }
    await waitUntil('health UP again', () => l.health().then(() => true, () => undefined), 20_000);
    // The pattern subscription came back too: a release request still reaches the holder.
    const lock = l.newLock(id);
    let asked = 0;
    await lock.lock(never(), () => asked++);
    await waitUntil('release request heard after the restart', async () => {
      await raw.publish(`tusd_lock_release_request_${id}`, id);
      return asked > 0 ? true : undefined;
    }, 10_000);
    await lock.unlock();
  });

  it('an unreachable Redis at start-up is an error naming it', async () => {
    await assert.rejects(
      RedisLocker.connect('redis://127.0.0.1:1', { log, redis: { connectTimeout: 2000, retryStrategy: () => null } }),
      /Redis locker: cannot reach Redis/,
    );
  });
});
