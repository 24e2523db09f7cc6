import { readFileSync } from 'node:fs';
import dotenv from 'dotenv';
import { expand } from 'dotenv-expand';
import { ConfigError, type Env } from './env.js';

/** Finds `-appconf FILE` / `--appconf=FILE` among the command-line arguments. */
export function appconfPath(argv: string[]): string | undefined {
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?appconf(?:=(.*))?$/.exec(a);
    if (!m) throw new ConfigError(`unknown command-line argument "${a}" (only -appconf FILE is accepted)`);
    if (m[1] !== undefined) file = m[1];
    else {
      file = argv[++i];
      if (file === undefined) throw new ConfigError('-appconf needs a file name');
    }
  }
  return file;
}

/**
 * Loads a dotenv file into `env` without overriding variables that are already set (godotenv Load semantics),
 * expanding `$VAR`/`${VAR}` references. Read once at start-up, before anything serves.
 */
export function loadAppconf(file: string, env: Env): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`-appconf: cannot read ${file}: ${(err as Error).message}`);
  }
  const parsed = dotenv.parse(text);
  const scratch: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) scratch[k] = v;
  const { parsed: expanded } = expand({ parsed: { ...parsed }, processEnv: scratch });
  for (const [k, v] of Object.entries(expanded ?? parsed)) {
    if (env[k] === undefined) env[k] = v;
  }
}
