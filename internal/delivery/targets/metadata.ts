// Object / blob metadata (decisions.md, "Metadata on S3 objects and Azure blobs"): both stores accept only ASCII
// values and identifier-like keys, so values are percent-encoded and unusable keys are skipped (with a warning).
import type { Logger } from '../../logging/logger.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every UTF-8 byte outside 0x20–0x7E, and `%` itself, becomes `%XX` (uppercase hex); the rest is kept. */
export function encodeMetadataValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** The inverse of encodeMetadataValue (for readers of delivered metadata); a malformed escape is kept as written. */
export function decodeMetadataValue(value: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value.slice(i + 1, i + 3);
    if (value[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(...Buffer.from(value[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

export function isMetadataKey(key: string): boolean {
  return KEY.test(key);
}

/** The manifest as storable metadata: keys that S3 / Azure cannot carry are left out and logged (name only). */
export function encodeMetadata(manifest: Record<string, string>, log: Logger): Record<string, string> {
  const out: Record<string, string> = {};
  // Both stores compare metadata keys case-insensitively (HTTP headers): a second spelling would overwrite the first.
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(manifest)) {
    if (!isMetadataKey(key)) {
      log.warn({ metadataKey: key }, 'metadata key skipped: not storable as object/blob metadata');
      continue;
    }
    if (seen.has(key.toLowerCase())) {
      log.warn({ metadataKey: key }, 'metadata key skipped: same as an earlier key apart from letter case');
      continue;
    }
    seen.add(key.toLowerCase());
    out[key] = encodeMetadataValue(String(value ?? ''));
  }
  return out;
}
