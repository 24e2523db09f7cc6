import type { FileReady } from '../events/event.js';
import type { Logger } from '../logging/logger.js';
import type { Manifest } from '../manifest/validate.js';
import type { ReportPublisher } from '../reports/publisher.js';
import { buildReport } from '../reports/report.js';
import type { DeliverySource } from './source.js';
import type { DeliveryTarget } from './targets/target.js';

export interface DeliveryWorkerOptions {
  source: DeliverySource;
  targets: Map<string, DeliveryTarget>;
  reports: ReportPublisher;
  /** `<version>_<sha>` for the reports. */
  version: string;
  log: Logger;
  /** Told of every attempt: its target (`(unknown)` for a name not configured), whether it succeeded, and how long it took. */
  onAttempt?: (target: string, ok: boolean, seconds: number) => void;
}

/**
 * Handles one FileReady (dex-pipeline.md §4.6): copies the upload from the `upload` source to the event's target at
 * its path, verifies the bytes sent against the upload's sha256, and records the attempt as one blob-file-copy
 * report. A failed attempt throws, so the event bus retries it and dead-letters it after the last attempt.
 */
export class DeliveryWorker {
  constructor(private readonly opts: DeliveryWorkerOptions) {}

  readonly process = async (e: FileReady): Promise<void> => {
    const start = new Date();
    const t0 = performance.now();
    // An event from the broker may name any target: only configured names become metric labels.
    const targetLabel = this.opts.targets.has(e.deliver_target) ? e.deliver_target : '(unknown)';
    const attempted = (ok: boolean) => this.opts.onAttempt?.(targetLabel, ok, (performance.now() - t0) / 1000);
    const content = { file_source_blob_url: e.src_url, file_destination_blob_url: '', destination_name: e.deliver_target, sha256: '' };
    const log = this.opts.log.child({ uploadId: e.upload_id, target: e.deliver_target, attempt: e.retry_count + 1 });
    try {
      const target = this.opts.targets.get(e.deliver_target);
      if (!target) throw new Error(`failed to get destination for file delivery ${describe(e)}`);
      const stored = await this.opts.source.manifest(e.upload_id);
      const { result, size, known } = await this.send(e.upload_id, target, e.path, stored, (k) => (content.sha256 = k));
      // The first delivery of an upload hashes what it streams from the store and keeps that as the upload's sha256;
      // every other delivery is checked against it.
      const sha256 = known ?? (await this.opts.source.recordSha256(e.upload_id, result.sha256));
      content.sha256 = sha256;
      if (result.sha256 !== sha256 || result.bytes !== size) {
        throw new Error(`delivered bytes do not match the upload: sent ${result.bytes} bytes with sha256 ${result.sha256}, the upload has ${size} bytes with sha256 ${sha256}`);
      }
      content.file_destination_blob_url = result.location;
      // The envelope is filled from the stored manifest (DEX reads it a second time here; it cannot have changed).
      this.report(e, stored, content, start);
      attempted(true);
      log.debug({ location: result.location, bytes: result.bytes }, 'delivered');
    } catch (err) {
      // The upload's sha256 is still kept even when no delivery gets through (hashed from the store in the background).
      if (!content.sha256) this.opts.source.sha256(e.upload_id).catch(() => undefined);
      const message = (err as Error).message || String(err);
      this.report(e, null, content, start, message);
      attempted(false);
      log.warn({ err: message }, 'delivery attempt failed');
      throw err;
    }
  };

  /** A local file goes by path to a target that can copy one; anything else is streamed. */
  private async send(id: string, target: DeliveryTarget, path: string, metadata: Manifest, knownSha256: (hex: string) => void) {
    const local = target.deliverFile ? await this.opts.source.localFile?.(id) : undefined;
    if (local && target.deliverFile) {
      if (local.sha256) knownSha256(local.sha256);
      const result = await target.deliverFile({ path, size: local.size, file: local.file, metadata });
      return { result, size: local.size, known: local.sha256 };
    }
    const { body, size, sha256: known } = await this.opts.source.open(id);
    if (known) knownSha256(known);
    try {
      return { result: await target.deliver({ path, size, body, metadata }), size, known };
    } finally {
      body.destroy();
    }
  }

  private report(e: FileReady, manifest: Manifest | null, content: Record<string, unknown>, start: Date, failure?: string): void {
    this.opts.reports.publish(
      buildReport({
        stage: 'blob-file-copy',
        uploadId: e.upload_id,
        manifest,
        version: this.opts.version,
        content,
        issues: failure ? [{ level: 'ERROR', message: failure }] : [],
        start,
        end: new Date(),
      }),
    );
  }
}

/** The event as DEX prints it in its issue text, without the manifest (it may be large). */
function describe(e: FileReady): string {
  return `{upload_id: ${e.upload_id}, deliver_target: ${e.deliver_target}, path: ${e.path}}`;
}
