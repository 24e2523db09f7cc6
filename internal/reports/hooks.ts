import type { ConfigCache } from '../manifest/config.js';
import { hydrate, sortedManifest } from '../manifest/hydrate.js';
import type { ManifestObserver } from '../manifest/hooks.js';
import type { Manifest } from '../manifest/validate.js';
import type { UploadInfo } from '../storage/store.js';
import type { HookEvent, TusHooks } from '../tus/hooks.js';
import type { Logger } from '../logging/logger.js';
import { buildReport, manifestFilename, type Issue, type Stage } from './report.js';
import type { ReportPublisher } from './publisher.js';

export interface ReportHookOptions {
  publisher: ReportPublisher;
  cache: ConfigCache;
  /** `<version>_<sha>`. */
  version: string;
  log: Logger;
}

/**
 * Emits the DEX processing reports at the hook points (dex-pipeline.md §2.2): metadata-transform and
 * metadata-verify from the manifest hooks, upload-started/-status/-completed from the tus hooks. Reports are built
 * in order per upload (hydrating the manifest is asynchronous) and handed to the publisher, never awaited by a request.
 */
export class UploadReporter implements ManifestObserver {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly opts: ReportHookOptions) {}

  /** Runs report-building steps of one upload one after the other. */
  private inOrder(id: string, step: () => Promise<void>): void {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(step).catch((err: unknown) => this.opts.log.error({ err, uploadId: id }, 'building a report failed'));
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
  }

  private emit(stage: Stage, id: string, manifest: Manifest, content: Record<string, unknown>, extra: { issues?: Issue[]; start?: Date; end?: Date } = {}): void {
    this.opts.publisher.publish(buildReport({ stage, uploadId: id, manifest, version: this.opts.version, content, ...extra }));
  }

  transformed(id: string, manifest: Manifest): void {
    this.inOrder(id, async () => {
      const m = await hydrate(manifest, this.opts.cache);
      this.emit('metadata-transform', id, m, {
        transforms: [
          { action: 'update', field: 'ID', value: id },
          { action: 'append', field: 'dex_ingest_datetime', value: manifest['dex_ingest_datetime'] ?? '' },
          { action: 'append', field: 'upload_id', value: id },
        ],
      });
    });
  }

  verified(id: string, manifest: Manifest, errors: string[], start: Date, end: Date): void {
    this.inOrder(id, async () => {
      const m = await hydrate(manifest, this.opts.cache);
      const issues: Issue[] = errors.length ? [{ level: 'ERROR', message: errors.join('\n') }] : [];
      this.emit('metadata-verify', id, m, { filename: manifestFilename(manifest), metadata: sortedManifest(m) }, { issues, start, end });
    });
  }

  private status(ev: HookEvent, m: Manifest, at: 'start' | 'end'): void {
    const u = ev.upload;
    const now = new Date();
    this.emit(
      'upload-status',
      u.ID,
      m,
      { filename: manifestFilename(m), tguid: u.ID, offset: u.Offset, size: u.SizeIsDeferred ? 0 : u.Size },
      at === 'start' ? { start: now } : { end: now },
    );
  }

  private withManifest(ev: HookEvent, fn: (m: Manifest, upload: UploadInfo) => void): void {
    if (ev.upload.IsPartial) return;
    const upload = ev.upload;
    this.inOrder(upload.ID, async () => fn(await hydrate(upload.MetaData, this.opts.cache), upload));
  }

  hooks(): TusHooks {
    return {
      postCreate: (ev) =>
        this.withManifest(ev, (m) => {
          this.emit('upload-started', ev.upload.ID, m, { status: 'SUCCESS' });
          this.status(ev, m, 'start');
        }),
      postReceive: (ev) => this.withManifest(ev, (m) => this.status(ev, m, 'start')),
      postFinish: (ev) =>
        this.withManifest(ev, (m) => {
          this.emit('upload-completed', ev.upload.ID, m, { status: 'SUCCESS' });
          this.status(ev, m, 'end');
        }),
    };
  }
}
