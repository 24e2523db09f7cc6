// A real redis-server (Debian's `redis-server`, installed by .ci/run) on a free loopback port in a temporary folder,
// stopped by its PID. A missing binary fails the test with a message saying how to install it; it is never skipped.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  pid(): number;
  /** SIGKILL (a crash: nothing is saved, and nothing was persisted anyway). */
  kill9(): Promise<void>;
  /** Starts it again on the same port (after kill9). */
  restart(): Promise<void>;
  /** A raw client for the test's own commands (closed by stop()). */
  client(): Promise<Redis>;
  stop(): Promise<void>;
}

export function assertRedisInstalled(): void {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error('redis-server is not installed: `apt-get install redis-server` (.ci/run installs it); the Redis tests cannot run without it');
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes'];
  const proc = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`redis-server did not get ready within 15 s:\n${out}`));
    }, 15_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        proc.stdout!.off('data', onData);
        proc.stdout!.resume();
        resolve(proc);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code} before it was ready:\n${out}`));
    });
  });
}

export async function startRedis(): Promise<RedisServer> {
  assertRedisInstalled();
  const dir = await mkdtemp(path.join(tmpdir(), 'dex-redis-'));
  let port = 0;
  let proc: ChildProcess | undefined;
  // The free port may be taken between the probe and redis-server's bind: try another.
  for (let attempt = 1; !proc; attempt++) {
    port = await freePort();
    try {
      proc = await launch(port, dir);
    } catch (err) {
      if (attempt >= 5 || !/Address already in use/i.test((err as Error).message)) throw err;
    }
  }
  let current: ChildProcess = proc;
  const reap = () => current.kill('SIGKILL');
  process.on('exit', reap);
  const clients: Redis[] = [];
  const exited = (p: ChildProcess) =>
    p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));

  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => current.pid!,
    async kill9() {
      current.kill('SIGKILL');
      await exited(current);
    },
    async restart() {
      await server.kill9();
      current = await launch(port, dir);
    },
    async client() {
      const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
      c.on('error', () => undefined);
      await c.connect();
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      current.kill('SIGTERM');
      const timer = setTimeout(() => current.kill('SIGKILL'), 5000);
      await exited(current);
      clearTimeout(timer);
      process.off('exit', reap);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
