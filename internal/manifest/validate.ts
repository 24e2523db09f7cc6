import { ConfigNotFoundError, type ConfigCache, type ManifestConfig } from './config.js';

export type Manifest = Record<string, string>;
export type ManifestVersion = '1.0' | '2.0';

export const FILENAME_FIELDS = ['filename', 'original_filename', 'meta_ext_filename', 'received_filename'];
const FAILURE = 'validation failure';

/** A manifest the server refuses (400): every line of every error, in config order. */
export interface Verdict {
  version: ManifestVersion | string;
  errors: string[];
  /** The same errors by config field, for forms that show each one beside its field. */
  fieldErrors?: FieldError[];
  config?: ManifestConfig;
  configKey?: string;
}

export interface FieldError {
  field: string;
  kind: 'missing' | 'disallowed' | 'invalid-character';
}

/** decisions.md "Manifests": `version` 2.0/1.0, else v2 when data_stream_id is present, v1 when only meta_destination_id is. */
export function manifestVersion(m: Manifest): string {
  const v = m['version'];
  if (v !== undefined && v !== '') return v;
  if (m['data_stream_id'] !== undefined) return '2.0';
  if (m['meta_destination_id'] !== undefined) return '1.0';
  return '2.0';
}

const has = (m: Manifest, k: string) => Object.prototype.hasOwnProperty.call(m, k);

/** The config key of a manifest and where to look for it, or the missing-field error. */
function lookup(m: Manifest, version: string): { keys: string[]; display: string } | { missing: string } {
  if (version === '1.0') {
    for (const k of ['meta_destination_id', 'meta_ext_event']) if (!has(m, k)) return { missing: k };
    const key = `v1/${m['meta_destination_id']}-${m['meta_ext_event']}.json`.toLowerCase();
    return { keys: [key], display: key };
  }
  for (const k of ['data_stream_id', 'data_stream_route']) if (!has(m, k)) return { missing: k };
  const key = `${m['data_stream_id']}_${m['data_stream_route']}.json`.toLowerCase();
  return { keys: [key, `v2/${key}`], display: key };
}

/** Finds the first existing config among `keys`; not found (or an invalid key) → ConfigNotFoundError for `display`. */
export async function findConfig(cache: ConfigCache, keys: string[], display: string): Promise<{ config: ManifestConfig; key: string }> {
  // Once a config was found somewhere (e.g. in v2/), it is used from there without looking at the earlier places
  // again on every upload: a miss is a file-system call, and configs are not expected to move while running.
  for (const key of keys) {
    const config = cache.peek(key);
    if (config) return { config, key };
  }
  for (const key of keys) {
    let config: ManifestConfig | undefined;
    try {
      config = await cache.get(key);
    } catch (err) {
      if (err instanceof ConfigNotFoundError) throw new ConfigNotFoundError(display, err.message.endsWith('invalid argument') ? 'invalid argument' : undefined);
      throw err;
    }
    if (config) return { config, key };
  }
  throw new ConfigNotFoundError(display);
}

/**
 * Checks a manifest against its sender config (dex-api.md §2.3, §2.6). Resolves with the error lines (empty when
 * valid); a config that exists but cannot be read or parsed rejects (a 500, not the sender's fault).
 */
export async function validateManifest(m: Manifest, cache: ConfigCache): Promise<Verdict> {
  const version = manifestVersion(m);
  if (version !== '1.0' && version !== '2.0') return { version, errors: [`unsupported version ${version} ${FAILURE}`] };
  const where = lookup(m, version);
  if ('missing' in where) return { version, errors: [FAILURE, `field ${where.missing} was missing`] };
  let found;
  try {
    found = await findConfig(cache, where.keys, where.display);
  } catch (err) {
    if (err instanceof ConfigNotFoundError) {
      return { version, errors: [err.message, FAILURE, 'manifest validation config file not found'] };
    }
    throw err;
  }
  const errors: string[] = [];
  const fieldErrors: FieldError[] = [];
  for (const field of found.config.metadata_config?.fields ?? []) {
    const name = field.field_name;
    if (!has(m, name)) {
      if (field.required) {
        errors.push(FAILURE, `field ${name} was missing`);
        fieldErrors.push({ field: name, kind: 'missing' });
        continue;
      }
    }
    const value = m[name] ?? '';
    if (field.allowed_values && field.allowed_values.length > 0) {
      if (!field.allowed_values.includes(value)) {
        errors.push(FAILURE, `${name} had disallowed value ${value}`);
        fieldErrors.push({ field: name, kind: 'disallowed' });
      }
    } else if (FILENAME_FIELDS.includes(name) && value.includes('/')) {
      errors.push(`invalid character found in ${value} ${FAILURE}`);
      fieldErrors.push({ field: name, kind: 'invalid-character' });
    }
  }
  return { version, errors, fieldErrors, config: found.config, configKey: found.key };
}
