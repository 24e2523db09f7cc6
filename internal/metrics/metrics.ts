// The server's Prometheus metrics (dex-pipeline.md §6, tus-protocol.md §3): DEX's own, tusd's, delivery, reports, and
// Node's process metrics, in one registry served at GET /metrics.
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { UploadInfo } from '../storage/store.js';
import type { HookChain, HookName, TusHooks } from '../tus/hooks.js';
import type { TusStats } from '../tus/stats.js';
import type { ReportPublisher } from '../reports/publisher.js';
import { byLabel, LabelledCounts, scrapedCounter, scrapedGauge, type Sample } from './families.js';
import { HttpRequestCounters } from './http.js';

/** tusd's names of the hook points (`hooktype` label). */
export const HOOK_TYPES: Record<HookName, string> = {
  preCreate: 'pre-create',
  postCreate: 'post-create',
  postReceive: 'post-receive',
  preFinish: 'pre-finish',
  postFinish: 'post-finish',
  preTerminate: 'pre-terminate',
  postTerminate: 'post-terminate',
};

/** Seconds; a delivery copies a whole upload, from a few KiB on a local disk to GiBs over the network. */
const DELIVERY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

let processRegistry: Registry | undefined;
/** Node's default metrics (process_*, nodejs_*) describe the process, so they are collected once per process. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface ServerMetricsOptions {
  /** METRICS_LABELS_FROM_MANIFEST: label names of upload_manifest_count, and the metadata keys they are read from. */
  manifestLabels: readonly string[];
  hooks: Pick<HookChain, 'invocations' | 'failures'>;
  reports: Pick<ReportPublisher, 'dropped'>;
  /** Configured delivery targets: their series exist (at 0) from the start. */
  deliveryTargets: Iterable<string>;
}

/**
 * Counting on the upload path is a plain addition in the code that counts (TusStats, HookChain, the HTTP counters,
 * the upload hooks below); the values are copied into prom-client when /metrics is scraped. Other parts add their own
 * metrics to `registry`.
 */
export class ServerMetrics {
  readonly registry: Registry;
  readonly http = new HttpRequestCounters();
  /** Uploads created or resumed by this process and neither finished nor terminated. */
  private readonly activeUploads = new Set<string>();
  private readonly manifests: LabelledCounts;
  private readonly own = new Registry();
  private readonly deliveries: Counter<'target' | 'result'>;
  private readonly deliveryDuration: Histogram<'target'>;

  constructor(private readonly opts: ServerMetricsOptions) {
    const own = this.own;
    scrapedCounter(own, 'http_requests_total', 'How many HTTP requests processed, partitioned by status code and HTTP method.', ['code', 'method'], () =>
      this.http.samples(),
    );
    scrapedGauge(own, 'dex_server_connections_open', 'Current number of server open connections.', () => this.http.open);
    scrapedGauge(own, 'dex_server_active_uploads', 'Current number of active uploads', () => this.activeUploads.size);
    this.manifests = new LabelledCounts(opts.manifestLabels);
    scrapedCounter(own, 'upload_manifest_count', 'The count of uploads by certain keys in the manifiest', opts.manifestLabels, () => this.manifests.samples());
    scrapedCounter(own, 'tusd_hook_invocations_total', 'Total number of invocations per hook type.', ['hooktype'], () =>
      byLabel('hooktype', opts.hooks.invocations, (n) => HOOK_TYPES[n]),
    );
    scrapedCounter(own, 'tusd_hook_errors_total', 'Total number of execution errors per hook type.', ['hooktype'], () =>
      byLabel('hooktype', opts.hooks.failures, (n) => HOOK_TYPES[n]),
    );
    scrapedCounter(own, 'dex_reports_dropped_total', "Reports dropped because a sink's backlog was full, per sink.", ['sink'], () =>
      opts.reports.dropped().map((d): Sample => [{ sink: d.sink }, d.count]),
    );

    this.deliveries = new Counter({
      name: 'dex_delivery_attempts_total',
      help: 'Delivery attempts per target and result (success or failure).',
      labelNames: ['target', 'result'],
      registers: [own],
    });
    this.deliveryDuration = new Histogram({
      name: 'dex_delivery_duration_seconds',
      help: 'Duration of successful deliveries per target.',
      labelNames: ['target'],
      buckets: DELIVERY_BUCKETS,
      registers: [own],
    });
    for (const target of opts.deliveryTargets) {
      for (const result of ['success', 'failure']) this.deliveries.inc({ target, result }, 0);
      this.deliveryDuration.zero({ target });
    }
    this.registry = Registry.merge([processMetrics(), own]);
  }

  /** tusd's counters (tusd_requests_total, _errors_total, _bytes_received, _uploads_*), read from the protocol core. */
  exportTus(stats: TusStats): void {
    const reg = this.registry;
    scrapedCounter(reg, 'tusd_requests_total', 'Total number of requests served by tusd per method.', ['method'], () => byLabel('method', stats.requests));
    scrapedCounter(reg, 'tusd_errors_total', 'Total number of errors per status.', ['status', 'code'], function* () {
      for (const e of stats.errors.values()) yield [{ status: String(e.status), code: e.code }, e.count];
    });
    scrapedCounter(reg, 'tusd_bytes_received', 'Number of bytes received for uploads.', [], () => [[{}, stats.bytesReceived]]);
    scrapedCounter(reg, 'tusd_uploads_created', 'Number of created uploads.', [], () => [[{}, stats.uploadsCreated]]);
    scrapedCounter(reg, 'tusd_uploads_finished', 'Number of finished uploads.', [], () => [[{}, stats.uploadsFinished]]);
    scrapedCounter(reg, 'tusd_uploads_terminated', 'Number of terminated uploads.', [], () => [[{}, stats.uploadsTerminated]]);
  }

  /**
   * Active uploads and upload_manifest_count. DEX adds 1 at post-create and takes 1 at pre-finish, so a restart or a
   * terminated upload skews it for good; here it is the set of uploads created or resumed (post-receive) by this
   * process that are not finished or terminated.
   */
  uploadHooks(): TusHooks {
    const labels = this.opts.manifestLabels;
    return {
      postCreate: ({ upload }) => this.markActive(upload),
      postReceive: ({ upload }) => this.markActive(upload),
      preFinish: ({ upload }) => {
        this.activeUploads.delete(upload.ID);
        this.manifests.child(labels.map((l) => upload.MetaData[l] ?? '')).value++;
      },
      postTerminate: ({ upload }) => void this.activeUploads.delete(upload.ID),
    };
  }

  /** DeliveryWorker's onAttempt. */
  readonly deliveryAttempt = (target: string, ok: boolean, seconds: number): void => {
    this.deliveries.inc({ target, result: ok ? 'success' : 'failure' });
    if (ok) this.deliveryDuration.observe({ target }, seconds);
  };

  private markActive(upload: UploadInfo): void {
    if (upload.SizeIsDeferred || upload.Offset < upload.Size) this.activeUploads.add(upload.ID);
  }
}
