// S3 clients for the upload store, its manifest configs and the delivery targets: path-style addressing with an
// endpoint, and no default trailing checksums (decisions.md: S3-compatible servers then store exact sizes).
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

export interface S3Connection {
  region: string;
  endpoint?: string;
  /** Static credentials; without them the AWS SDK's default chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export function s3ClientConfig(c: S3Connection): S3ClientConfig {
  const config: S3ClientConfig = { region: c.region };
  if (c.credentials) config.credentials = c.credentials;
  if (c.endpoint) {
    config.endpoint = c.endpoint;
    config.forcePathStyle = true;
    // S3-compatible servers may store the SDK's default trailing checksums as part of the object (wrong sizes).
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return config;
}

/**
 * Two clients on one connection pool: `client` retries (small requests, bodies it can send again), `streamClient`
 * never does (a streamed body cannot be replayed; the store sends such a piece again from its spool itself).
 */
export function s3StoreClients(c: S3Connection, idleTimeoutMs: number): { client: S3Client; streamClient: S3Client } {
  const agentOptions = { keepAlive: true, maxSockets: 256 };
  const handler = () => ({
    httpAgent: new Agent(agentOptions),
    httpsAgent: new HttpsAgent(agentOptions),
    connectionTimeout: 10_000,
    // The socket idles while a slow client is sending the body being streamed; beyond that, the request is dropped.
    requestTimeout: idleTimeoutMs,
  });
  return {
    client: new S3Client({ ...s3ClientConfig(c), maxAttempts: 3, requestHandler: handler() }),
    streamClient: new S3Client({ ...s3ClientConfig(c), maxAttempts: 1, requestHandler: handler() }),
  };
}
