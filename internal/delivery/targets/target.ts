// What the delivery worker needs of a destination. Each target type (file, s3, az-blob) implements it.
import type { Readable } from 'node:stream';

export interface DeliveryRequest {
  /** Rendered from the designation's path template; relative to the target's root. */
  path: string;
  /** The upload's size: the bytes sent and the destination's size afterwards must both equal it. */
  size: number;
  /** A fresh stream of the upload's stored bytes. */
  body: Readable;
  /** The stored (hydrated) manifest: object/blob metadata for s3 and az-blob, unused by file. */
  metadata: Record<string, string>;
}

/** The same, for a source whose bytes are in a local file: the target may copy it by path. */
export interface FileDeliveryRequest extends Omit<DeliveryRequest, 'body'> {
  file: string;
}

export interface DeliveryResult {
  /** dex-pipeline.md §4.3 / decisions.md: the joined path, `<endpoint>/<bucket>/<key>`, or the blob URL. */
  location: string;
  /** sha256 (lowercase hex) of the bytes sent. */
  sha256: string;
  bytes: number;
}

export interface DeliveryTarget {
  readonly name: string;
  /** The /health service text (dex-pipeline.md §7.2). */
  readonly healthName: string;
  /** Streams the body to the destination; throws with a clear message on any failure or size mismatch. */
  deliver(req: DeliveryRequest): Promise<DeliveryResult>;
  /** Optional: copies a local file without streaming it through the event loop (hashing and checks as deliver). */
  deliverFile?(req: FileDeliveryRequest): Promise<DeliveryResult>;
  /** Resolves when the destination is reachable; throws with the issue otherwise. */
  health(): Promise<void>;
  close?(): Promise<void>;
}
