// Delivery to an Azure blob container (dex-pipeline.md §4.1/§4.3): a streamed block-blob upload with the manifest
// as blob metadata; the blob's size is checked with getProperties afterwards. The container is created on first
// use when missing.
import type { TargetConfig } from '../config.js';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { azureBlobService } from '../../storage/azure/client.js';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../logging/logger.js';
import { errorText, safeEndpoint } from './errors.js';
import { HashingCounter, SizeMismatchError } from './hashing.js';
import { encodeMetadata } from './metadata.js';
import { assertRelativePath } from './safe-path.js';
import type { DeliveryRequest, DeliveryResult, DeliveryTarget } from './target.js';

const MiB = 1024 * 1024;
/** Block size and parallel blocks: memory held stays around a few blocks, whatever the file size. */
export const AZ_BLOCK_SIZE = 8 * MiB;
const AZ_CONCURRENCY = 4;
/** How long the first-use container check/creation may take (the original allowed 1 s; slow links need more). */
const CONTAINER_SETUP_TIMEOUT_MS = 10_000;

/** The deliver.yml fields of a `az-blob` target, as parsed by internal/delivery/config.ts (without `type`). */
export type AzBlobTargetConfig = Omit<Extract<TargetConfig, { type: 'az-blob' }>, 'type'>;

/** The target's settings cannot make a client (the /health text of dex-pipeline.md §7.2). */
export class AzureNotConfiguredError extends Error {
  constructor(name: string, cause: unknown) {
    super(`Azure deliverer target ${name} not configured`, { cause });
    this.name = 'AzureNotConfiguredError';
  }
}

export function azureServiceClient(cfg: AzBlobTargetConfig): BlobServiceClient {
  const endpoint = cfg.endpoint ? cfg.endpoint.replace(/\/+$/, '') : cfg.storage_account ? `https://${cfg.storage_account}.blob.core.windows.net` : '';
  if (!endpoint) throw new Error('no endpoint and no storage_account');
  // Shared key first, else a service principal; the delivery worker retries a failed delivery itself.
  return azureBlobService({
    endpoint,
    account: cfg.storage_account,
    key: cfg.storage_key,
    tenantId: cfg.tenant_id,
    clientId: cfg.client_id,
    clientSecret: cfg.client_secret,
  });
}

export class AzBlobTarget implements DeliveryTarget {
  readonly name: string;
  readonly healthName: string;
  readonly containerName: string;
  private readonly cfg: AzBlobTargetConfig;
  private readonly log: Logger;
  private client: ContainerClient | undefined;
  /** The container is known to exist; cleared after any failure so that the next use checks (and creates) again. */
  private containerReady = false;

  constructor(cfg: AzBlobTargetConfig, log: Logger) {
    this.cfg = cfg;
    this.name = cfg.name;
    this.healthName = `Azure deliver target ${cfg.name}`;
    this.containerName = cfg.container_name;
    // Account, endpoint and container only: never the key or the client secret.
    this.log = log.child({ target: cfg.name, targetType: 'az-blob', account: cfg.storage_account, endpoint: cfg.endpoint ? safeEndpoint(cfg.endpoint) : undefined, container: cfg.container_name });
  }

  /** The cached container client; throws (without credentials in the text) when the configuration is unusable. */
  private containerClient(): ContainerClient {
    if (!this.client) {
      try {
        this.client = azureServiceClient(this.cfg).getContainerClient(this.containerName);
      } catch (err) {
        this.log.warn({ err: errorText(err) }, 'azure delivery target not configured');
        throw new AzureNotConfiguredError(this.name, err);
      }
    }
    return this.client;
  }

  /** The container client, with the container created first when it does not exist yet. */
  private async container(): Promise<ContainerClient> {
    const client = this.containerClient();
    if (!this.containerReady) {
      const res = await client.createIfNotExists({ abortSignal: AbortSignal.timeout(CONTAINER_SETUP_TIMEOUT_MS) });
      if (res.succeeded) this.log.info('created the delivery container');
      this.containerReady = true;
    }
    return client;
  }

  async deliver(req: DeliveryRequest): Promise<DeliveryResult> {
    assertRelativePath(req.path);
    const counter = new HashingCounter(req.size);
    let piping: Promise<void> = Promise.resolve();
    let location = req.path;
    try {
      const blob = (await this.container()).getBlockBlobClient(req.path);
      location = safeEndpoint(blob.url); // the blob URL, without a SAS token should the endpoint carry one
      piping = pipeline(req.body, counter);
      // The SDK only hears of a source failure through an 'error' event it may not be listening for yet (an
      // early failure would leave it waiting forever), so a failed copy also aborts the upload.
      const abort = new AbortController();
      piping.catch(() => abort.abort());
      const metadata = encodeMetadata(req.metadata, this.log);
      const uploading = blob.uploadStream(counter, AZ_BLOCK_SIZE, AZ_CONCURRENCY, { metadata, abortSignal: abort.signal });
      uploading.catch(() => undefined); // awaited below; this only prevents an unhandled rejection
      await Promise.all([uploading, piping]);
      const props = await blob.getProperties();
      if (props.contentLength !== req.size) throw new SizeMismatchError(req.size, props.contentLength ?? -1, 'the stored blob has');
    } catch (err) {
      this.containerReady = false;
      counter.destroy();
      req.body.destroy();
      await piping.catch(() => undefined);
      const cause = counter.failure ?? err;
      this.log.warn({ blob: req.path, err: errorText(cause) }, 'azure delivery failed');
      throw new Error(`failed to upload blob to ${this.containerName} ${req.path}: ${errorText(cause)}`, { cause });
    }
    this.log.debug({ blob: req.path, bytes: counter.bytes }, 'azure blob delivered');
    return { location, sha256: counter.sha256, bytes: counter.bytes };
  }

  async health(): Promise<void> {
    const client = await this.container().catch((err: unknown) => {
      if (err instanceof AzureNotConfiguredError) throw err;
      this.containerReady = false;
      throw new Error(`container ${this.containerName}: ${errorText(err)}`, { cause: err });
    });
    try {
      await client.getProperties();
    } catch (err) {
      this.containerReady = false;
      throw new Error(`container ${this.containerName}: ${errorText(err)}`, { cause: err });
    }
  }
}
