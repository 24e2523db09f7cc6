import { goTimeUTC } from '../clock/gotime.js';
import { NotFoundError, type ManifestKeeper } from '../storage/store.js';
import type { Logger } from '../logging/logger.js';
import { errors } from '../tus/errors.js';
import type { TusHooks } from '../tus/hooks.js';
import type { ConfigCache } from './config.js';
import { hydrate, sortedManifest } from './hydrate.js';
import { validateManifest, type Manifest } from './validate.js';

/** Where the final manifest of a finished upload is kept for delivery and /route (`<id>.meta` locally). */
export interface ManifestWriter {
  write(id: string, manifest: Manifest): Promise<void>;
  /** The upload was removed. */
  forget?(id: string): void;
}

/** Reads the stored final manifest back (delivery source, /route). Throws ManifestNotFoundError when there is none. */
export interface ManifestReader {
  read(id: string): Promise<Manifest>;
}

export class ManifestNotFoundError extends Error {
  constructor() {
    super('source file does not exist');
    this.name = 'ManifestNotFoundError';
  }
}

const SAFE_ID = /^[0-9a-f-]{36}$/;

/**
 * The hydrated manifest of each finished upload, as a flat object of strings with its keys sorted, kept by the store
 * (`<id>.meta` beside a local or S3 upload, the blob's metadata in Azure).
 */
export class StoredManifests implements ManifestWriter, ManifestReader {
  /**
   * The last manifests written: routing and the delivery worker read a manifest right after pre-finish wrote it,
   * so they are served from memory. Entries are dropped when the upload goes (forget) or when newer ones push them out.
   * Off when other instances share the store: one of them may remove an upload (and its manifest) without this
   * process hearing of it.
   */
  private readonly recent = new Map<string, Manifest>();
  // More than the pipeline may have in hand (internal/server/admission.ts holds new uploads from 300 on).
  private static readonly RECENT = 2048;
  private readonly rememberRecent: boolean;

  constructor(
    private readonly keeper: ManifestKeeper,
    opts: { rememberRecent?: boolean } = {},
  ) {
    this.rememberRecent = opts.rememberRecent ?? true;
  }

  async write(id: string, manifest: Manifest): Promise<void> {
    if (!SAFE_ID.test(id)) throw new Error(`refusing to write a manifest for id ${JSON.stringify(id)}`);
    const sorted = sortedManifest(manifest);
    await this.keeper.writeManifest(id, sorted);
    if (!this.rememberRecent) return;
    this.recent.delete(id);
    this.recent.set(id, sorted);
    if (this.recent.size > StoredManifests.RECENT) this.recent.delete(this.recent.keys().next().value!);
  }

  /** The upload is gone (terminated or expired): never answer from memory for it again. */
  forget(id: string): void {
    this.recent.delete(id);
  }

  async read(id: string): Promise<Manifest> {
    if (!SAFE_ID.test(id)) throw new ManifestNotFoundError();
    const cached = this.recent.get(id);
    if (cached) return { ...cached };
    try {
      return await this.keeper.readManifest(id);
    } catch (err) {
      if (err instanceof NotFoundError) throw new ManifestNotFoundError();
      throw err;
    }
  }
}

/** Told what the manifest hooks did, for the metadata-transform and metadata-verify reports. */
export interface ManifestObserver {
  transformed(id: string, manifest: Manifest): void;
  verified(id: string, manifest: Manifest, errors: string[], start: Date, end: Date): void;
}

export interface ManifestHookOptions {
  cache: ConfigCache;
  validation: boolean;
  writer: ManifestWriter;
  log: Logger;
  observer?: ManifestObserver;
}

const ADDED = ['dex_ingest_datetime', 'upload_id'];

/**
 * The DEX manifest pipeline at the tus hook points: pre-create adds `dex_ingest_datetime` and `upload_id` and
 * validates the manifest (400 with every error); pre-finish stores the hydrated manifest. Partial uploads are
 * fragments of another upload: none of this applies to them.
 */
export function manifestHooks(opts: ManifestHookOptions): TusHooks {
  return {
    async preCreate(ev) {
      if (ev.upload.IsPartial) return undefined;
      const id = ev.upload.ID;
      // The client's keys in the order sent, then the two the server owns (client values for them are replaced).
      const metadata: Manifest = {};
      for (const k of ev.upload.MetaDataOrder ?? Object.keys(ev.upload.MetaData)) {
        if (!ADDED.includes(k) && ev.upload.MetaData[k] !== undefined) metadata[k] = ev.upload.MetaData[k]!;
      }
      metadata['dex_ingest_datetime'] = goTimeUTC();
      metadata['upload_id'] = id;
      opts.observer?.transformed(id, metadata);
      if (opts.validation) {
        const start = new Date();
        let verdict;
        try {
          verdict = await validateManifest(metadata, opts.cache);
        } catch (err) {
          opts.log.error({ err, uploadId: id }, 'manifest validation could not run');
          throw errors.internal(`manifest validation could not run: ${(err as Error).message}`);
        }
        opts.observer?.verified(id, metadata, verdict.errors, start, new Date());
        if (verdict.errors.length > 0) {
          opts.log.info({ uploadId: id, errors: verdict.errors.length }, 'manifest rejected');
          return {
            reject: {
              status: 400,
              contentType: 'application/json',
              body: JSON.stringify({ upload_id: id, validation_errors: verdict.errors }),
            },
          };
        }
      }
      return { metadata };
    },

    async preFinish(ev) {
      if (ev.upload.IsPartial) return;
      const hydrated = await hydrate(ev.upload.MetaData, opts.cache);
      await opts.writer.write(ev.upload.ID, hydrated);
    },

    postTerminate(ev) {
      opts.writer.forget?.(ev.upload.ID);
    },
  };
}
