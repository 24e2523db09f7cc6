// The upload storage backend, chosen once at start-up (dex-pipeline.md §1.4: Azure > S3 > local disk). The same
// choice gives the tus data store, the store of finished uploads' manifests (the pre-finish appender), the /health
// entries of the store and of the `upload` delivery source, and where the sender manifest configs are read from.
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AzureStorageConfig, Config, S3StorageConfig } from '../config/config.js';
import type { FilesWriter } from '../fsutil/fast-fs.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import { LocalFolderLoader, type ConfigLoader } from '../manifest/config.js';
import { FileStore } from '../storage/file/filestore.js';
import { safeEndpoint } from '../delivery/targets/errors.js';
import type { DataStore, Lister, ManifestKeeper } from '../storage/store.js';

export interface StorageBackend {
  store: DataStore & Lister & ManifestKeeper;
  /** /health entries (dex-pipeline.md §7.2): the upload storage, and the `upload` delivery source. */
  storeHealth: HealthCheck;
  sourceHealth: HealthCheck;
  /** Where sender manifest configs are read from. */
  configLoader: ConfigLoader;
  close(): Promise<void>;
}

export interface StorageOptions {
  config: Config;
  log: Logger;
  /** Writes the small files of the request path (the file store's data, info and `.meta` of new uploads). */
  writeFiles: FilesWriter;
  /** Other instances serve the same uploads (the Redis locker): see FileStoreOptions.shared and heldMark. */
  shared?: boolean;
  heldMark?: (id: string) => number | undefined;
}

export async function openStorage(opts: StorageOptions): Promise<StorageBackend> {
  const { config } = opts;
  const root = config.storage.localFolderUploadsTus;
  await mkdir(root, { recursive: true });
  // Cloud stores keep the bytes on their way to the backend here; the file store keeps the uploads themselves.
  const localDir = path.join(root, config.tus.uploadPrefix);
  if (config.storage.azure) return openAzureStorage(opts, config.storage.azure, localDir);
  if (config.storage.s3) return openS3Storage(opts, config.storage.s3, localDir);
  return openFileStorage(opts, root, localDir);
}

/** How long a backend request may idle: a streamed part waits for a slow client up to TUS_NETWORK_TIMEOUT. */
const idleTimeout = (config: Config) => config.tus.networkTimeoutMs + 10_000;

async function openS3Storage(opts: StorageOptions, cfg: S3StorageConfig, spoolDir: string): Promise<StorageBackend> {
  // The SDK is loaded only when it is used (it costs memory a local setup should not pay).
  const [{ s3StoreClients }, { S3Store }, { S3FolderLoader }] = await Promise.all([
    import('../storage/s3/client.js'),
    import('../storage/s3/s3store.js'),
    import('../manifest/cloud-loaders.js'),
  ]);
  const { client, streamClient } = s3StoreClients({ region: cfg.region, endpoint: cfg.endpoint }, idleTimeout(opts.config));
  const store = new S3Store({
    client,
    streamClient,
    bucket: cfg.bucket,
    prefix: opts.config.tus.uploadPrefix,
    partSize: cfg.partSize,
    maxSize: opts.config.tus.maxSize,
    spoolDir,
    sharedSpool: opts.shared,
    log: opts.log,
  });
  await store.init();
  opts.log.info({ bucket: cfg.bucket, endpoint: safeEndpoint(cfg.endpoint), partSize: cfg.partSize }, 'uploads are stored in S3');
  const manifestConfig = cfg.manifestConfig;
  return {
    store,
    storeHealth: { name: store.healthName, check: () => store.health() },
    sourceHealth: { name: `S3 source ${cfg.bucket}`, check: () => store.health() },
    configLoader: manifestConfig ? new S3FolderLoader(client, manifestConfig.bucket, manifestConfig.folder) : await localConfigLoader(opts),
    close: async () => {
      client.destroy();
      streamClient.destroy();
    },
  };
}

async function openAzureStorage(opts: StorageOptions, cfg: AzureStorageConfig, spoolDir: string): Promise<StorageBackend> {
  const [{ azureBlobService }, { AzureStore }, { AzureContainerLoader }] = await Promise.all([
    import('../storage/azure/client.js'),
    import('../storage/azure/azurestore.js'),
    import('../manifest/cloud-loaders.js'),
  ]);
  const connection = { endpoint: cfg.endpoint, account: cfg.account, key: cfg.key, tenantId: cfg.tenantId, clientId: cfg.clientId, clientSecret: cfg.clientSecret };
  const service = azureBlobService(connection);
  const store = new AzureStore({
    service,
    streamService: azureBlobService(connection, 1),
    container: cfg.container,
    prefix: opts.config.tus.uploadPrefix,
    maxSize: opts.config.tus.maxSize,
    spoolDir,
    sharedSpool: opts.shared,
    log: opts.log,
  });
  await store.init();
  opts.log.info({ account: cfg.account, endpoint: safeEndpoint(cfg.endpoint), container: cfg.container }, 'uploads are stored in Azure Blob storage');
  return {
    store,
    storeHealth: { name: store.healthName, check: () => store.health() },
    sourceHealth: { name: 'Azure source', check: () => store.sourceHealth() },
    configLoader: cfg.manifestConfigContainer ? new AzureContainerLoader(service.getContainerClient(cfg.manifestConfigContainer)) : await localConfigLoader(opts),
    close: async () => undefined,
  };
}

async function openFileStorage(opts: StorageOptions, root: string, directory: string): Promise<StorageBackend> {
  const store = new FileStore({ root, directory, fsync: opts.config.tus.fsync, writeFiles: opts.writeFiles, shared: opts.shared, heldMark: opts.heldMark });
  await store.init();
  return {
    store,
    storeHealth: { name: store.healthName, check: () => store.health() },
    sourceHealth: { name: 'File Source', check: () => isDirectory(directory) },
    configLoader: await localConfigLoader(opts),
    close: async () => undefined,
  };
}

async function isDirectory(folder: string): Promise<void> {
  const s = await stat(folder);
  if (!s.isDirectory()) throw new Error(`${folder} is not a directory`);
}

async function localConfigLoader({ config, log }: StorageOptions): Promise<ConfigLoader> {
  const folder = config.manifest.uploadConfigPath;
  if (config.manifest.validation) {
    await stat(folder).catch(() => log.warn({ uploadConfigPath: folder }, 'UPLOAD_CONFIG_PATH does not exist: every manifest will be refused'));
  }
  return new LocalFolderLoader(folder);
}
