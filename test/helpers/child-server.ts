// Runs an emulator (azurite, s3rver) as a child process on loopback, reads its bound port from its output, and
// stops it by PID. A server that cannot start is an error, never a skipped test.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildServer {
  proc: ChildProcess;
  pid: number;
  port: number;
  output(): string;
  /** SIGTERM (SIGKILL after 5 s) and wait for the exit. */
  stop(): Promise<void>;
  /** Lets the test process exit while the child runs (it is then killed on exit, and by its watchdog). */
  unref(): void;
}

export interface ChildServerOptions {
  /** For messages only. */
  name: string;
  /** JavaScript run with `node -e` (CommonJS); `process.argv[1..]` are `args`. */
  code: string;
  args: string[];
  cwd: string;
  /** Extracts the listening port from everything printed so far, once it is there. */
  portFrom(output: string): number | undefined;
  timeoutMs?: number;
}

export async function spawnChildServer(opts: ChildServerOptions): Promise<ChildServer> {
  // The child exits when its stdin closes, i.e. when this process dies, even by a signal or SIGKILL (the test
  // runner's timeout): no emulator outlives its test file.
  const watchdog = "process.stdin.on('end', () => process.exit(0)).on('error', () => process.exit(0)).resume();\n";
  const proc = spawn(process.execPath, ['-e', watchdog + opts.code, ...opts.args], { cwd: opts.cwd, env: { ...process.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // Also on a normal exit of a test file that forgot to stop it.
  const reap = () => proc.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      process.off('exit', reap);
      resolve();
    }),
  );
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const timeoutMs = opts.timeoutMs ?? 30_000;
  const port = await new Promise<number>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      proc.stdout!.off('data', check);
      proc.off('exit', onExit);
      reject(new Error(`${opts.name} did not start (${why}); output:\n${out}`));
    };
    const timer = setTimeout(() => fail(`no port within ${timeoutMs} ms`), timeoutMs);
    const onExit = (code: number | null) => fail(`exited with ${code}`);
    const check = () => {
      const found = opts.portFrom(out);
      if (found === undefined) return;
      clearTimeout(timer);
      proc.stdout!.off('data', check);
      proc.off('exit', onExit);
      resolve(found);
    };
    proc.stdout!.on('data', check);
    proc.once('exit', onExit);
    proc.once('error', (err) => fail(err.message));
  }).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  const unref = () => {
    proc.unref();
    for (const s of [proc.stdin, proc.stdout, proc.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  };
  return { proc, pid: proc.pid!, port, output: () => out, stop, unref };
}

/** Polls `probe` until it resolves true, failing after `timeoutMs` (no timing assertions, only a deadline). */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
