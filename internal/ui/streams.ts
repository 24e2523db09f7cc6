import { ConfigNotFoundError, type ConfigCache, type ConfigLister, type FieldConfig } from '../manifest/config.js';
import { findConfig } from '../manifest/validate.js';
import type { Logger } from '../logging/logger.js';

export interface DataStream {
  id: string;
  route: string;
}

/** The fields the sender fills in; the stream and route are fixed by the page (hidden inputs). */
export const FIXED_FIELDS = ['data_stream_id', 'data_stream_route'];

const V2_NAME = /^(.+)_([^_]+)\.json$/;

/**
 * The data streams a sender can choose: every v2 config that exists and parses, named `<id>_<route>.json` (split at
 * the last `_`, as decisions.md splits hydrated v1 names), sorted by stream then route.
 */
export async function listDataStreams(lister: ConfigLister, cache: ConfigCache, log: Logger): Promise<DataStream[]> {
  const out: DataStream[] = [];
  for (const name of await lister.listV2()) {
    const m = V2_NAME.exec(name);
    if (!m || name !== name.toLowerCase()) continue;
    const stream = { id: m[1]!, route: m[2]! };
    try {
      await streamFields(cache, stream);
      out.push(stream);
    } catch (err) {
      log.warn({ err, config: name }, 'sender UI: config left out of the list');
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id) || a.route.localeCompare(b.route));
}

/**
 * The config fields of a stream, looked up exactly as the validator does (lower-cased, root then `v2/`). Rejects
 * with ConfigNotFoundError (message `open <id>_<route>.json: ...`) when there is none.
 */
export async function streamFields(cache: ConfigCache, stream: DataStream): Promise<FieldConfig[]> {
  const key = `${stream.id}_${stream.route}.json`.toLowerCase();
  const { config } = await findConfig(cache, [key, `v2/${key}`], key);
  const fields = config.metadata_config?.fields;
  if (!Array.isArray(fields)) throw new Error(`manifest config ${key} has no metadata_config.fields`);
  return fields.filter((f) => f && typeof f.field_name === 'string');
}

export { ConfigNotFoundError };
