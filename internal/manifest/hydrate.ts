import path from 'node:path';
import { ConfigNotFoundError, type ConfigCache, type ManifestConfig } from './config.js';
import { manifestVersion, type Manifest } from './validate.js';

/** `covid-all-monthly-vaccination-csv.json` → `covid-all-monthly-vaccination_csv.json` (decisions.md last-hyphen rule). */
export function lastHyphenToUnderscore(name: string): string {
  const base = name.endsWith('.json') ? name.slice(0, -'.json'.length) : name;
  const i = base.lastIndexOf('-');
  return i < 0 ? name : `${base.slice(0, i)}_${base.slice(i + 1)}.json`;
}

async function firstConfig(cache: ConfigCache, keys: string[]): Promise<{ config: ManifestConfig; key: string } | undefined> {
  for (const key of keys) {
    try {
      const config = await cache.get(key);
      if (config) return { config, key };
    } catch (err) {
      if (!(err instanceof ConfigNotFoundError)) throw err;
    }
  }
  return undefined;
}

/**
 * v1 → v2 (dex-api.md §2.6 with decisions.md's fixes): copies `compat_field_name` values into their v2 fields and
 * names the stream and route the way its v2 equivalent would be, so v1 uploads are reported and routed alike.
 * A v2 manifest is returned as it is.
 */
export async function hydrate(m: Manifest, cache: ConfigCache): Promise<Manifest> {
  if (manifestVersion(m) !== '1.0') return { ...m };
  const v1Key = `v1/${m['meta_destination_id'] ?? ''}-${m['meta_ext_event'] ?? ''}.json`.toLowerCase();
  const v1 = await firstConfig(cache, [v1Key]);
  let target: { config: ManifestConfig; key: string } | undefined;
  const compat = v1?.config.compat_config_filename;
  if (compat) {
    const alt = lastHyphenToUnderscore(compat);
    target = await firstConfig(cache, [`v2/${compat}`, `v2/${alt}`, compat, alt]);
  }
  const out: Manifest = { ...m };
  for (const field of (target ?? v1)?.config.metadata_config?.fields ?? []) {
    const from = field.compat_field_name;
    if (from && Object.prototype.hasOwnProperty.call(m, from)) out[field.field_name] = m[from]!;
  }
  out['version'] = '2.0';
  if (target) {
    const name = path.basename(target.key, '.json');
    const cut = name.lastIndexOf('_');
    out['data_stream_id'] = cut < 0 ? name : name.slice(0, cut);
    out['data_stream_route'] = cut < 0 ? '' : name.slice(cut + 1);
  } else {
    out['data_stream_id'] = m['meta_destination_id'] ?? '';
    out['data_stream_route'] = m['meta_ext_event'] ?? '';
  }
  return out;
}

/** Keys sorted, as every manifest written out is (decisions.md). */
export function sortedManifest(m: Manifest): Manifest {
  const out: Manifest = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k]!;
  return out;
}
