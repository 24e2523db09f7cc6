import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** What background work asks before it starts: resolves when it may go ahead. */
export interface BackgroundGate {
  settle(): Promise<void>;
}

export interface ForegroundOptions {
  /** The API counts as quiet once no request has been open for this long (default 50 ms). */
  quietMs?: number;
  /** Background work waits at most this long for a quiet moment (default 2 s): under steady load it still moves. */
  maxDeferMs?: number;
}

const POLL_MS = 10;

/**
 * Upload requests come first. Report and event lines, delivery copies and hashes are background work for our own
 * I/O threads; on a machine with few cores, each file they create costs the CPU time and kernel locks that requests
 * are waiting for. So background work waits for a quiet moment of the upload API (no request open for 50 ms),
 * and never longer than 2 s, so that under steady load it still runs, in batches, every 2 s at most.
 */
export class ForegroundActivity implements BackgroundGate {
  private active = 0;
  private lastEnd = 0;
  private closing = false;
  private readonly quietMs: number;
  private readonly maxDeferMs: number;

  constructor(opts: ForegroundOptions = {}) {
    this.quietMs = opts.quietMs ?? 50;
    this.maxDeferMs = opts.maxDeferMs ?? 2000;
  }

  /** Counts a request as open until its response is closed (sent, or the connection gone). */
  track(res: ServerResponse): void {
    this.active++;
    res.once('close', () => {
      this.active--;
      this.lastEnd = Date.now();
    });
  }

  get quiet(): boolean {
    return this.closing || (this.active === 0 && Date.now() - this.lastEnd >= this.quietMs);
  }

  async settle(): Promise<void> {
    const deadline = Date.now() + this.maxDeferMs;
    while (!this.quiet && Date.now() < deadline) await sleep(POLL_MS);
  }

  /** Shutting down: background work no longer waits. */
  release(): void {
    this.closing = true;
  }
}
