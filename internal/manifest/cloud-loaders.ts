// Sender manifest configs kept in the cloud (dex-pipeline.md §1.4): in an S3 bucket folder, or in an Azure container.
// Keys are checked as for the local folder, so that a manifest never names an object outside the configs.
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { checkConfigKey, type ConfigLister, type ConfigLoader } from './config.js';
import { readText } from '../storage/cloud.js';

/** `<bucket>/<folder>/<key>` (DEX_S3_MANIFEST_CONFIG_FOLDER_NAME, DEX_MANIFEST_CONFIG_BUCKET_NAME). */
export class S3FolderLoader implements ConfigLoader, ConfigLister {
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

  /** The configs at the folder's root and in its `v2/` (for the sender UI). */
  async listV2(): Promise<string[]> {
    const names = new Set<string>();
    for (const sub of ['', 'v2/']) {
      const prefix = `${this.folder ? `${this.folder}/` : ''}${sub}`;
      let token: string | undefined;
      do {
        const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
        for (const o of res.Contents ?? []) if (o.Key) names.add(o.Key.slice(prefix.length));
        token = res.IsTruncated ? res.NextContinuationToken : undefined;
      } while (token);
    }
    return [...names].filter((n) => n !== '');
  }
}

/** Blobs named `<key>` in a container (DEX_MANIFEST_CONFIG_CONTAINER_NAME). */
export class AzureContainerLoader implements ConfigLoader, ConfigLister {
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

  /** The configs at the container's root and in its `v2/` (for the sender UI). */
  async listV2(): Promise<string[]> {
    const names = new Set<string>();
    for (const prefix of ['', 'v2/']) {
      for await (const item of this.container.listBlobsByHierarchy('/', { prefix })) if (item.kind === 'blob') names.add(item.name.slice(prefix.length));
    }
    return [...names];
  }
}
