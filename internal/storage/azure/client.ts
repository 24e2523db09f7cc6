// Azure Blob clients for the upload store, its manifest configs and the az-blob delivery targets
// (dex-pipeline.md §1.4): a shared key when one is given, else a service principal.
import { ClientSecretCredential } from '@azure/identity';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';

export interface AzureConnection {
  /** The account's blob endpoint, e.g. `https://<account>.blob.core.windows.net`. */
  endpoint: string;
  account?: string;
  key?: string;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
}

/**
 * `maxTries` 1 for a client that sends streamed bodies (they cannot be sent twice). The SDK's default retries (4
 * tries, 4 s doubling) wait about half a minute on a dead endpoint; callers retry themselves, so fail sooner.
 */
export function azureBlobService(c: AzureConnection, maxTries = 3): BlobServiceClient {
  const endpoint = c.endpoint.replace(/\/+$/, '');
  const options = { retryOptions: { maxTries, retryDelayInMs: 500, maxRetryDelayInMs: 4000 }, keepAliveOptions: { enable: true } };
  if (c.key) {
    if (!c.account) throw new Error('a storage key without a storage account');
    return new BlobServiceClient(endpoint, new StorageSharedKeyCredential(c.account, c.key), options);
  }
  if (c.tenantId && c.clientId && c.clientSecret) {
    return new BlobServiceClient(endpoint, new ClientSecretCredential(c.tenantId, c.clientId, c.clientSecret), options);
  }
  throw new Error('neither a storage key nor a service principal (tenant id, client id and client secret)');
}
