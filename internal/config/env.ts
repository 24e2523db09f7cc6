// Typed readers over an environment map. An empty value means "use the default" (decisions.md).
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

export class EnvReader {
  constructor(private readonly env: Env) {}

  /** The raw value, `undefined` when unset or empty. */
  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  isSet(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  string(name: string, def: string): string {
    return this.raw(name) ?? def;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  /** Go's ParseInt(base 0) forms: decimal, 0x, 0o / leading 0, 0b. */
  int(name: string, def: number, opts: { min?: number; max?: number } = {}): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    const n = parseGoInt(v);
    if (n === undefined) throw new ConfigError(`${name}: "${v}" is not an integer`);
    if (opts.min !== undefined && n < opts.min) throw new ConfigError(`${name}: ${n} is below the minimum ${opts.min}`);
    if (opts.max !== undefined && n > opts.max) throw new ConfigError(`${name}: ${n} is above the maximum ${opts.max}`);
    return n;
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
    throw new ConfigError(`${name}: "${v}" is not a boolean (use true or false)`);
  }

  list(name: string, def: string[]): string[] {
    const v = this.raw(name);
    if (v === undefined) return def;
    return v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  port(name: string, def: number): number {
    return this.int(name, def, { min: 0, max: 65535 });
  }
}

export function parseGoInt(v: string): number | undefined {
  // Go (base 0) allows `_` between digits and after a base prefix: 1_000, 0x_1F, 0b_1010.
  if (v.includes('_')) {
    if (!/^[+-]?(?:0[xXbBoO]_?)?[0-9a-fA-F]+(?:_[0-9a-fA-F]+)*$/.test(v)) return undefined;
    v = v.replace(/_/g, '');
  }
  const m = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[1-9][0-9]*|0)$/.exec(v);
  if (!m) return undefined;
  const sign = m[1] === '-' ? -1 : 1;
  let body = m[2]!;
  let n: number;
  if (/^0[xX]/.test(body)) n = parseInt(body.slice(2), 16);
  else if (/^0[bB]/.test(body)) n = parseInt(body.slice(2), 2);
  else if (/^0[oO]/.test(body)) n = parseInt(body.slice(2), 8);
  else if (body.length > 1 && body.startsWith('0')) n = parseInt(body.slice(1), 8);
  else n = parseInt(body, 10);
  if (!Number.isSafeInteger(n)) return undefined;
  return sign * n;
}
