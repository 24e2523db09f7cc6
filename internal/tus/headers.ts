import { errors } from './errors.js';

export const TUS_VERSION = '1.0.0';
export const OFFSET_CONTENT_TYPE = 'application/offset+octet-stream';
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512', 'crc32'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

const UINT = /^(?:0|[1-9][0-9]*)$/;

/** Strict non-negative integer: no sign, no leading zeros, no whitespace, within 2^53. */
export function parseUint(v: string | undefined): number | undefined {
  if (v === undefined || !UINT.test(v) || v.length > 16) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

export const MAX_METADATA_BYTES = 8 * 1024;
export const MAX_METADATA_PAIRS = 100;
export const MAX_METADATA_KEY = 128;
const KEY = /^[\x21-\x2b\x2d-\x7e]+$/; // printable ASCII without space and comma
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface ParsedMetadata {
  values: Record<string, string>;
  order: string[];
}

/** `key base64,key2 base64,flag` → values. Anything malformed is a 400: we never silently drop a pair. */
export function parseMetadata(header: string | undefined): ParsedMetadata {
  const values: Record<string, string> = Object.create(null);
  const order: string[] = [];
  if (header === undefined) return { values: {}, order };
  if (Buffer.byteLength(header) > MAX_METADATA_BYTES) throw errors.invalidMetadata(`longer than ${MAX_METADATA_BYTES} bytes`);
  if (header.trim() === '') throw errors.invalidMetadata('empty header');
  const pairs = header.split(',');
  if (pairs.length > MAX_METADATA_PAIRS) throw errors.invalidMetadata(`more than ${MAX_METADATA_PAIRS} pairs`);
  for (const rawPair of pairs) {
    const pair = rawPair.replace(/^[ \t]+|[ \t]+$/g, '');
    const parts = pair.split(' ');
    if (parts.length > 2) throw errors.invalidMetadata('a pair has more than one space');
    const key = parts[0]!;
    const encoded = parts[1] ?? '';
    if (key === '') throw errors.invalidMetadata('empty key');
    if (key.length > MAX_METADATA_KEY || !KEY.test(key)) throw errors.invalidMetadata('invalid key');
    if (Object.prototype.hasOwnProperty.call(values, key)) throw errors.invalidMetadata('duplicate key');
    if (encoded.length % 4 === 1 || !BASE64.test(encoded)) throw errors.invalidMetadata('value is not base64');
    let value: string;
    try {
      value = utf8.decode(Buffer.from(encoded, 'base64'));
    } catch {
      throw errors.invalidMetadata('value is not UTF-8');
    }
    values[key] = value;
    order.push(key);
  }
  return { values: { ...values }, order };
}

/** Re-encodes metadata in the given key order (then any other keys); a key with an empty value is sent alone. */
export function encodeMetadata(values: Record<string, string>, order: string[] = []): string {
  const keys = [...order.filter((k) => k in values), ...Object.keys(values).filter((k) => !order.includes(k))];
  return keys
    .map((k) => (values[k] === '' ? k : `${k} ${Buffer.from(values[k]!, 'utf8').toString('base64')}`))
    .join(',');
}

export type ConcatHeader = { kind: 'none' } | { kind: 'partial' } | { kind: 'final'; urls: string[] };

export function parseConcat(header: string | undefined): ConcatHeader {
  if (header === undefined) return { kind: 'none' };
  if (header === 'partial') return { kind: 'partial' };
  if (header.startsWith('final;')) {
    const urls = header
      .slice('final;'.length)
      .split(' ')
      .filter((u) => u !== '');
    if (urls.length === 0) throw errors.invalidConcat('Upload-Concat: final lists no partial uploads');
    return { kind: 'final', urls };
  }
  throw errors.invalidConcat();
}

export interface ChecksumHeader {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

export function parseChecksum(header: string | undefined): ChecksumHeader | undefined {
  if (header === undefined) return undefined;
  const m = /^([a-z0-9-]+) ([A-Za-z0-9+/=]+)$/.exec(header.trim());
  if (!m) throw errors.invalidChecksumHeader();
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(m[1]!)) throw errors.unsupportedChecksumAlgorithm();
  if (m[2]!.length % 4 === 1 || !BASE64.test(m[2]!)) throw errors.invalidChecksumHeader();
  return { algorithm: m[1] as ChecksumAlgorithm, digest: Buffer.from(m[2]!, 'base64') };
}

/** A single header value: Node joins repeated headers with ", ", which we refuse for tus' own headers. */
export function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** True when `url` (query ignored) is the tus base path, with or without its trailing slash, or below it. */
export function isUnderBasePath(url: string, basePath: string): boolean {
  const path = url.split('?')[0]!;
  return path === basePath.slice(0, -1) || path.startsWith(basePath);
}
