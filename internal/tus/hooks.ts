import type { UploadInfo } from '../storage/store.js';

/** What a hook sees of the HTTP request (headers are a copy). */
export interface HookRequest {
  method: string;
  uri: string;
  remoteAddress: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface HookEvent {
  upload: UploadInfo;
  request: HookRequest;
}

/** A pre-create or pre-terminate hook's refusal: the client gets this status, body and headers. */
export interface HookRejection {
  status: number;
  body: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface PreCreateResult {
  reject?: HookRejection;
  /** Replaces the whole metadata map; its key order is the order HEAD echoes. */
  metadata?: Record<string, string>;
}

/**
 * Lifecycle hook points (tusd's list). pre-* hooks are awaited and may refuse; post-* hooks are called in order
 * without being awaited (a hook that does slow work queues it), and their failures are only logged.
 */
export interface TusHooks {
  preCreate?(ev: HookEvent): Promise<PreCreateResult | void> | PreCreateResult | void;
  postCreate?(ev: HookEvent): void | Promise<void>;
  /** Progress while a body is read: at most once a second per upload, and at the end of each PATCH. */
  postReceive?(ev: HookEvent): void | Promise<void>;
  /** Blocking: runs before the response that completes the upload; a throw makes that response a 500. */
  preFinish?(ev: HookEvent): Promise<void> | void;
  postFinish?(ev: HookEvent): void | Promise<void>;
  preTerminate?(ev: HookEvent): Promise<HookRejection | void> | HookRejection | void;
  postTerminate?(ev: HookEvent): void | Promise<void>;
}

export type HookName = keyof TusHooks;
type Logger = { error(obj: object, msg: string): void };

/** Runs several hook providers as one, in registration order. */
export class HookChain {
  private readonly providers: TusHooks[] = [];
  /** Calls and failures per hook point, as plain numbers for /metrics (tusd_hook_invocations_total, _errors_total). */
  readonly invocations = new Map<HookName, number>();
  readonly failures = new Map<HookName, number>();
  constructor(private readonly log: Logger) {}

  add(h: TusHooks): void {
    this.providers.push(h);
  }

  has(name: HookName): boolean {
    return this.providers.some((p) => typeof p[name] === 'function');
  }

  preCreate(ev: HookEvent): Promise<PreCreateResult> {
    return this.counted('preCreate', async () => {
      let metadata: Record<string, string> | undefined;
      for (const p of this.providers) {
        if (!p.preCreate) continue;
        const r = await p.preCreate({ ...ev, upload: { ...ev.upload, MetaData: metadata ?? ev.upload.MetaData } });
        if (r?.reject) return { reject: r.reject };
        if (r?.metadata) metadata = r.metadata;
      }
      return metadata ? { metadata } : {};
    });
  }

  preFinish(ev: HookEvent): Promise<void> {
    return this.counted('preFinish', async () => {
      for (const p of this.providers) if (p.preFinish) await p.preFinish(ev);
    });
  }

  preTerminate(ev: HookEvent): Promise<HookRejection | undefined> {
    return this.counted('preTerminate', async () => {
      for (const p of this.providers) {
        if (!p.preTerminate) continue;
        const r = await p.preTerminate(ev);
        if (r) return r;
      }
      return undefined;
    });
  }

  /** Fire-and-forget, in order. */
  emit(name: 'postCreate' | 'postReceive' | 'postFinish' | 'postTerminate', ev: HookEvent): void {
    bump(this.invocations, name);
    const failed = (err: unknown) => {
      bump(this.failures, name);
      this.log.error({ err, hook: name, uploadId: ev.upload.ID }, 'hook failed');
    };
    for (const p of this.providers) {
      const fn = p[name];
      if (!fn) continue;
      try {
        const r = fn.call(p, ev);
        if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch(failed);
      } catch (err) {
        failed(err);
      }
    }
  }

  private async counted<T>(name: HookName, run: () => Promise<T>): Promise<T> {
    bump(this.invocations, name);
    try {
      return await run();
    } catch (err) {
      bump(this.failures, name);
      throw err;
    }
  }
}

const bump = (counts: Map<HookName, number>, name: HookName) => counts.set(name, (counts.get(name) ?? 0) + 1);
