import { mkdir } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { selectLocker } from '../locking/select.js';
import { TusCore } from '../tus/core.js';
import { ExpirationCleaner } from '../tus/expiration.js';
import { HookChain, type TusHooks } from '../tus/hooks.js';
import { loadBuildInfo } from '../version/plugin.js';
import { buildApp } from './app.js';
import { ConfigCache } from '../manifest/config.js';
import { StoredManifests, manifestHooks } from '../manifest/hooks.js';
import { ReportPublisher } from '../reports/publisher.js';
import { buildReportSinks } from '../reports/select.js';
import { UploadReporter } from '../reports/hooks.js';
import { reportVersion } from '../version/plugin.js';
import { loadDeliveryConfig } from '../delivery/config.js';
import { deliveryHooks } from '../delivery/hooks.js';
import { redeliverPending } from '../delivery/redeliver.js';
import { Router } from '../delivery/router.js';
import { UploadSource } from '../delivery/source.js';
import { closeTargets, createTargets } from '../delivery/targets/index.js';
import { DeliveryWorker } from '../delivery/worker.js';
import { buildEventBus, type EventBus, type EventBusOptions } from '../events/select.js';
import type { HealthCheck } from '../health/check.js';
import { IoThread } from '../fsutil/io-thread.js';
import { ServerMetrics } from '../metrics/metrics.js';
import { startAuth, type BearerVerifier } from '../auth/verifier.js';
import { createUi } from '../ui/index.js';
import { isLocalFiles } from '../storage/store.js';
import { openStorage } from './storage.js';
import { Admission } from './admission.js';

// In admission's backlog, this much of delivery copies in hand counts as one upload: the limit of 300 then stands for
// about 1.2 GiB of copies (one to a few seconds of the background thread's work), so a 1 GiB upload alone never waits.
const COPY_BYTES_PER_UPLOAD = 4 * 1024 * 1024;

export interface Server {
  app: FastifyInstance;
  /** The sender UI (UI_PORT), a Fastify instance of its own that calls `app` over HTTP; absent when disabled. */
  ui?: FastifyInstance;
  core: TusCore;
  metrics: ServerMetrics;
  cleaner: ExpirationCleaner;
  reports: ReportPublisher;
  bus: EventBus;
  /** Publishes FileReady events for finished uploads not yet delivered everywhere (run once, after listening). */
  redeliver(): Promise<number>;
  /** The bearer-token check when OAUTH_AUTH_ENABLED (the sender UI checks and forwards the user's token with it). */
  auth?: BearerVerifier;
  /** Closes report-sink links and target clients (after the bus is closed and the report queues are drained). */
  close(): Promise<void>;
}

export interface ComposeOptions {
  eventBus?: EventBusOptions;
}

/** Composes the parts once: store, locker, hooks, protocol core, HTTP app. Used by cmd/main.ts and by tests. */
export async function composeServer(config: Config, log: Logger, hookProviders: TusHooks[] = [], options: ComposeOptions = {}): Promise<Server> {
  // The small files of the request path (a new upload's data and info, `.meta`) are written by a thread of our own:
  // the writes of concurrent requests travel as one batch, instead of three thread-pool hand-offs per file.
  const requestIo = new IoThread({ threads: 1 });
  const writeFiles = requestIo.writeFiles.bind(requestIo);
  const { locker, sharedStorage, health: lockerHealth, heldMark } = await selectLocker(config, log);
  const storage = await openStorage({ config, log, writeFiles, shared: sharedStorage, heldMark });
  const store = storage.store;
  const hooks = new HookChain(log);
  const build = loadBuildInfo();
  const configLoader = storage.configLoader;
  const configs = new ConfigCache(configLoader);
  await mkdir(config.reports.localReportsFolder, { recursive: true });
  // Report and event lines, and copies to file targets (read, sha256, write), are done by a thread of our own at a
  // lower priority than the requests (nice +10: the kernel gives requests the CPU first), with no waiting of its
  // own: under sustained load the pipeline must keep up, and any wait per delivery caps deliveries at
  // LISTENER_WORKERS per wait (with a 2 s wait for a quiet moment, 2.5 a second: issue 17).
  // Batches of at most 64: a delivery's copy never waits behind more than one such batch of report lines.
  const background = new IoThread({ threads: 1, niceIncrement: 10, maxBatch: 64 });
  const backgroundAppend = background.append.bind(background);
  const reportSinks = await buildReportSinks(config, log, backgroundAppend);
  const reports = new ReportPublisher(reportSinks.sinks, log);
  const reporter = new UploadReporter({ publisher: reports, cache: configs, version: reportVersion(build), log });
  const manifests = new StoredManifests(store, { rememberRecent: !sharedStorage });
  // New uploads wait while the pipeline is behind (internal/server/admission.ts). The backlog in uploads: events
  // waiting for or in delivery, reports and file lines waiting to be written (about 8 per upload), and delivery
  // copies by their size. A count alone let large uploads pile up: 8 clients sending 256 MiB files back to back were
  // acknowledged at 452 MB/s and delivered at 137, 71 uploads (18 GiB) behind after 60 s, 31 s to drain.
  let bus: EventBus | undefined;
  const admission = new Admission({
    backlog: () => (bus?.backlog() ?? 0) + (reports.backlog() + background.pending) / 8 + background.copyBytes / COPY_BYTES_PER_UPLOAD,
  });
  hooks.add(admission.hooks());
  hooks.add(manifestHooks({ cache: configs, validation: config.manifest.validation, writer: manifests, log, observer: reporter }));
  hooks.add(reporter.hooks());

  // Delivery (dex-pipeline.md §4): post-finish routes each upload to its group's targets through the event bus,
  // whose workers copy it from the `upload` source.
  const delivery = await loadDeliveryConfig(config.delivery.configFile);
  for (const warning of delivery.warnings) log.warn({ file: config.delivery.configFile }, warning);
  const targets = await createTargets(delivery.targets, log, background);
  const source = new UploadSource(store, manifests, storage.sourceHealth, isLocalFiles(store) ? (file) => background.hash(file) : undefined, locker);
  const router = new Router(delivery);
  bus = await buildEventBus(config, log, { appendFile: backgroundAppend, reportsRecorded: () => reports.recorded(), ...options.eventBus });
  const metrics = new ServerMetrics({ manifestLabels: config.manifest.metricsLabelsFromManifest, hooks, reports, deliveryTargets: targets.keys() });
  bus.subscribe(new DeliveryWorker({ source, targets, reports, version: reportVersion(build), log, onAttempt: metrics.deliveryAttempt }).process);
  hooks.add(deliveryHooks({ source, router, bus, log }));
  hooks.add(metrics.uploadHooks());
  for (const h of hookProviders) hooks.add(h);

  const core = new TusCore(
    store,
    locker,
    hooks,
    {
      basePath: config.tus.basePath,
      maxSize: config.tus.maxSize,
      expirationMs: config.tus.expirationSeconds * 1000,
      behindProxy: config.tus.behindProxy,
      networkTimeoutMs: config.tus.networkTimeoutMs,
      lockTimeoutMs: config.tus.lockTimeoutMs,
      disableDownload: config.tus.disableDownload,
      corsAllowOrigin: config.tus.corsAllowOrigin,
    },
    log,
  );
  metrics.exportTus(core.stats);
  // decisions.md order: upload storage, the Redis locker, report and event sinks, subscribers, targets by name, the `upload` source.
  const healthChecks: HealthCheck[] = [
    storage.storeHealth,
    ...lockerHealth,
    // One entry per link: reports and events naming the same SNS topic share it.
    ...new Set([...reportSinks.health, ...bus.health]),
    ...[...targets.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((t) => ({ name: t.healthName, check: () => t.health() })),
    { name: source.healthName, check: () => source.health() },
  ];
  const auth = startAuth(config.oauth, log);
  const app = buildApp(
    { config, build, core, store, healthChecks, route: { router, sources: new Map([['upload', source]]), bus }, metrics, auth },
    log,
  );
  const ui = await createUi({ config, configs, loader: configLoader, api: app, log, auth });
  // Only now, with every part of the configuration accepted, do the I/O threads start: a refused configuration
  // exits the process, and exiting while a worker thread is still starting can abort Node (see IoThread.start).
  requestIo.start();
  background.start();
  return {
    app,
    ui,
    core,
    metrics,
    cleaner: new ExpirationCleaner(core),
    reports,
    bus,
    auth,
    redeliver: () => redeliverPending({ store, source, router, bus, reportsFolder: config.reports.localReportsFolder, log }),
    async close() {
      admission.close();
      try {
        await reportSinks.close();
        await closeTargets(targets);
      } finally {
        // Even when a sink or target fails to close: the threads must have exited before the process exits.
        await Promise.all([background.close(), requestIo.close(), locker.close?.(), storage.close()]);
      }
    },
  };
}
