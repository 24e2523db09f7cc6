// Several real server processes (node dist/cmd/main.js) on one shared upload folder and one real Redis, as behind a
// load balancer; plus a PATCH whose body the test sends piece by piece (a slow client holding the upload's lock).
import http from 'node:http';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OOS, TR, type Response } from './http.js';
import { startRedis, type RedisServer } from './redis.js';
import { startServer, type RunningServer } from './server.js';
import { waitUntil } from './wait.js';

export interface Cluster {
  redis: RedisServer;
  servers: RunningServer[];
  /** The working folder every instance shares (uploads, reports, events, delivery targets). */
  dir: string;
  storeDir: string;
  /** Starts one more instance on the same folder and Redis (`env` over the cluster's). */
  add(env?: Record<string, string>): Promise<RunningServer>;
  stop(): Promise<void>;
}

export async function startCluster(instances: number, env: Record<string, string> = {}): Promise<Cluster> {
  const redis = await startRedis();
  const dir = await mkdtemp(path.join(tmpdir(), 'dex-cluster-'));
  const servers: RunningServer[] = [];
  const add = async (extra: Record<string, string> = {}) => {
    const s = await startServer({ dir, env: { REDIS_CONNECTION_STRING: redis.url, ...env, ...extra } });
    servers.push(s);
    return s;
  };
  try {
    for (let i = 0; i < instances; i++) await add();
  } catch (err) {
    await Promise.all(servers.map((s) => s.kill9()));
    await redis.stop();
    throw err;
  }
  return {
    redis,
    servers,
    dir,
    storeDir: servers[0]!.storeDir,
    add,
    async stop() {
      await Promise.all(servers.map((s) => s.kill9()));
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => ({ size: -1 }))).size;
}

/** Waits until the upload's data file holds exactly `bytes` bytes. */
export async function waitStored(storeDir: string, id: string, bytes: number): Promise<void> {
  await waitUntil(`${bytes} bytes stored for ${id}`, async () => ((await sizeOf(path.join(storeDir, id))) === bytes ? true : undefined));
}

export interface OpenPatch {
  write(data: Buffer): void;
  /** The server's answer (it may come before the body is complete). */
  response: Promise<Response>;
  destroy(): void;
}

/** A PATCH of `total` bytes at `offset` whose body is written by the test, piece by piece. */
export function openPatch(url: string, offset: number, total: number): OpenPatch {
  const req = http.request(url, {
    method: 'PATCH',
    agent: false,
    headers: { ...TR, ...OOS, 'Upload-Offset': String(offset), 'Content-Length': String(total) },
  });
  const response = new Promise<Response>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    // Writes after the server answered and closed are expected to fail; a failure before any answer is not.
    req.on('error', (err) => setTimeout(() => reject(err), 1000).unref());
  });
  response.catch(() => undefined);
  req.flushHeaders();
  return {
    write: (data) => void req.write(data),
    response,
    destroy: () => req.destroy(),
  };
}
