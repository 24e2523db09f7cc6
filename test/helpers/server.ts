// Starts the real server (`node dist/cmd/main.js`) on a free loopback port in its own temporary folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modeEnv } from './manifest-mode.js';
import { BACKEND, setUpBackend, type Backend, type StoreView } from './backend.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const MAIN = path.join(REPO_ROOT, 'dist/cmd/main.js');
export const DELIVER_YML = path.join(REPO_ROOT, 'configs/local/deliver.yml');

export interface RunningServer {
  url: string; // http://127.0.0.1:PORT
  port: number;
  /** Working directory of the process (uploads live in `<dir>/uploads`). */
  dir: string;
  /** `<dir>/uploads/tus-prefix` unless overridden (cloud backends keep bytes on their way there). */
  storeDir: string;
  /** What the upload storage holds, whichever backend it is. */
  store: StoreView;
  proc: ChildProcess;
  pid: number;
  logs: () => string;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill9(): Promise<void>;
  /** Removes the temporary folder too. */
  cleanup(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Reuse a folder (e.g. restart after kill -9). */
  dir?: string;
  args?: string[];
  /** Options for node itself, before the script (e.g. `--trace-gc`). */
  nodeArgs?: string[];
  /** Upload storage (default: DEX_TEST_BACKEND, else the file store). */
  backend?: Backend;
  /** Entries put into the store before the server starts (StoreView.write names). */
  seed?: Record<string, string>;
}

export async function startServer(opts: StartOptions = {}): Promise<RunningServer> {
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'dex-test-')));
  const prefix = opts.env?.TUS_UPLOAD_PREFIX ?? 'tus-prefix';
  const storeDir = path.join(dir, opts.env?.LOCAL_FOLDER_UPLOADS_TUS ?? 'uploads', prefix);
  let pid = 0;
  const backend = await setUpBackend(opts.backend ?? BACKEND, { storeDir, prefix, pid: () => pid, stateFile: path.join(dir, '.test-backend') });
  for (const [name, data] of Object.entries(opts.seed ?? {})) await backend.view.write(name, data);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? dir,
    SERVER_PORT: '0',
    SERVER_LISTEN_HOST: '127.0.0.1',
    UI_PORT: '',
    // Plain tus server, or validation on in manifest mode (DEX_TEST_MANIFEST_MODE=on); a suite may override it.
    ...modeEnv(),
    UPLOAD_CONFIG_PATH: path.join(REPO_ROOT, 'upload-configs'),
    // The shipped file targets (./uploads/<name>) resolve inside the server's own folder.
    DEX_DELIVERY_CONFIG_FILE: DELIVER_YML,
    ...backend.env,
    ...opts.env,
  };
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, ...(opts.args ?? [])], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  pid = proc.pid!;
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // A test file that dies (failure, runner timeout) must not leave its servers running.
  const reap = () => proc.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      process.off('exit', reap);
      resolve(code);
    }),
  );

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 15 s:\n${out}`)), 15_000);
    const onData = () => {
      for (const line of out.split('\n')) {
        if (!line.includes('"server listening"')) continue;
        try {
          const rec = JSON.parse(line) as { port: number };
          clearTimeout(timer);
          proc.stdout!.off('data', onData);
          resolve(rec.port);
          return;
        } catch {
          /* partial line */
        }
      }
    };
    proc.stdout!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });

  const server: RunningServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    storeDir,
    store: backend.view,
    proc,
    pid: proc.pid!,
    logs: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
    async cleanup() {
      await server.kill9();
      // For debugging a failed run: every server's output, kept in DEX_TEST_LOG_DIR.
      const keep = process.env['DEX_TEST_LOG_DIR'];
      if (keep) await writeFile(path.join(keep, `server-${pid}.log`), out).catch(() => undefined);
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Runs the server binary to completion (for start-up errors); resolves with exit code and output. */
export async function runToExit(env: Record<string, string>, args: string[] = [], cwd?: string): Promise<{ code: number | null; output: string }> {
  const dir = cwd ?? (await mkdtemp(path.join(tmpdir(), 'dex-test-')));
  const proc = spawn(process.execPath, [MAIN, ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', SERVER_PORT: '0', SERVER_LISTEN_HOST: '127.0.0.1', UI_PORT: '', DEX_DELIVERY_CONFIG_FILE: DELIVER_YML, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  clearTimeout(timer);
  if (!cwd) await rm(dir, { recursive: true, force: true });
  return { code, output };
}
