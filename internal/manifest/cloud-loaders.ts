// Sender manifest configs kept in the cloud (dex-pipeline.md §1.4): in an S3 bucket folder, or in an Azure container.
// Keys are checked as for the local folder, so that a manifest never names an object outside the configs.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { checkConfigKey, type ConfigLoader } from './config.js';
import { readText } from '../storage/cloud.js';

/** `<bucket>/<folder>/<key>` (DEX_S3_MANIFEST_CONFIG_FOLDER_NAME, DEX_MANIFEST_CONFIG_BUCKET_NAME). */
export class S3FolderLoader implements ConfigLoader {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly folder: string,
  ) {}

  async load(key: string): Promise<string | undefined> {
    checkConfigKey(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.folder ? `${this.folder}/${key}` : key }));
      return await res.Body!.transformToString('utf8');
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw err;
    }
  }
}

/** Blobs named `<key>` in a container (DEX_MANIFEST_CONFIG_CONTAINER_NAME). */
export class AzureContainerLoader implements ConfigLoader {
  constructor(private readonly container: ContainerClient) {}

  async load(key: string): Promise<string | undefined> {
    checkConfigKey(key);
    try {
      return await readText((await this.container.getBlobClient(key).download()).readableStreamBody);
    } catch (err) {
      const e = err as { statusCode?: number; code?: string };
      if (e.statusCode === 404 || e.code === 'BlobNotFound' || e.code === 'ContainerNotFound') return undefined;
      throw err;
    }
  }
}
