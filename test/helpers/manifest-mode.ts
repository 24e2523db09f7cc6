// The protocol suites run twice: as a plain tus server (UPLOAD_MANIFEST_VALIDATION=false) and, with
// DEX_TEST_MANIFEST_MODE=on, with validation on — then every creation carries a valid dextesting manifest after the
// client's own pairs, and assertions compare only the client's pairs.
import { OutgoingHttpHeaders } from 'node:http';

export const MANIFEST_MODE = process.env.DEX_TEST_MANIFEST_MODE === 'on';

export const VALID_MANIFEST: Readonly<Record<string, string>> = {
  data_stream_id: 'dextesting',
  data_stream_route: 'testevent1',
  sender_id: 'test-sender',
  data_producer_id: 'test-producer',
  jurisdiction: 'test-jurisdiction',
  received_filename: 'test.txt',
};

const encode = (m: Readonly<Record<string, string>>) =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');

/** The manifest as `Upload-Metadata` pairs. */
export const MANIFEST_PAIRS = encode(VALID_MANIFEST);

/** The server env for the current mode (a suite may still override it). */
export const modeEnv = (): Record<string, string> => ({ UPLOAD_MANIFEST_VALIDATION: MANIFEST_MODE ? 'true' : 'false' });

/**
 * `Upload-Metadata` for a creation: the client's pairs, followed in manifest mode by the valid manifest. An explicitly
 * empty header (a test of bad metadata) is left as it is; `undefined` becomes the manifest alone in manifest mode.
 */
export function creationMetadata(client?: string): string | undefined {
  if (!MANIFEST_MODE) return client;
  if (client === undefined) return MANIFEST_PAIRS;
  if (client.trim() === '') return client;
  return `${client},${MANIFEST_PAIRS}`;
}

/** The same for a headers object: adds/extends `Upload-Metadata` unless the request creates a partial upload. */
export function withManifest(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (!MANIFEST_MODE) return headers;
  const concat = Object.entries(headers).find(([k]) => k.toLowerCase() === 'upload-concat')?.[1];
  if (concat === 'partial') return headers;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'upload-metadata');
  const current = key ? (headers[key] as string | undefined) : undefined;
  const out = { ...headers };
  if (key) delete out[key];
  out['Upload-Metadata'] = creationMetadata(current);
  return out;
}

const NOT_CLIENT = new Set(['dex_ingest_datetime', 'upload_id', ...(MANIFEST_MODE ? Object.keys(VALID_MANIFEST) : [])]);

/** The client's own pairs of an echoed `Upload-Metadata` (server-added and manifest-mode pairs dropped). */
export function clientPairs(header: string | string[] | undefined): string {
  if (header === undefined) return '';
  return String(header)
    .split(',')
    .filter((p) => p !== '' && !NOT_CLIENT.has(p.split(' ')[0]!))
    .join(',');
}
