// Per-upload locks with release requests (tusd's design): a newer request asks the holder to let go.
export interface Lock {
  /**
   * Resolves once the lock is held. `onReleaseRequested` is called (at most once) when another request wants it;
   * the holder then saves what it has and unlocks. Rejects with LockTimeoutError when `signal` aborts first.
   */
  lock(signal: AbortSignal, onReleaseRequested: () => void): Promise<void>;
  /** Optional fast path: takes the lock at once if it is free (no timer, no waiting). */
  tryLock?(onReleaseRequested: () => void): boolean;
  unlock(): Promise<void>;
}

export interface Locker {
  newLock(id: string): Lock;
  readonly healthName?: string;
  health?(): Promise<void>;
  close?(): Promise<void>;
}

export class LockTimeoutError extends Error {
  constructor(id: string) {
    super(`failed to acquire lock for ${id} before timeout`);
    this.name = 'LockTimeoutError';
  }
}
