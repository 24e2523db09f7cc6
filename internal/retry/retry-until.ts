import { sleep } from './sleep.js';
import { MAX_BACKOFF_MS, MIN_BACKOFF_MS } from './retry-queue.js';

export interface RetryUntilOptions {
  /** One try; a throw means "not yet". */
  attempt(): Promise<void>;
  /** Checked before each try and after each failure: true ends the loop (closed, or someone else saw success). */
  done(): boolean;
  onSuccess(): void;
  onFailure(err: unknown, retryInMs: number): void;
  /** Called once, however the loop ends. */
  onEnd?(): void;
  minMs?: number;
  maxMs?: number;
}

/**
 * Runs `attempt` in the background until it succeeds, waiting 1 s, 2 s, 4 s … at most 60 s between tries: opening a
 * broker link or checking a topic at start-up without holding the start up. cancel() ends the loop and its wait.
 */
export function retryUntil(opts: RetryUntilOptions): { cancel(): void; finished: Promise<void> } {
  let cancelled = false;
  let cancelWait: (() => void) | null = null;
  const finished = (async () => {
    let wait = opts.minMs ?? MIN_BACKOFF_MS;
    try {
      while (!cancelled && !opts.done()) {
        try {
          await opts.attempt();
          if (!cancelled) opts.onSuccess();
          return;
        } catch (err) {
          if (cancelled || opts.done()) return;
          opts.onFailure(err, wait);
          const pause = sleep(wait, { unref: true });
          cancelWait = pause.cancel;
          await pause.done;
          cancelWait = null;
          wait = Math.min(wait * 2, opts.maxMs ?? MAX_BACKOFF_MS);
        }
      }
    } finally {
      opts.onEnd?.();
    }
  })();
  return {
    finished,
    cancel() {
      cancelled = true;
      cancelWait?.();
    },
  };
}
