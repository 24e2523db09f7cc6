// Delivery to an S3 bucket (dex-pipeline.md §4.3, decisions.md): a streamed, multipart-capable upload of the
// body with the manifest as object metadata; the object's size is checked with HeadObject afterwards.
import { AbortMultipartUploadCommand, HeadBucketCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { TargetConfig } from '../config.js';
import { Upload } from '@aws-sdk/lib-storage';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../logging/logger.js';
import { s3ClientConfig as s3Config } from '../../storage/s3/client.js';
import { errorText, safeEndpoint } from './errors.js';
import { HashingCounter, SizeMismatchError } from './hashing.js';
import { encodeMetadata } from './metadata.js';
import { assertRelativePath } from './safe-path.js';
import type { DeliveryRequest, DeliveryResult, DeliveryTarget } from './target.js';

const MiB = 1024 * 1024;
/** Above one part the upload is multipart; memory held is about (queueSize + 1) parts, whatever the file size. */
export const S3_PART_SIZE = 8 * MiB;
const S3_QUEUE_SIZE = 2;

/** The deliver.yml fields of a `s3` target, as parsed by internal/delivery/config.ts (without `type`). */
export type S3TargetConfig = Omit<Extract<TargetConfig, { type: 's3' }>, 'type'>;

export function s3ClientConfig(cfg: S3TargetConfig): S3ClientConfig {
  const credentials = cfg.access_key_id && cfg.secret_access_key ? { accessKeyId: cfg.access_key_id, secretAccessKey: cfg.secret_access_key } : undefined;
  return s3Config({ region: cfg.region || 'us-east-1', endpoint: cfg.endpoint || undefined, credentials });
}

export class S3Target implements DeliveryTarget {
  readonly name: string;
  readonly healthName: string;
  readonly bucket: string;
  private readonly region: string;
  private readonly endpoint: string | undefined;
  private readonly client: S3Client;
  private readonly log: Logger;

  constructor(cfg: S3TargetConfig, log: Logger) {
    this.name = cfg.name;
    this.healthName = `S3 deliver target ${cfg.name}`;
    this.bucket = cfg.bucket_name;
    this.region = cfg.region || 'us-east-1';
    this.endpoint = cfg.endpoint ? safeEndpoint(cfg.endpoint) : undefined;
    this.client = new S3Client(s3ClientConfig(cfg));
    // Endpoint and bucket only: never the credentials.
    this.log = log.child({ target: cfg.name, targetType: 's3', bucket: this.bucket, endpoint: this.endpoint ?? 'aws' });
  }

  /** `<endpoint>/<bucket>/<key>` (path style) with an endpoint, else the AWS virtual-hosted URL. */
  location(key: string): string {
    return this.endpoint ? `${this.endpoint}/${this.bucket}/${key}` : `https://${this.bucket}.s3.${this.region}.amazonaws.com/${key}`;
  }

  async deliver(req: DeliveryRequest): Promise<DeliveryResult> {
    const key = req.path;
    assertRelativePath(key);
    const counter = new HashingCounter(req.size);
    let upload: Upload | undefined;
    let piping: Promise<void> = Promise.resolve();
    try {
      upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: key, Body: counter, ContentLength: req.size, Metadata: encodeMetadata(req.metadata, this.log) },
        partSize: S3_PART_SIZE,
        queueSize: S3_QUEUE_SIZE,
        // We abort ourselves: the SDK's own abort replaces the original error when the abort fails as well.
        leavePartsOnError: true,
      });
      const started = upload;
      piping = pipeline(req.body, counter);
      // A failed copy also aborts the upload, rather than relying on the SDK noticing the stream's error.
      piping.catch(() => started.abort().catch(() => undefined));
      const uploading = upload.done();
      uploading.catch(() => undefined); // awaited below; this only prevents an unhandled rejection
      await Promise.all([uploading, piping]);
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      if (head.ContentLength !== req.size) throw new SizeMismatchError(req.size, head.ContentLength ?? -1, 'the stored object has');
    } catch (err) {
      counter.destroy();
      req.body.destroy();
      await piping.catch(() => undefined);
      await this.abandon(upload?.uploadId, key);
      const cause = counter.failure ?? err;
      this.log.warn({ key, err: errorText(cause) }, 's3 delivery failed');
      throw new Error(`failed to upload file to ${this.bucket} ${key}: ${errorText(cause)}`, { cause });
    }
    this.log.debug({ key, bytes: counter.bytes }, 's3 object delivered');
    return { location: this.location(key), sha256: counter.sha256, bytes: counter.bytes };
  }

  /** Best effort: drops the parts of a failed multipart upload (some S3-compatible servers cannot). */
  private async abandon(uploadId: string | undefined, key: string): Promise<void> {
    if (!uploadId) return;
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      this.log.debug({ key, err: errorText(err) }, 'could not abort the multipart upload');
    }
  }

  async health(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw new Error(`bucket ${this.bucket}: ${errorText(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
