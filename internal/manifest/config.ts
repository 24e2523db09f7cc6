import { readFile } from '../fsutil/fast-fs.js';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** One field of a sender manifest config (`metadata_config.fields[]`). */
export interface FieldConfig {
  field_name: string;
  required?: boolean;
  allowed_values?: string[] | null;
  compat_field_name?: string | null;
  /** Help text for people filling the field in (the sender UI). */
  description?: string;
}

export interface ManifestConfig {
  metadata_config?: { version?: string; fields?: FieldConfig[] };
  copy_config?: { targets?: string[] };
  compat_config_filename?: string;
}

/** Where sender configs live. `load` resolves with the text, or `undefined` when the key does not exist. */
export interface ConfigLoader {
  load(key: string): Promise<string | undefined>;
}

/** A loader that can also tell which v2 configs exist (`<id>_<route>.json` at its root or in `v2/`), for the UI. */
export interface ConfigLister {
  listV2(): Promise<string[]>;
}

/** A key that names no config: its message is the loader's text (`open <key>: ...`), a validation failure. */
export class ConfigNotFoundError extends Error {
  constructor(readonly key: string, reason = 'no such file or directory') {
    super(`open ${key}: ${reason}`);
    this.name = 'ConfigNotFoundError';
  }
}

/** A config key is a relative path of plain segments, whatever holds the configs (folder, bucket, container). */
export function checkConfigKey(key: string): void {
  if (key.startsWith('/') || key.split('/').some((s) => s === '..' || s === '' || s === '.') || key.includes('\0') || key.includes('\\')) {
    throw new ConfigNotFoundError(key, 'invalid argument');
  }
}

/** Configs in a local folder (`UPLOAD_CONFIG_PATH`); keys are relative paths that never leave it. */
export class LocalFolderLoader implements ConfigLoader, ConfigLister {
  private readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async load(key: string): Promise<string | undefined> {
    checkConfigKey(key);
    const file = path.join(this.root, key);
    if (!file.startsWith(this.root + path.sep)) throw new ConfigNotFoundError(key, 'invalid argument');
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  async listV2(): Promise<string[]> {
    const names = async (dir: string) => {
      try {
        return (await readdir(path.join(this.root, dir), { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
        throw err;
      }
    };
    const [flat, v2] = await Promise.all([names('.'), names('v2')]);
    return [...new Set([...flat, ...v2])];
  }
}

/** `$VAR` / `${VAR}` from the environment (unset → empty), as the original expands config text. */
export function expandEnv(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a?: string, b?: string) => env[(a ?? b)!] ?? '');
}

/** Parsed configs by key, cached after the first successful load (failures are not cached). */
export class ConfigCache {
  private readonly cache = new Map<string, ManifestConfig>();

  constructor(
    private readonly loader: ConfigLoader,
    private readonly env: Record<string, string | undefined> = process.env,
  ) {}

  /** The config at `key` if it was loaded before (no I/O). */
  peek(key: string): ManifestConfig | undefined {
    return this.cache.get(key);
  }

  /** The config at `key`, or `undefined` when there is none. Unreadable or invalid JSON throws. */
  async get(key: string): Promise<ManifestConfig | undefined> {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const text = await this.loader.load(key);
    if (text === undefined) return undefined;
    let parsed: ManifestConfig;
    try {
      parsed = JSON.parse(expandEnv(text, this.env)) as ManifestConfig;
    } catch (err) {
      throw new Error(`manifest config ${key} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null) throw new Error(`manifest config ${key} is not a JSON object`);
    this.cache.set(key, parsed);
    return parsed;
  }
}
