import type { TusHooks } from '../tus/hooks.js';

export interface AdmissionOptions {
  /** Work the pipeline has been handed and not yet done, in uploads (see composeServer). */
  backlog: () => number;
  /** From this backlog on, new uploads wait (default 300, ~0.25 s of pipeline work; 1,000 held ~15 MiB more). */
  limit?: number;
  /** They go ahead once it is down to this (default limit / 2). */
  resume?: number;
  /** A new upload never waits longer than this (default 5 s): a pipeline that is stuck does not stop uploads. */
  maxWaitMs?: number;
  /** How often the backlog is looked at while uploads wait (default 10 ms). */
  pollMs?: number;
}

/**
 * Admission of new uploads. Every finished upload hands the pipeline its reports, its FileReady event, its delivery
 * copy and hash; on two cores the requests can always outrun that work, and then the backlog (and the memory it
 * holds) grows for as long as the load lasts and takes as long to drain (issue 17: 18,000 uploads behind after 15 s,
 * 490 MiB). So a creation waits while the backlog is above `limit`, until it is down to `resume`: the upload rate
 * follows what the whole pipeline carries, the backlog stays bounded, and it drains within a fraction of a second
 * once the load stops. Uploads already created (PATCH, HEAD) never wait.
 */
export class Admission {
  private readonly limit: number;
  private readonly resume: number;
  private readonly maxWaitMs: number;
  private readonly pollMs: number;
  private waiters: Array<{ go: () => void; timer: NodeJS.Timeout }> = [];
  private poller: NodeJS.Timeout | null = null;
  private closed = false;
  /** Creations that had to wait so far. */
  waited = 0;

  constructor(private readonly opts: AdmissionOptions) {
    this.limit = opts.limit ?? 300;
    this.resume = opts.resume ?? Math.floor(this.limit / 2);
    this.maxWaitMs = opts.maxWaitMs ?? 5000;
    this.pollMs = opts.pollMs ?? 10;
  }

  /** Resolves when a new upload may be created: at once (undefined, no promise) unless the backlog is too high. */
  admit(): Promise<void> | undefined {
    if (this.closed || (this.waiters.length === 0 && this.opts.backlog() < this.limit)) return undefined;
    this.waited++;
    return new Promise<void>((resolve) => {
      const waiter = {
        go: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve();
        }, this.maxWaitMs),
      };
      this.waiters.push(waiter);
      this.poller ??= setInterval(this.check, this.pollMs);
    });
  }

  private readonly check = () => {
    if (!this.closed && this.waiters.length > 0 && this.opts.backlog() > this.resume) return;
    for (const w of this.waiters.splice(0)) w.go();
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
  };

  /** Lets every waiting creation go, and no later one wait (shutdown). */
  close(): void {
    this.closed = true;
    this.check();
  }

  /** The pre-create hook (first in the chain, so that a waiting creation has done no work yet). */
  hooks(): TusHooks {
    return { preCreate: () => this.admit() };
  }
}
