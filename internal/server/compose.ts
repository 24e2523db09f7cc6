import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { MemoryLocker } from '../locking/memory/memorylocker.js';
import { FileStore } from '../storage/file/filestore.js';
import { TusCore } from '../tus/core.js';
import { ExpirationCleaner } from '../tus/expiration.js';
import { HookChain, type TusHooks } from '../tus/hooks.js';
import { loadBuildInfo } from '../version/plugin.js';
import { buildApp } from './app.js';
import { ConfigCache, LocalFolderLoader } from '../manifest/config.js';
import { FileManifestWriter, manifestHooks } from '../manifest/hooks.js';
import { ReportPublisher } from '../reports/publisher.js';
import { buildReportSinks } from '../reports/select.js';
import { UploadReporter } from '../reports/hooks.js';
import { reportVersion } from '../version/plugin.js';

export interface Server {
  app: FastifyInstance;
  core: TusCore;
  cleaner: ExpirationCleaner;
  reports: ReportPublisher;
}

/** Composes the parts once: store, locker, hooks, protocol core, HTTP app. Used by cmd/main.ts and by tests. */
export async function composeServer(config: Config, log: Logger, hookProviders: TusHooks[] = []): Promise<Server> {
  const root = config.storage.localFolderUploadsTus;
  await mkdir(root, { recursive: true });
  const storeDir = path.join(root, config.tus.uploadPrefix);
  const store = new FileStore({ root, directory: storeDir, fsync: config.tus.fsync });
  await store.init();
  const locker = new MemoryLocker();
  const hooks = new HookChain(log);
  const build = loadBuildInfo();
  const configs = new ConfigCache(new LocalFolderLoader(config.manifest.uploadConfigPath));
  await mkdir(config.reports.localReportsFolder, { recursive: true });
  const reportSinks = await buildReportSinks(config, log);
  const reports = new ReportPublisher(reportSinks.sinks, log);
  const reporter = new UploadReporter({ publisher: reports, cache: configs, version: reportVersion(build), log });
  if (config.manifest.validation) {
    await stat(config.manifest.uploadConfigPath).catch(() =>
      log.warn({ uploadConfigPath: config.manifest.uploadConfigPath }, 'UPLOAD_CONFIG_PATH does not exist: every manifest will be refused'),
    );
  }
  hooks.add(
    manifestHooks({ cache: configs, validation: config.manifest.validation, writer: new FileManifestWriter(storeDir), log, observer: reporter }),
  );
  hooks.add(reporter.hooks());
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
  const app = buildApp(
    { config, build, core, store, healthChecks: [{ name: store.healthName, check: () => store.health() }] },
    log,
  );
  return { app, core, cleaner: new ExpirationCleaner(core), reports };
}
