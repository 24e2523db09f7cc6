// The workloads of `npm run bench` and the figures each reports (bench.ts runs them).
import type { HeadGenerator, Job, JobResult, Warmup } from './loadgen.js';
import { endToEndMs, sustained, type DeliveryTimes } from './pipeline.js';

const MiB = 1 << 20;
const GiB = 1 << 30;

/** What a metric is computed from: the load generator's result, and when each upload was done end to end. */
export interface Measured {
  result: JobResult;
  delivery: DeliveryTimes;
}

export interface Metric {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  digits: number;
  value: (m: Measured) => number;
}

export interface Workload {
  id: string;
  title: string;
  job: (base: string, createPath: string) => Job;
  metrics: Metric[];
  timeoutMs: number;
  /** Sustained workloads run fewer rounds (each lasts a minute and averages over thousands of uploads). */
  sustained?: boolean;
  /** Checked before the workload runs: why it cannot run here (not enough disk), or undefined. */
  cannotRun?: () => string | undefined;
}

const perS = (n: number, ms: number) => n / (ms / 1000);
const mbps: Metric = { key: 'MBps', label: 'throughput', unit: 'MB/s', better: 'higher', digits: 1, value: ({ result: r }) => r.bytes / 1e6 / (r.elapsedMs / 1000) };
const e2eMbps: Metric = { key: 'e2eMBps', label: 'end to end', unit: 'MB/s', better: 'higher', digits: 1, value: ({ result: r, delivery: d }) => r.bytes / 1e6 / (endToEndMs(r, d) / 1000) };
const opsPerSec = (label: string, unit: string): Metric => ({ key: 'opsPerSec', label, unit, better: 'higher', digits: 0, value: ({ result: r }) => perS(r.operations, r.elapsedMs) });
const e2eOps: Metric = { key: 'e2eOpsPerSec', label: 'end to end', unit: 'uploads/s', better: 'higher', digits: 0, value: ({ result: r, delivery: d }) => perS(r.operations, endToEndMs(r, d)) };
const p50: Metric = { key: 'p50Ms', label: 'latency p50', unit: 'ms', better: 'lower', digits: 2, value: ({ result: r }) => r.p50Ms };
const p99: Metric = { key: 'p99Ms', label: 'latency p99', unit: 'ms', better: 'lower', digits: 2, value: ({ result: r }) => r.p99Ms };

/** The figures of a sustained workload: per upload (`unitBytes` 0) or in MB/s of uploads of `unitBytes` each. */
function sustainedMetrics(unitBytes: number): Metric[] {
  const rate = (n: number) => (unitBytes ? (n * unitBytes) / 1e6 : n);
  const unit = unitBytes ? 'MB/s' : 'uploads/s';
  const s = (m: Measured) => sustained(m.result, m.delivery);
  return [
    { key: 'ackedPerS', label: 'acknowledged', unit, better: 'higher', digits: unitBytes ? 1 : 0, value: (m) => rate(s(m).ackedPerS) },
    { key: 'deliveredPerS', label: 'delivered', unit, better: 'higher', digits: unitBytes ? 1 : 0, value: (m) => rate(s(m).deliveredPerS) },
    { key: 'peakBacklog', label: 'backlog peak', unit: 'uploads', better: 'lower', digits: 0, value: (m) => s(m).peakBacklog },
    { key: 'backlogGrowth', label: 'backlog growth, last 30 s', unit: 'uploads', better: 'lower', digits: 0, value: (m) => s(m).backlogGrowth },
    { key: 'drainS', label: 'drain after the load', unit: 's', better: 'lower', digits: 2, value: (m) => s(m).drainMs / 1000 },
  ];
}

const fmt = (b: number) => (b >= GiB ? `${b / GiB} GiB` : `${b / MiB} MiB`);

export function workloads(quick: boolean, freeDiskBytes: () => number): Workload[] {
  const warmup: Warmup = quick ? { uploads: 8, heads: 16 } : { uploads: 64, heads: 256 };
  const single = quick ? 32 * MiB : GiB;
  const chunked = quick ? 32 * MiB : 256 * MiB;
  const small = quick ? 200 : 2000;
  const heads = quick ? 1000 : 5000;
  const par = quick ? { n: 64, size: 2 * MiB } : { n: 64, size: 16 * MiB };
  const sustainedMs = quick ? 15_000 : 60_000;
  const large = quick ? 32 * MiB : 256 * MiB;
  // Ours writes every byte twice (the upload and its delivered copy): at this VM's ~0.4 GB/s, 60 s need ~50 GB.
  const largeDisk = quick ? 16 * GiB : 64 * GiB;
  const head = (id: string, title: string, generator: HeadGenerator): Workload => ({
    id,
    title,
    job: (base, createPath) => ({ kind: 'head', base, createPath, targets: 64, requests: heads, concurrency: 32, warmup, generator }),
    metrics: [opsPerSec('rate', 'req/s'), p50, p99],
    timeoutMs: 300_000,
  });
  return [
    {
      id: 'single',
      title: `${fmt(single)} in one PATCH`,
      job: (base, createPath) => ({ kind: 'uploads', base, createPath, count: 1, size: single, chunk: single, concurrency: 1, creationWithUpload: false, warmup }),
      metrics: [mbps, e2eMbps],
      timeoutMs: 600_000,
    },
    {
      id: 'chunked',
      title: `${fmt(chunked)} in 8 MiB PATCHes`,
      job: (base, createPath) => ({ kind: 'uploads', base, createPath, count: 1, size: chunked, chunk: 8 * MiB, concurrency: 1, creationWithUpload: false, warmup }),
      metrics: [mbps, e2eMbps],
      timeoutMs: 600_000,
    },
    {
      id: 'small',
      title: `${small} × 4 KiB creation-with-upload, c=32`,
      job: (base, createPath) => ({ kind: 'uploads', base, createPath, count: small, size: 4096, chunk: 4096, concurrency: 32, creationWithUpload: true, warmup }),
      metrics: [opsPerSec('rate', 'uploads/s'), e2eOps, p50, p99],
      timeoutMs: 300_000,
    },
    head('head', `${heads} HEADs, c=32 (load generator, kept-alive sockets)`, 'loadgen'),
    head('head-ac', `${heads} HEADs, c=32 (autocannon, kept alive)`, 'autocannon'),
    head('head-agent', `${heads} HEADs, c=32 (node:http Agent: a new connection per HEAD)`, 'http-agent'),
    {
      id: 'parallel',
      title: `${par.n} × ${fmt(par.size)} in 1 MiB PATCHes, c=${par.n}`,
      job: (base, createPath) => ({ kind: 'uploads', base, createPath, count: par.n, size: par.size, chunk: MiB, concurrency: par.n, creationWithUpload: false, warmup }),
      metrics: [mbps, e2eMbps],
      timeoutMs: 600_000,
    },
    {
      id: 'sustained',
      title: `${sustainedMs / 1000} s of 4 KiB creation-with-upload, c=32`,
      job: (base, createPath) => ({ kind: 'uploads', base, createPath, count: 0, size: 4096, chunk: 4096, concurrency: 32, creationWithUpload: true, warmup, durationMs: sustainedMs }),
      metrics: sustainedMetrics(0),
      timeoutMs: sustainedMs + 600_000,
      sustained: true,
    },
    {
      id: 'sustained-large',
      title: `${sustainedMs / 1000} s of ${fmt(large)} uploads in one PATCH, 8 clients`,
      job: (base, createPath) => ({ kind: 'uploads', base, createPath, count: 0, size: large, chunk: large, concurrency: 8, creationWithUpload: false, warmup, durationMs: sustainedMs }),
      metrics: sustainedMetrics(large),
      timeoutMs: sustainedMs + 900_000,
      sustained: true,
      cannotRun: () => {
        const free = freeDiskBytes();
        return free < largeDisk ? `needs ${fmt(largeDisk)} free in the temporary folder, ${(free / GiB).toFixed(1)} GiB are` : undefined;
      },
    },
  ];
}
