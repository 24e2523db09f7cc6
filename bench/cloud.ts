// The cloud part of `npm run bench` (`--backends s3,azure`): our server storing on S3 (s3rver) or Azure Blob
// (Azurite, blobs on disk) against the vendor SDK's own streaming upload of the same bytes to the same kind of
// emulator, side by side in one run, alternating rounds; then the peak RSS of our server with 8 uploads at once.
// Each measurement gets a fresh emulator (its data removed afterwards), so none pays for another's files.
//
// - ours: one tus upload of SIZE bytes in one PATCH through the load generator (the clock stops at the 204), our
//   server run as a user would run it against that storage (default pipeline, default S3 part size);
// - SDK: @aws-sdk/lib-storage `Upload` / `BlockBlobClient.uploadStream` with their defaults, in a process of its own
//   (bench/servers/sdk-upload.ts), the clock around the whole upload.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job, JobResult } from './loadgen.js';
import type { SdkUpload } from './servers/sdk-upload.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from '../test/helpers/azurite.js';
import { S3RVER_ACCESS_KEY, S3RVER_REGION, S3RVER_SECRET_KEY, startS3rver } from '../test/helpers/s3.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MiB = 1 << 20;
const GiB = 1 << 30;

export type CloudBackend = 's3' | 'azure';

/** What bench.ts lends: our server started as in the other workloads, the load generator, idleness. */
export interface CloudBenchDeps {
  startOurs(env: Record<string, string>): Promise<OursRunning>;
  runJob(job: Job, timeoutMs: number, onSetUp: (uploads: number) => Promise<void>): Promise<JobResult>;
  flushPageCache(): Promise<void>;
}

export interface OursRunning {
  port: number;
  /** Waits until it is idle and every upload is delivered; resolves with its peak RSS in bytes. */
  settle(uploads: number): Promise<number>;
  stop(): Promise<void>;
  log(): string;
}

export interface CloudOptions {
  quick: boolean;
  rounds: number;
  backends: CloudBackend[];
}

export interface CloudRow {
  backend: CloudBackend;
  workload: string;
  metric: string;
  unit: string;
  ours: number[];
  sdk: number[];
  medianOurs: number;
  medianSdk: number | null;
  ratio: number | null;
}

interface Emulator {
  /** For our server. */
  env: Record<string, string>;
  /** For the SDK upload. */
  sdk(size: number): SdkUpload;
  cleanup(): Promise<void>;
}

async function emulator(backend: CloudBackend): Promise<Emulator> {
  if (backend === 's3') {
    const s3 = await startS3rver();
    await s3.createBucket('bench');
    return {
      env: { S3_ENDPOINT: s3.endpoint, S3_BUCKET_NAME: 'bench', AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET_KEY, AWS_REGION: S3RVER_REGION },
      sdk: (size) => ({ backend, size, endpoint: s3.endpoint, bucket: 'bench', key: 'sdk-upload', accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY, region: S3RVER_REGION }),
      cleanup: () => s3.cleanup(),
    };
  }
  const azurite = await startAzurite({ onDisk: true });
  await azurite.serviceClient().getContainerClient('bench').create();
  return {
    env: { AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT, AZURE_STORAGE_KEY: AZURITE_KEY, AZURE_ENDPOINT: azurite.endpoint, TUS_AZURE_CONTAINER_NAME: 'bench' },
    sdk: (size) => ({ backend, size, endpoint: azurite.endpoint, account: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, container: 'bench', key: 'sdk-upload' }),
    cleanup: () => azurite.cleanup(),
  };
}

function sdkUpload(job: SdkUpload, timeoutMs: number): Promise<{ elapsedMs: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(HERE, 'servers/sdk-upload.js'), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{"elapsedMs"'));
      if (code === 0 && line) resolve(JSON.parse(line) as { elapsedMs: number; bytes: number });
      else reject(new Error(`SDK upload exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
}

const uploadsJob = (port: number, count: number, size: number): Job => ({
  kind: 'uploads',
  base: `http://127.0.0.1:${port}`,
  createPath: '/files/',
  count,
  size,
  chunk: size,
  concurrency: count,
  creationWithUpload: false,
  warmup: { uploads: 0, heads: 0 },
});

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Our server on a fresh emulator: `count` uploads of `size` at once. */
async function oursCell(deps: CloudBenchDeps, backend: CloudBackend, count: number, size: number, timeoutMs: number) {
  const em = await emulator(backend);
  try {
    const s = await deps.startOurs(em.env);
    try {
      const result = await deps.runJob(uploadsJob(s.port, count, size), timeoutMs, async () => undefined);
      const peak = await s.settle(result.operations);
      return { MBps: mbps(result.bytes, result.elapsedMs), peakRssMiB: peak / MiB };
    } catch (err) {
      process.stderr.write(`\n--- last output of ours (${backend}) ---\n${s.log().slice(-4000)}\n`);
      throw err;
    } finally {
      await s.stop();
    }
  } finally {
    await em.cleanup();
    await deps.flushPageCache();
  }
}

async function sdkCell(deps: CloudBenchDeps, backend: CloudBackend, size: number, timeoutMs: number) {
  const em = await emulator(backend);
  try {
    const r = await sdkUpload(em.sdk(size), timeoutMs);
    return { MBps: mbps(r.bytes, r.elapsedMs) };
  } finally {
    await em.cleanup();
    await deps.flushPageCache();
  }
}

export async function runCloudBench(opts: CloudOptions, deps: CloudBenchDeps): Promise<{ rows: CloudRow[]; text: string; targets: string[] }> {
  const single = opts.quick ? 32 * MiB : GiB;
  const parallel = { n: 8, size: opts.quick ? 16 * MiB : GiB };
  const fmt = (b: number) => (b >= GiB ? `${b / GiB} GiB` : `${b / MiB} MiB`);
  const timeoutMs = opts.quick ? 120_000 : 1_800_000;
  const rows: CloudRow[] = [];
  for (const backend of opts.backends) {
    const sdkName = backend === 's3' ? 'lib-storage Upload' : 'BlockBlobClient.uploadStream';
    const ours: number[] = [];
    const sdk: number[] = [];
    const rss: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      // Alternating who goes first, so that neither always meets a fresher machine.
      const order = round % 2 === 1 ? ['ours', 'sdk'] : ['sdk', 'ours'];
      for (const who of order) {
        if (who === 'ours') {
          const c = await oursCell(deps, backend, 1, single, timeoutMs);
          ours.push(c.MBps);
          rss.push(c.peakRssMiB);
          process.stderr.write(`  ${backend.padEnd(6)} round ${round}  ours        ${c.MBps.toFixed(1)} MB/s, peak RSS ${c.peakRssMiB.toFixed(1)} MiB\n`);
        } else {
          const c = await sdkCell(deps, backend, single, timeoutMs);
          sdk.push(c.MBps);
          process.stderr.write(`  ${backend.padEnd(6)} round ${round}  ${sdkName}  ${c.MBps.toFixed(1)} MB/s\n`);
        }
      }
    }
    const m = median(ours);
    const ms = median(sdk);
    rows.push({ backend, workload: `${fmt(single)} in one PATCH vs ${sdkName}`, metric: 'throughput', unit: 'MB/s', ours, sdk, medianOurs: m, medianSdk: ms, ratio: m / ms });
    rows.push({ backend, workload: `${fmt(single)} in one PATCH`, metric: 'peak RSS', unit: 'MiB', ours: rss, sdk: [], medianOurs: median(rss), medianSdk: null, ratio: null });
    // 8 at once: once per run (it moves 8 × the bytes through the emulator).
    const par = await oursCell(deps, backend, parallel.n, parallel.size, timeoutMs);
    process.stderr.write(`  ${backend.padEnd(6)} ${parallel.n} at once  ours  ${par.MBps.toFixed(1)} MB/s, peak RSS ${par.peakRssMiB.toFixed(1)} MiB\n`);
    rows.push({ backend, workload: `${parallel.n} × ${fmt(parallel.size)} at once`, metric: 'peak RSS', unit: 'MiB', ours: [par.peakRssMiB], sdk: [], medianOurs: par.peakRssMiB, medianSdk: null, ratio: null });
    rows.push({ backend, workload: `${parallel.n} × ${fmt(parallel.size)} at once`, metric: 'throughput', unit: 'MB/s', ours: [par.MBps], sdk: [], medianOurs: par.MBps, medianSdk: null, ratio: null });
  }

  const head = ['backend', 'workload', 'metric', 'ours', 'SDK', 'ours/SDK'];
  const body = rows.map((r) => [r.backend, r.workload, `${r.metric} (${r.unit})`, r.medianOurs.toFixed(1), r.medianSdk === null ? '–' : r.medianSdk.toFixed(1), r.ratio === null ? '–' : r.ratio.toFixed(2)]);
  const widths = head.map((_, i) => Math.max(...[head, ...body].map((row) => [...row[i]!].length)));
  const line = (row: string[]) => row.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const text = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
  const targets: string[] = [];
  for (const r of rows) {
    if (r.ratio !== null) targets.push(`[${r.ratio >= 0.85 ? 'met ' : 'MISS'}] ${r.backend}: ours/SDK throughput ${r.ratio.toFixed(2)} (≥ 0.85)`);
    if (r.metric === 'peak RSS' && r.workload.includes('at once')) targets.push(`[${r.medianOurs < 300 ? 'met ' : 'MISS'}] ${r.backend}: peak RSS with ${r.workload} ${r.medianOurs.toFixed(1)} MiB (< 300)`);
  }
  return { rows, text, targets };
}
