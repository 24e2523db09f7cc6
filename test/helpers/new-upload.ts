// A store's NewUpload for tests that drive a store directly: a plain upload with a fresh id and no metadata.
import { randomUUID } from 'node:crypto';
import type { NewUpload } from '../../internal/storage/store.js';

export const newUpload = (over: Partial<NewUpload> = {}): NewUpload => ({
  id: randomUUID(),
  size: 300,
  sizeIsDeferred: false,
  metadata: {},
  metadataOrder: [],
  isPartial: false,
  isFinal: false,
  partialUploads: null,
  ...over,
});
