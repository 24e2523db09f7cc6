// Manifests of the original's test helper cases (dex-pipeline.md §9.1) that the shipped configs accept.
import { b64 } from './http.js';

export type Manifest = Record<string, string>;

export const DEXTESTING: Readonly<Manifest> = {
  data_stream_id: 'dextesting',
  data_stream_route: 'testevent1',
  sender_id: 'test sender',
  data_producer_id: 'test-producer-id',
  jurisdiction: 'test-jurisdiction',
  received_filename: 'test.txt',
};

export const EICR_GOOD: Readonly<Manifest> = {
  data_stream_id: 'eicr',
  data_stream_route: 'fhir',
  data_producer_id: 'test-producer-id',
  sender_id: 'APHL',
  received_filename: 'test.txt',
  jurisdiction: 'test-jurisdiction',
  meta_ext_objectkey: 'test-obj-key',
  meta_ext_file_timestamp: 'test-file-timestamp',
};

/** As an `Upload-Metadata` header value. */
export const encodeManifest = (m: Readonly<Manifest>) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${b64(v)}`)
    .join(',');
