// The real Prometheus (Debian's `prometheus` package, test-infrastructure.md §5) on a loopback port of its own, with
// a temporary data folder; stopped by PID. Missing under CI=true is a failure, never a skip.
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { spawnChildServer, waitFor, type ChildServer } from './child-server.js';
import { request } from './http.js';

/** Absolute path of a program on PATH, or undefined. */
export function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir || '.', program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/**
 * The binary, or why the test cannot run. Under CI the binary must be there (.ci/run installs it): its absence
 * throws. Elsewhere the caller skips, saying so, so that a machine without the package still runs everything else.
 */
export function prometheusBinary(program = 'prometheus'): { path: string } | { missing: string } {
  const found = which(program);
  if (found) return { path: found };
  const why = `${program} is not installed (apt-get install prometheus; .ci/run installs it)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${why}`);
  return { missing: why };
}

export interface Prometheus {
  url: string;
  pid: number;
  /** GET /api/v1/query: the parsed JSON answer (status "success" or "error" with errorType, e.g. bad_data). */
  query(expr: string): Promise<PromAnswer>;
  stop(): Promise<void>;
}

export interface PromAnswer {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

/** Starts Prometheus with `config` (a prometheus.yml document) and waits until every scrape target is up. */
export async function startPrometheus(binary: string, config: unknown): Promise<Prometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dex-prometheus-'));
  const configFile = path.join(dir, 'prometheus.yml');
  await writeFile(configFile, YAML.stringify(config));
  // A small node parent runs the binary, so that the child-server watchdog (stdin closed = test process gone) also
  // takes Prometheus down, whatever ends the test file.
  const code = [
    "const { spawn } = require('node:child_process');",
    // Prometheus logs to stderr: both go to the parent's stdout, where the helper looks for the port.
    "const p = spawn(process.argv[1], process.argv.slice(2), { stdio: ['ignore', 1, 1] });",
    "process.on('exit', () => p.kill('SIGKILL'));",
    "process.on('SIGTERM', () => { p.kill('SIGTERM'); });",
    "p.on('exit', (c) => process.exit(c ?? 1));",
  ].join('\n');
  let server: ChildServer;
  try {
    server = await spawnChildServer({
      name: 'prometheus',
      code,
      args: [binary, `--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0', '--log.level=info'],
      cwd: dir,
      portFrom: (out) => {
        const m = /msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(out);
        return m ? Number(m[1]) : undefined;
      },
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://127.0.0.1:${server.port}`;
  const get = async (p: string) => JSON.parse((await request({ method: 'GET', url: `${url}${p}` })).body) as PromAnswer & { data: never };
  const prom: Prometheus = {
    url,
    pid: server.pid,
    query: (expr) => get(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    // The target list stays empty for ~5 s after start (discovery throttle); then each target must be up.
    await waitFor(
      'every scrape target to be up',
      async () => {
        const targets = (await get('/api/v1/targets')) as unknown as { data: { activeTargets: Array<{ health: string; lastError: string }> } };
        const active = targets.data.activeTargets;
        return active.length > 0 && active.every((t) => t.health === 'up');
      },
      60_000,
    );
  } catch (err) {
    await prom.stop();
    throw new Error(`${(err as Error).message}\nprometheus output:\n${server.output().slice(-3000)}`);
  }
  return prom;
}
