import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { compileTemplate, TemplateError, type CompiledTemplate } from './path-template.js';

export type TargetConfig =
  | { type: 'file'; name: string; path: string }
  | { type: 's3'; name: string; bucket_name: string; access_key_id?: string; secret_access_key?: string; endpoint?: string; region?: string }
  | {
      type: 'az-blob';
      name: string;
      container_name: string;
      storage_account?: string;
      storage_key?: string;
      endpoint?: string;
      tenant_id?: string;
      client_id?: string;
      client_secret?: string;
    };

export interface Designation {
  name: string;
  template: CompiledTemplate;
}

export interface DeliveryConfig {
  targets: Map<string, TargetConfig>;
  /** `<data_stream_id>_<data_stream_route>` → where its uploads go, in order. */
  groups: Map<string, Designation[]>;
  warnings: string[];
}

export class DeliveryConfigError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'DeliveryConfigError';
  }
}

/** `$NAME` / `${NAME}` over the whole text before parsing (unset → empty); a lone `$` stays. */
export function expandDeliveryEnv(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)/g, (_m, a?: string, b?: string) => env[(a ?? b)!] ?? '');
}

const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

/** Reads and checks `deliver.yml` (dex-pipeline.md §4.1); every problem is a start-up error naming it. */
export async function loadDeliveryConfig(file: string, env: Record<string, string | undefined> = process.env): Promise<DeliveryConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new DeliveryConfigError(file, `cannot read the delivery config: ${(err as Error).message}`);
  }
  return parseDeliveryConfig(file, expandDeliveryEnv(text, env));
}

export function parseDeliveryConfig(file: string, text: string): DeliveryConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new DeliveryConfigError(file, `bad YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const root = (doc ?? {}) as { targets?: unknown; routing_groups?: unknown };
  if (typeof root !== 'object' || Array.isArray(root)) throw new DeliveryConfigError(file, 'the document must be a mapping');

  const targets = new Map<string, TargetConfig>();
  const rawTargets = root.targets ?? {};
  if (typeof rawTargets !== 'object' || Array.isArray(rawTargets)) throw new DeliveryConfigError(file, '`targets` must be a mapping');
  for (const [key, raw] of Object.entries(rawTargets as Record<string, Record<string, unknown>>)) {
    const t = raw ?? {};
    const name = str(t['name']);
    const type = str(t['type']);
    if (!name) throw new DeliveryConfigError(file, `target ${key}: missing name`);
    const need = (field: string) => {
      const v = str(t[field]);
      if (!v) throw new DeliveryConfigError(file, `target ${name}: missing ${field}`);
      return v;
    };
    const opt = (field: string) => str(t[field]) || undefined;
    let target: TargetConfig;
    if (type === 'file') target = { type, name, path: need('path') };
    else if (type === 's3') {
      target = { type, name, bucket_name: need('bucket_name'), access_key_id: opt('access_key_id'), secret_access_key: opt('secret_access_key'), endpoint: opt('endpoint'), region: opt('region') };
    } else if (type === 'az-blob') {
      target = {
        type,
        name,
        container_name: need('container_name'),
        storage_account: opt('storage_account'),
        storage_key: opt('storage_key'),
        endpoint: opt('endpoint'),
        tenant_id: opt('tenant_id'),
        client_id: opt('client_id'),
        client_secret: opt('client_secret'),
      };
      const sharedKey = target.storage_key && target.storage_account;
      const principal = target.tenant_id && target.client_id && target.client_secret;
      if (!sharedKey && !principal) {
        throw new DeliveryConfigError(file, `target ${name}: not enough information given to connect (storage_account + storage_key, or tenant_id + client_id + client_secret)`);
      }
    } else throw new DeliveryConfigError(file, `target ${name}: Unknown destination type: ${type ?? '(none)'}`);
    targets.set(name, target);
  }

  const groups = new Map<string, Designation[]>();
  const warnings: string[] = [];
  const rawGroups = root.routing_groups ?? [];
  if (!Array.isArray(rawGroups)) throw new DeliveryConfigError(file, '`routing_groups` must be a list');
  for (const [i, raw] of (rawGroups as Array<Record<string, unknown>>).entries()) {
    const g = raw ?? {};
    const id = str(g['data_stream_id']);
    const route = str(g['data_stream_route']);
    if (!id || !route) throw new DeliveryConfigError(file, `routing group ${i + 1}: missing data_stream_id or data_stream_route`);
    const key = `${id}_${route}`;
    const designations: Designation[] = [];
    const list = g['delivery_targets'];
    if (list === undefined || list === null || (Array.isArray(list) && list.length === 0)) warnings.push(`no targets configured for group ${key}`);
    else if (!Array.isArray(list)) throw new DeliveryConfigError(file, `routing group ${key}: delivery_targets must be a list`);
    else {
      for (const d of list as Array<Record<string, unknown>>) {
        const name = str(d?.['name']);
        if (!name) throw new DeliveryConfigError(file, `routing group ${key}: a delivery target has no name`);
        if (!targets.has(name)) throw new DeliveryConfigError(file, `routing group ${key}: target ${name} is not defined in targets`);
        try {
          designations.push({ name, template: compileTemplate(str(d['path_template']) ?? '') });
        } catch (err) {
          if (err instanceof TemplateError) throw new DeliveryConfigError(file, `routing group ${key}, target ${name}: ${err.message}`);
          throw err;
        }
      }
    }
    groups.set(key, designations);
  }
  return { targets, groups, warnings };
}
