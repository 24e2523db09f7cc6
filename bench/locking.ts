// `npm run bench -- --locking`: the Redis locker's costs (issue 12), against a real redis-server (Debian's package).
//  1. Lock hand-over between two instances on one shared folder: a PATCH on A holds the upload's lock with a stalled
//     body; the clock runs from sending a HEAD to B until B answers (B asks A over Redis, A saves its bytes and lets
//     go, B takes the lock and answers). 200 trials (50 with --quick); median and p99. The same within one instance
//     with the memory locker, for comparison.
//  2. HEAD throughput of one instance with the Redis locker (its store then re-checks the shared folder on every
//     HEAD) against one with the memory locker: the loadgen's HEAD workload, servers alternating per round; medians.
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { createUpload, head } from '../test/helpers/http.js';
import { openPatch, waitStored } from '../test/helpers/cluster.js';
import { MANIFEST_PAIRS } from '../test/helpers/manifest-mode.js';
import { startRedis, type RedisServer } from '../test/helpers/redis.js';
import { startServer, type RunningServer } from '../test/helpers/server.js';
import { percentile, runJob, type JobResult } from './loadgen.js';

export interface LockingBenchOptions {
  quick: boolean;
  rounds: number;
}

// Validation on, as a server starts by default; the loadgen's uploads carry a valid manifest.
const ENV = { UPLOAD_MANIFEST_VALIDATION: 'true' };

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? 0 };
};

/** `trials` hand-overs: a HEAD on `to` pre-empting a stalled PATCH on `from`; milliseconds until the HEAD's answer. */
async function handOvers(from: RunningServer, to: RunningServer, trials: number): Promise<number[]> {
  const size = 1 << 20;
  const piece = Buffer.alloc(4096, 1);
  const times: number[] = [];
  for (let i = 0; i < trials; i++) {
    const { url, id } = await createUpload(from.url, { length: size, metadata: MANIFEST_PAIRS });
    const held = openPatch(url, 0, size);
    held.write(piece);
    await waitStored(from.storeDir, id, piece.length);
    const t0 = performance.now();
    const h = await head(`${to.url}/files/${id}`);
    times.push(performance.now() - t0);
    const interrupted = await held.response;
    held.destroy();
    if (h.status !== 200 || h.headers['upload-offset'] !== String(piece.length) || interrupted.status !== 400) {
      throw new Error(`trial ${i}: HEAD ${h.status} offset ${h.headers['upload-offset']}, PATCH ${interrupted.status} ${interrupted.body}`);
    }
  }
  return times;
}

async function headThroughput(server: RunningServer, quick: boolean): Promise<JobResult> {
  return runJob({
    kind: 'head',
    base: server.url,
    createPath: '/files/',
    targets: 64,
    requests: quick ? 2000 : 10_000,
    concurrency: 32,
    warmup: quick ? { uploads: 8, heads: 200 } : { uploads: 64, heads: 1000 },
  });
}

export async function runLockingBench(opts: LockingBenchOptions): Promise<void> {
  const started = Date.now();
  const load = os.loadavg();
  if (load[0]! > 0.5 * os.cpus().length) process.stderr.write(`bench --locking: warning: load average ${load.map((l) => l.toFixed(2)).join(' ')}; figures will be noisy\n`);
  const trials = opts.quick ? 50 : 200;
  const servers: RunningServer[] = [];
  let redis: RedisServer | undefined;
  try {
    redis = await startRedis();
    const withRedis = { ...ENV, REDIS_CONNECTION_STRING: redis.url };

    // 1. Hand-over.
    const a = await startServer({ env: withRedis });
    servers.push(a);
    const b = await startServer({ env: withRedis, dir: a.dir });
    servers.push(b);
    await handOvers(a, b, 5); // warm-up
    const across = stats(await handOvers(a, b, trials));
    const alone = await startServer({ env: ENV });
    servers.push(alone);
    await handOvers(alone, alone, 5);
    const inMemory = stats(await handOvers(alone, alone, trials));
    process.stderr.write(`  hand-over  Redis, A→B: median ${across.median.toFixed(1)} ms, p99 ${across.p99.toFixed(1)} ms; memory, one instance: median ${inMemory.median.toFixed(1)} ms, p99 ${inMemory.p99.toFixed(1)} ms\n`);
    await Promise.all(servers.splice(0).map((s) => s.cleanup()));

    // 2. HEAD throughput, fresh servers per cell, alternating.
    const rates: Record<'memory' | 'redis', number[]> = { memory: [], redis: [] };
    const p99s: Record<'memory' | 'redis', number[]> = { memory: [], redis: [] };
    for (let round = 1; round <= opts.rounds; round++) {
      for (const kind of round % 2 ? (['memory', 'redis'] as const) : (['redis', 'memory'] as const)) {
        const s = await startServer({ env: kind === 'redis' ? withRedis : ENV });
        servers.push(s);
        const r = await headThroughput(s, opts.quick);
        await Promise.all(servers.splice(0).map((x) => x.cleanup()));
        const rate = r.operations / (r.elapsedMs / 1000);
        rates[kind].push(rate);
        p99s[kind].push(r.p99Ms);
        process.stderr.write(`  head       round ${round}  ${kind.padEnd(6)}  ${rate.toFixed(0)} HEAD/s, p99 ${r.p99Ms.toFixed(2)} ms\n`);
      }
    }
    const med = (xs: number[]) => stats(xs).median;
    const ratio = med(rates.redis) / med(rates.memory);

    const out = [
      '',
      `Lock hand-over (HEAD on B pre-empting a stalled PATCH on A, until B answers), ${trials} trials:`,
      `  Redis locker, two instances:  median ${across.median.toFixed(1)} ms, p99 ${across.p99.toFixed(1)} ms, max ${across.max.toFixed(1)} ms`,
      `  memory locker, one instance:  median ${inMemory.median.toFixed(1)} ms, p99 ${inMemory.p99.toFixed(1)} ms, max ${inMemory.max.toFixed(1)} ms`,
      `HEAD throughput (c=32, medians of ${opts.rounds} rounds):`,
      `  memory locker: ${med(rates.memory).toFixed(0)} HEAD/s (p99 ${med(p99s.memory).toFixed(2)} ms)`,
      `  Redis locker:  ${med(rates.redis).toFixed(0)} HEAD/s (p99 ${med(p99s.redis).toFixed(2)} ms)`,
      'Targets (issue 12):',
      `  [${across.median < 100 ? 'met ' : 'MISS'}] hand-over median ${across.median.toFixed(1)} ms (< 100 ms)`,
      `  [${across.p99 < 1000 ? 'met ' : 'MISS'}] hand-over p99 ${across.p99.toFixed(1)} ms (< 1000 ms)`,
      `  [${ratio >= 0.7 ? 'met ' : 'MISS'}] HEAD rate Redis/memory ${ratio.toFixed(2)} (≥ 0.70)`,
      `${os.cpus().length} CPUs, node ${process.version}, ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${load.map((l) => l.toFixed(2)).join(' ')} before, ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} after`,
      '',
    ];
    process.stdout.write(out.join('\n'));
  } finally {
    await Promise.all(servers.map((s) => s.cleanup()));
    await redis?.stop();
  }
}
