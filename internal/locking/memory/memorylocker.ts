import { LockTimeoutError, type Lock, type Locker } from '../locker.js';

interface Holder {
  requestRelease: () => void;
  releaseRequested: boolean;
}
interface Entry {
  holder: Holder | null;
  waiters: Array<() => void>;
}

/** Single-process locker. A waiting request asks the holder to release and is woken when it does. */
export class MemoryLocker implements Locker {
  private readonly entries = new Map<string, Entry>();

  newLock(id: string): Lock {
    const entries = this.entries;
    let mine: Holder | null = null;
    return {
      async lock(signal, onReleaseRequested) {
        for (;;) {
          if (signal.aborted) throw new LockTimeoutError(id);
          let entry = entries.get(id);
          if (!entry) {
            entry = { holder: null, waiters: [] };
            entries.set(id, entry);
          }
          if (!entry.holder) {
            mine = { requestRelease: onReleaseRequested, releaseRequested: false };
            entry.holder = mine;
            // Others queued behind us: they asked the previous holder to let go, so they ask us too.
            if (entry.waiters.length > 0) {
              mine.releaseRequested = true;
              queueMicrotask(onReleaseRequested);
            }
            return;
          }
          const holder = entry.holder;
          if (!holder.releaseRequested) {
            holder.releaseRequested = true;
            queueMicrotask(holder.requestRelease);
          }
          await new Promise<void>((resolve, reject) => {
            const wake = () => {
              signal.removeEventListener('abort', onAbort);
              resolve();
            };
            const onAbort = () => {
              const i = entry!.waiters.indexOf(wake);
              if (i >= 0) entry!.waiters.splice(i, 1);
              reject(new LockTimeoutError(id));
            };
            entry!.waiters.push(wake);
            signal.addEventListener('abort', onAbort, { once: true });
          });
        }
      },
      tryLock(onReleaseRequested) {
        if (entries.has(id)) return false;
        mine = { requestRelease: onReleaseRequested, releaseRequested: false };
        entries.set(id, { holder: mine, waiters: [] });
        return true;
      },
      async unlock() {
        const entry = entries.get(id);
        if (!entry || !mine || entry.holder !== mine) throw new Error(`unlock of ${id}: lock not held`);
        mine = null;
        entry.holder = null;
        const next = entry.waiters.shift();
        if (next) next();
        else entries.delete(id);
      },
    };
  }
}
