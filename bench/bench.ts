// `npm run bench`: our server side by side with @tus/server (+ @tus/file-store) and a bare node:http
// streaming baseline. Each workload of ours has two clocks: acknowledged (the last HTTP response) and end to end (the
// last upload's SUCCESS blob-file-copy report and FileReady event written: bench/pipeline.ts); the other servers have
// no pipeline, so for them both are the same. Sustained workloads (a minute of uploads) add delivered rates and the
// backlog; HEAD is also measured through autocannon (bench/autocannon-heads.ts). Every measurement starts the server fresh in an empty temporary folder, drives it from a
// separate load-generator process (bench/loadgen.ts) over a keep-alive agent, waits until the server is idle,
// stops it by PID and removes its data. Servers alternate A B C A B C … per workload; medians are reported.
// Fairness on a small VM: 1 GiB is written and deleted before each workload's first cell (cold memory), `sync`
// runs after each cell (no cell pays for another's dirty pages), and the timed part of a cell starts once ours has
// done the background work (reports) of the cell's untimed set-up. `--rotate` also varies who runs first.
//
// `--scrape-metrics` adds `ours+scrape`, ours with GET /metrics scraped every second during the timed part, and by
// default runs only ours and ours+scrape on the small-upload and HEAD workloads.
// `--backends s3,azure` (the default, except with --scrape-metrics; `none` skips it) adds our server on S3 and Azure
// Blob storage against the vendors' SDK uploads to the same emulators (bench/cloud.ts); `--workloads none` runs only
// that part.
//
//   node dist/bench/bench.js [--quick] [--json FILE] [--rounds N] [--rotate] [--workloads a,b] [--servers a,b] [--cpu-prof DIR]
//                            [--scrape-metrics] [--backends s3,azure | none]
//   node dist/bench/bench.js --locking [--quick] [--rounds N]   (the Redis locker: bench/locking.ts)
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Job, JobResult, LoadgenGo, LoadgenMessage } from './loadgen.js';
import { acknowledgedTimes, sustained, waitPipeline, type DeliveryTimes } from './pipeline.js';
import { workloads, type Workload } from './workloads.js';
import { fmtNum, table, targets, type Row } from './report.js';
import { scrapeOnce, startScraping, type Scraper } from './scrape.js';
import { runCloudBench, type CloudBackend } from './cloud.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const MiB = 1 << 20;
const GiB = 1 << 30;

// ---------------------------------------------------------------------------------------------- options

interface Options {
  quick: boolean;
  json?: string;
  /** Default: 5 for a full run (medians steadier against this VM's noise), 3 with --quick. */
  rounds: number;
  workloads?: string[];
  servers?: string[];
  cpuProf?: string;
  /** Each round starts one server later (A B C, B C A, C A B, …): no server always runs first. */
  rotate: boolean;
  /** Adds ours with /metrics scraped every second (`ours-scraped`). */
  scrapeMetrics: boolean;
  /** Runs the Redis locker's bench (bench/locking.ts) instead. */
  locking: boolean;
  /** Cloud stores compared with their SDKs (bench/cloud.ts): both by default, none with --scrape-metrics. */
  backends: CloudBackend[];
  /** Rounds of the sustained workloads (default 1: each lasts a minute and averages over thousands of uploads). */
  sustainedRounds: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, rounds: 0, rotate: false, scrapeMetrics: false, locking: false, backends: [], sustainedRounds: 1 };
  let backends: CloudBackend[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--rotate') o.rotate = true;
    else if (a === '--scrape-metrics') o.scrapeMetrics = true;
    else if (a === '--locking') o.locking = true;
    else if (a === '--json') o.json = path.resolve(val());
    else if (a === '--rounds') {
      o.rounds = Number.parseInt(val(), 10);
      if (!(o.rounds >= 1)) throw new Error('--rounds needs a whole number of at least 1');
    }
    else if (a === '--sustained-rounds') {
      o.sustainedRounds = Number.parseInt(val(), 10);
      if (!(o.sustainedRounds >= 1)) throw new Error('--sustained-rounds needs a whole number of at least 1');
    }
    else if (a === '--workloads') o.workloads = val().split(',');
    else if (a === '--servers') o.servers = val().split(',');
    else if (a === '--backends') {
      const v = val();
      backends = v === 'none' ? [] : (v.split(',') as CloudBackend[]);
      if (backends.some((b) => b !== 's3' && b !== 'azure')) throw new Error('--backends takes s3, azure (comma separated) or none');
    }
    else if (a === '--cpu-prof') o.cpuProf = path.resolve(val());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node dist/bench/bench.js [--quick] [--json FILE] [--rounds N] [--rotate]\n' +
          '                                [--workloads single,chunked,small,head,head-ac,head-agent,parallel,sustained,sustained-large]\n' +
          '                                [--sustained-rounds N (default 1)]\n' +
          '                                [--servers ours,ours-scraped,tus,baseline] [--cpu-prof DIR (profiles ours)]\n' +
          '                                [--scrape-metrics (ours with GET /metrics every second; default: ours, ours-scraped on small,head)]\n' +
          '                                [--backends s3,azure | none (our S3 and Azure stores against the SDKs; default both)]\n' +
          '       node dist/bench/bench.js --locking [--quick] [--rounds N]  (Redis locker: hand-over, HEAD rate vs memory locker)\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (o.rounds === 0) o.rounds = o.quick ? 3 : 5;
  o.backends = backends ?? (o.scrapeMetrics ? [] : ['s3', 'azure']);
  if (o.scrapeMetrics) {
    o.workloads ??= ['small', 'head'];
    o.servers ??= ['ours', 'ours-scraped'];
  }
  return o;
}

// ---------------------------------------------------------------------------------------------- servers

interface ServerDef {
  id: 'ours' | 'ours-scraped' | 'tus' | 'baseline';
  label: string;
  script: string;
  args: string[];
  createPath: string;
  /** Our server is started as a user would; the comparison servers watch stdin to die with the bench. */
  stdin: 'ignore' | 'pipe';
  /** Ours: runs the DEX pipeline (reports, delivery), which the bench waits for. */
  pipeline?: boolean;
  /** GET /metrics every second during the timed part. */
  scrapeMetrics?: boolean;
}

const SERVERS: ServerDef[] = [
  // Exactly as a user starts it: `node dist/cmd/main.js` in an empty folder, default configuration.
  { id: 'ours', label: 'ours', script: path.join(ROOT, 'dist/cmd/main.js'), args: [], createPath: '/files/', stdin: 'ignore', pipeline: true },
  { id: 'ours-scraped', label: 'ours+scrape', script: path.join(ROOT, 'dist/cmd/main.js'), args: [], createPath: '/files/', stdin: 'ignore', pipeline: true, scrapeMetrics: true },
  { id: 'tus', label: '@tus/server', script: path.join(HERE, 'servers/tus-reference.js'), args: ['--dir', 'data'], createPath: '/files', stdin: 'pipe' },
  { id: 'baseline', label: 'baseline', script: path.join(HERE, 'servers/baseline.js'), args: ['--dir', 'data'], createPath: '/files', stdin: 'pipe' },
];

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

interface Running {
  def: ServerDef;
  proc: ChildProcess;
  pid: number;
  port: number;
  dir: string;
  exited: Promise<void>;
  log: () => string;
  stopSampling: () => number; // returns peak RSS in bytes
}

function readStatus(pid: number): { rss: number; hwm: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'latin1');
    const kb = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(s);
      return m ? Number(m[1]) * 1024 : 0;
    };
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

const CLK_TCK = 100; // USER_HZ on Linux

function cpuTicks(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return null;
  }
}

async function startServer(def: ServerDef, opts: Options, extraEnv: Record<string, string> = {}): Promise<Running> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `dex-bench-${def.id}-`));
  tempDirs.add(dir);
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? dir,
    SERVER_PORT: '0',
    SERVER_LISTEN_HOST: '127.0.0.1',
    UI_PORT: '',
    // Each server runs in an empty folder; ours reads the repository's sender configs, as from the repo root.
    UPLOAD_CONFIG_PATH: path.join(ROOT, 'upload-configs'),
    // The shipped deliver.yml: file targets under ./uploads/<name> of the server's own folder.
    DEX_DELIVERY_CONFIG_FILE: path.join(ROOT, 'configs/local/deliver.yml'),
    // Passed through for experiments with libuv's thread pool (every server gets the same).
    ...(process.env['UV_THREADPOOL_SIZE'] ? { UV_THREADPOOL_SIZE: process.env['UV_THREADPOOL_SIZE'] } : {}),
    ...extraEnv,
  };
  const nodeArgs = def.pipeline && opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`] : [];
  const proc = spawn(process.execPath, [...nodeArgs, def.script, ...def.args], { cwd: dir, env, stdio: [def.stdin, 'pipe', 'pipe'] });
  live.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => live.delete(proc));
  // Keep the last lines of output for error messages; the pipes are always drained.
  const lines: string[] = [];
  let partial = '';
  const onData = (d: Buffer) => {
    const parts = (partial + d.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      lines.push(l);
      if (lines.length > 200) lines.shift();
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const log = () => [...lines, partial].join('\n');

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${def.label} did not start within 20 s:\n${log()}`)), 20_000);
    const check = () => {
      for (const l of lines) {
        if (!l.includes('server listening')) continue;
        try {
          const rec = JSON.parse(l) as { msg?: string; port?: number };
          if (rec.msg === 'server listening' && typeof rec.port === 'number') {
            clearTimeout(timer);
            proc.stdout!.off('data', check);
            resolve(rec.port);
            return;
          }
        } catch {
          /* not JSON */
        }
      }
    };
    proc.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${def.label} exited before listening:\n${log()}`));
    });
  });

  // Peak RSS: the kernel's high-water mark (VmHWM) cross-checked by sampling VmRSS every 50 ms.
  const pid = proc.pid!;
  let peak = 0;
  const sample = () => {
    const s = readStatus(pid);
    if (s) peak = Math.max(peak, s.rss, s.hwm);
  };
  sample();
  const timer = setInterval(sample, 50);
  const stopSampling = () => {
    clearInterval(timer);
    sample();
    return peak;
  };
  return { def, proc, pid, port, dir, exited, log, stopSampling };
}

/** Waits until the server has used (almost) no CPU (≤ 1 tick) in two consecutive 100 ms windows. */
async function waitIdle(s: Running, maxMs: number): Promise<number> {
  const t0 = Date.now();
  let prev = cpuTicks(s.pid);
  let quiet = 0;
  while (Date.now() - t0 < maxMs) {
    await sleep(100);
    const t = cpuTicks(s.pid);
    if (t === null || prev === null) return Date.now() - t0;
    if (t - prev <= 1) {
      if (++quiet >= 2) return Date.now() - t0;
    } else quiet = 0;
    prev = t;
  }
  process.stderr.write(`  warning: ${s.def.label} still busy after ${maxMs} ms\n`);
  return Date.now() - t0;
}

/** Waits until at least `uploads` uploads have their upload-status report file (set-up: created, half sent). */
async function waitReported(s: Running, uploads: number, maxMs: number): Promise<void> {
  const folder = path.join(s.dir, 'uploads', 'reports');
  const t0 = Date.now();
  for (;;) {
    const names = await readdir(folder).catch(() => [] as string[]);
    const done = names.filter((n) => n.endsWith('_upload-status')).length;
    if (done >= uploads) return;
    if (Date.now() - t0 > maxMs) throw new Error(`${s.def.label}: only ${done} of ${uploads} set-up uploads reported after ${maxMs} ms`);
    await sleep(50);
  }
}

/** SIGTERM by PID, SIGKILL after 10 s. */
async function stopServer(s: Running): Promise<void> {
  if (s.proc.exitCode === null && s.proc.signalCode === null) {
    process.kill(s.pid, 'SIGTERM');
    const killer = setTimeout(() => {
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 10_000);
    await s.exited;
    clearTimeout(killer);
  }
}

async function storedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await storedBytes(p);
    else if (e.isFile()) total += (await stat(p)).size;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------- load generator

/** One long-lived load-generator process for the whole run (re-forked only if a job fails or hangs). */
let loadgen: ChildProcess | null = null;

function killLoadgen(): void {
  const c = loadgen;
  loadgen = null;
  if (c && c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function runLoadgen(job: Job, timeoutMs: number, onSetUp: (uploads: number) => Promise<void>, onStarted: () => void): Promise<JobResult> {
  if (!loadgen) {
    const c = fork(path.join(HERE, 'loadgen.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    live.add(c);
    c.once('exit', () => {
      live.delete(c);
      if (loadgen === c) loadgen = null;
    });
    loadgen = c;
  }
  const child = loadgen;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | null, r?: JobResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) {
        killLoadgen();
        reject(err);
      } else resolve(r!);
    };
    const onMessage = (m: LoadgenMessage) => {
      if ('setUp' in m) {
        onSetUp(m.setUp).then(
          () => child.send({ go: true } satisfies LoadgenGo),
          (err: unknown) => finish(err as Error),
        );
      } else if ('started' in m) onStarted();
      else if (m.ok) finish(null, m.result);
      else finish(new Error(`load generator: ${m.error}`));
    };
    const onExit = (code: number | null) => finish(new Error(`load generator exited with ${code} without a result`));
    const timer = setTimeout(() => finish(new Error(`load generator timed out after ${timeoutMs} ms`)), timeoutMs);
    child.on('message', onMessage);
    child.on('exit', onExit);
    child.send(job);
  });
}

// ---------------------------------------------------------------------------------------------- workloads

// ---------------------------------------------------------------------------------------------- running

interface Cell {
  round: number;
  /** Wall-clock phases of this measurement (ms). */
  phases: { start: number; load: number; idle: number; stop: number };
  result: JobResult;
  /** When each timed upload was done end to end (ours: delivered and reported; the others: acknowledged). */
  delivery: DeliveryTimes;
  peakRssMiB: number;
  /** CPU seconds (user + system) the server used from the start of the timed part until it was idle again. */
  serverCpuS: number;
  idleWaitMs: number;
  storedBytes: number;
  /** ours+scrape: GET /metrics answered during the timed part. */
  scrapes?: number;
}

async function runCell(def: ServerDef, w: Workload, round: number, opts: Options): Promise<Cell> {
  let t = Date.now();
  const lap = () => {
    const now = Date.now();
    const d = now - t;
    t = now;
    return d;
  };
  const s = await startServer(def, opts);
  const phases = { start: lap(), load: 0, idle: 0, stop: 0 };
  let cell: Cell;
  try {
    let cpu0 = 0;
    // Ours: the set-up's uploads have their reports written (background work waits for a quiet moment) before the
    // timed part; the other servers have no background work.
    const setUp = async (uploads: number) => {
      if (def.pipeline) await waitReported(s, uploads, 30_000);
      if (def.scrapeMetrics) await scrapeOnce(s.port);
    };
    let scraper: Scraper | undefined;
    const started = () => {
      cpu0 = cpuTicks(s.pid) ?? 0;
      if (def.scrapeMetrics) scraper = startScraping(s.port);
    };
    const result = await runLoadgen(w.job(`http://127.0.0.1:${s.port}`, def.createPath), w.timeoutMs, setUp, started).finally(() => scraper?.stop());
    const scraped = await scraper?.stop();
    if (scraped?.failures.length) throw new Error(`${def.label}: ${scraped.failures.length} scrapes of /metrics failed: ${scraped.failures.slice(0, 3).join('; ')}`);
    phases.load = lap();
    // Ours: every upload's delivery must be done (one SUCCESS blob-file-copy report per upload) before the next cell;
    // when each was done is the end-to-end clock (bench/pipeline.ts).
    const t0 = Date.now();
    const delivery =
      def.pipeline && !w.id.startsWith('head') ? await waitPipeline(s.dir, result.operations, w.timeoutMs, def.label) : acknowledgedTimes(result);
    const idleWaitMs = Date.now() - t0 + (await waitIdle(s, 60_000));
    phases.idle = lap();
    const serverCpuS = ((cpuTicks(s.pid) ?? cpu0) - cpu0) / CLK_TCK;
    const peak = s.stopSampling();
    const stored = await storedBytes(s.dir);
    if (stored < result.totalBytesSent) throw new Error(`${def.label}: only ${stored} bytes on disk after ${result.totalBytesSent} bytes were uploaded`);
    cell = { round, phases, result, delivery, peakRssMiB: peak / MiB, serverCpuS, idleWaitMs, storedBytes: stored, ...(scraped ? { scrapes: scraped.scrapes } : {}) };
  } catch (err) {
    process.stderr.write(`\n--- last output of ${def.label} (pid ${s.pid}) ---\n${s.log().slice(-4000)}\n`);
    throw err;
  } finally {
    s.stopSampling();
    lap();
    await stopServer(s);
    await retireTree(s.dir);
    tempDirs.delete(s.dir);
    // Whatever the cell left dirty is written back now, not during the next cell (ours writes twice the bytes of the
    // others: the upload and its delivered copy).
    await flushPageCache();
  }
  phases.stop = lap();
  return cell;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Runs a command to its end (a failure to start is ignored: these are best-effort housekeeping). */
function command(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: 'ignore' });
    p.once('error', () => resolve());
    p.once('exit', () => resolve());
  });
}

/**
 * Where measured cells' folders wait until the end of the run. ext4 does not hand out an inode freed in the last
 * minute (five while its inode-table block is dirty) while it can find another: right after a cell's ~30,000 (a
 * sustained cell's ~1,000,000) files are removed, every file created costs a scan past them, ~170 µs of kernel CPU
 * instead of ~15 (`perf`: find_inode_bit → recently_deleted; measured here: 5,000 creates right after removing
 * 5,000 files, 85 µs each; in fresh inodes, 13 µs). That fell on whoever creates the most files (ours: 13 per upload)
 * and made the next cells' figures depend on what the previous one removed. So only large files (the disk space) go
 * at once; the rest is removed when the run ends.
 */
let retired: string | null = null;

async function retireTree(dir: string): Promise<void> {
  await command('find', [dir, '-type', 'f', '-size', '+1M', '-delete']);
  if (!retired) {
    retired = await mkdtemp(path.join(os.tmpdir(), 'dex-bench-retired-'));
    tempDirs.add(retired);
  }
  await rename(dir, path.join(retired, path.basename(dir))).catch(() => command('rm', ['-rf', '--', dir]));
}

/** `sync(1)`: writes back every dirty page of the machine. */
function flushPageCache(): Promise<void> {
  return command('sync', []);
}

/**
 * The files an earlier run removed (a million after a full run: see retireTree) slow every file created in the next
 * few minutes. ext4 skips a freed inode as "recently deleted" only while its inode-table block is still in memory;
 * once the dirty blocks are written back (`sync`) and dropped from the cache, that scan ends. Measured here, three
 * back-to-back 15 s sustained cells of ours went 1,400 → 1,046 → 665 uploads/s, the same CPU spent for half the
 * uploads; after `sync` and dropping the caches, 1,400 again. Dropping the caches needs root: otherwise it warns.
 */
let warnedCaches = false;
async function forgetRecentRemovals(): Promise<void> {
  await flushPageCache();
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
  } catch (err) {
    if (!warnedCaches) {
      process.stderr.write(
        `bench: warning: could not drop the kernel's caches (${(err as NodeJS.ErrnoException).code}); files removed in the last few minutes (an earlier run's) will slow file creation\n`,
      );
    }
    warnedCaches = true;
  }
}

/** Writes `bytes` to a temporary file and removes it, so that the next cell does not start on cold memory. */
async function warmPageCache(bytes: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dex-bench-warm-'));
  tempDirs.add(dir);
  const chunk = Buffer.alloc(8 * MiB, 0x5a);
  const handle = await open(path.join(dir, 'warm'), 'w');
  try {
    for (let done = 0; done < bytes; done += chunk.length) await handle.write(chunk, 0, Math.min(chunk.length, bytes - done));
  } finally {
    await handle.close();
  }
  await rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.locking) return (await import('./locking.js')).runLockingBench(opts);
  const servers = SERVERS.filter((s) => !opts.servers || opts.servers.includes(s.id));
  const freeDisk = () => {
    const f = statfsSync(os.tmpdir());
    return f.bavail * f.bsize;
  };
  const wls = workloads(opts.quick, freeDisk).filter((w) => (opts.workloads ? opts.workloads.includes(w.id) : !(opts.scrapeMetrics && w.sustained)));
  if ((servers.length === 0 || wls.length === 0) && opts.backends.length === 0) throw new Error('nothing to run');
  const started = Date.now();
  const loadBefore = os.loadavg();
  if (loadBefore[0]! > 0.5 * os.cpus().length)
    process.stderr.write(`bench: warning: load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} — other processes are using the CPUs; figures will be noisy\n`);
  process.stderr.write(
    `bench: ${opts.quick ? 'quick' : 'full'}, ${opts.rounds} rounds, servers ${servers.map((s) => s.label).join(' / ')}, ` +
      `${os.cpus().length} CPUs, node ${process.version}\n`,
  );

  const cells: Record<string, Record<string, Cell[]>> = {};
  const ran: Workload[] = [];
  for (const w of wls) {
    const why = w.cannotRun?.();
    if (why) {
      process.stderr.write(`bench: skipping ${w.id}: ${why}\n`);
      continue;
    }
    ran.push(w);
    cells[w.id] = {};
    // Whoever runs first in a workload would otherwise pay for the machine's cold memory: on these VMs, freed page
    // cache goes back to the host within seconds, and the first gigabyte written afterwards costs far more (touching
    // 1.5 GiB took 0.8 to 3.1 s here). Before this warm-up moved from the start of the run to every workload, round 1
    // of the large workloads cost whoever ran first 30 % (ours/baseline 0.72 in round 1, 0.91 in later rounds).
    await forgetRecentRemovals();
    await warmPageCache(opts.quick ? 64 * MiB : GiB);
    await flushPageCache();
    const rounds = w.sustained ? opts.sustainedRounds : opts.rounds;
    for (let round = 1; round <= rounds; round++) {
      const first = opts.rotate ? (round - 1) % servers.length : 0;
      for (const s of [...servers.slice(first), ...servers.slice(0, first)]) {
        const c = await runCell(s, w, round, opts);
        (cells[w.id]![s.id] ??= []).push(c);
        const m = w.metrics.map((mt) => `${mt.label} ${fmtNum(mt.value(c), mt.digits)} ${mt.unit}`).join(', ');
        const scrapes = c.scrapes === undefined ? '' : `, ${c.scrapes} scrapes of /metrics`;
        const backlog = w.sustained ? `, backlog every 5 s ${sustained(c.result, c.delivery).backlogEvery5s.join(' ')}` : '';
        process.stderr.write(`  ${w.id.padEnd(8)} round ${round}  ${s.label.padEnd(11)}  ${m}${scrapes}${backlog}, peak RSS ${c.peakRssMiB.toFixed(1)} MiB, CPU ${c.serverCpuS.toFixed(2)} s (client ${c.result.clientCpuS.toFixed(2)} s)  [start ${c.phases.start} ms, load ${c.phases.load} ms, idle ${c.phases.idle} ms, stop ${c.phases.stop} ms]\n`);
      }
    }
  }

  const rows: Row[] = [];
  const mkRow = (w: Workload, metric: string, unit: string, better: 'higher' | 'lower', digits: number, get: (c: Cell) => number) => {
    const rounds: Record<string, number[]> = {};
    const med: Record<string, number> = {};
    for (const s of servers) {
      rounds[s.id] = (cells[w.id]![s.id] ?? []).map(get);
      med[s.id] = median(rounds[s.id]!);
    }
    const ratio = (a: string, b: string) => (med[a] !== undefined && med[b] !== undefined && med[b] !== 0 ? med[a] / med[b] : null);
    rows.push({
      workload: w.id,
      title: w.title,
      metric,
      unit,
      better,
      digits,
      rounds,
      median: med,
      oursVsTus: ratio('ours', 'tus'),
      oursVsBaseline: ratio('ours', 'baseline'),
      scrapedVsOurs: ratio('ours-scraped', 'ours'),
    });
  };
  for (const w of ran) {
    for (const mt of w.metrics) mkRow(w, mt.label, mt.unit, mt.better, mt.digits, (c) => mt.value(c));
    mkRow(w, 'peak RSS', 'MiB', 'lower', 1, (c) => c.peakRssMiB);
    mkRow(w, 'server CPU', 's', 'lower', 2, (c) => c.serverCpuS);
  }

  const cloud = opts.backends.length === 0 ? null : await runCloud(opts);
  const text = table(rows, servers);
  const tg = targets(rows);
  const elapsedS = (Date.now() - started) / 1000;
  if (rows.length > 0) {
    process.stdout.write(`\nMedians of ${opts.rounds} rounds (${opts.quick ? 'quick sizes' : 'full sizes'}; MB = 10^6 bytes; ↑ higher is better, ↓ lower is better)\n\n${text}\n\n`);
    process.stdout.write(opts.quick ? 'Targets (issues 3 and 14; they are set for full sizes, so quick figures only hint at them):\n' : 'Targets (issues 3 and 14):\n');
    for (const t of tg) {
      const mark = t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS';
      process.stdout.write(`  [${mark}] ${t.what}: ${t.value === null ? '–' : t.value.toFixed(2)} (${t.goal})${t.note ? ` — ${t.note}` : ''}\n`);
    }
  }
  for (const w of ran.filter((x) => x.sustained)) {
    process.stdout.write(`\n${w.title}: backlog (acknowledged, not yet delivered) every 5 s of the load\n`);
    for (const sv of servers.filter((x) => x.pipeline)) {
      for (const c of cells[w.id]![sv.id] ?? []) {
        const su = sustained(c.result, c.delivery);
        process.stdout.write(`  ${sv.label} round ${c.round}: ${su.backlogEvery5s.join(' ')} (peak ${su.peakBacklog}, drained ${(su.drainMs / 1000).toFixed(2)} s after the load)\n`);
      }
    }
  }
  if (cloud) {
    process.stdout.write(`\nCloud stores, medians of ${opts.rounds} rounds (${opts.quick ? 'quick sizes' : 'full sizes'}; the 8-at-once cell runs once)\n\n${cloud.text}\n\n`);
    process.stdout.write(`Targets (issue 11${opts.quick ? '; set for full sizes' : ''}):\n${cloud.targets.map((t) => `  ${t}\n`).join('')}`);
  }
  const loadAfter = os.loadavg();
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(
    `\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, ${elapsedS.toFixed(0)} s in total; ` +
      `load average ${la(loadBefore)} before, ${la(loadAfter)} after\n`,
  );

  if (opts.json) {
    const doc = {
      date: new Date().toISOString(),
      mode: opts.quick ? 'quick' : 'full',
      rounds: opts.rounds,
      loadAverage: { before: loadBefore, after: loadAfter },
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGiB: os.totalmem() / GiB, node: process.version, platform: `${os.platform()} ${os.release()}` },
      servers: servers.map((s) => ({ id: s.id, label: s.label })),
      workloads: ran.map((w) => ({ id: w.id, title: w.title, job: w.job('http://127.0.0.1:PORT', '/files') })),
      rows: rows.map(({ digits: _d, ...r }) => r),
      targets: tg,
      // Per-upload times are summed up in the rows (and the backlog series), not kept.
      cells: Object.fromEntries(
        Object.entries(cells).map(([w, byServer]) => [
          w,
          Object.fromEntries(
            Object.entries(byServer).map(([id, cs]) => [
              id,
              cs.map(({ delivery, result: { completionsMs: _c, ...result }, ...c }) => ({
                ...c,
                result,
                ...(ran.find((x) => x.id === w)?.sustained ? { backlogEvery5s: sustained({ ...result, completionsMs: _c }, delivery).backlogEvery5s } : {}),
              })),
            ]),
          ),
        ]),
      ),
      cloud: cloud?.rows ?? null,
      elapsedSeconds: elapsedS,
      table: text,
    };
    writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
    process.stderr.write(`wrote ${opts.json}\n`);
  }
  loadgen?.disconnect();
  if (retired) {
    process.stderr.write('bench: removing the measured cells\' files\n');
    await command('rm', ['-rf', '--', retired]);
    tempDirs.delete(retired);
  }
}

/** Our server on S3 and Azure against the SDKs (bench/cloud.ts), with this file's server and load-generator plumbing. */
function runCloud(opts: Options) {
  const ours = SERVERS.find((d) => d.id === 'ours')!;
  return runCloudBench(
    { quick: opts.quick, rounds: opts.rounds, backends: opts.backends },
    {
      async startOurs(env) {
        const s = await startServer(ours, opts, env);
        return {
          port: s.port,
          async settle(uploads) {
            await waitIdle(s, 120_000);
            await waitPipeline(s.dir, uploads, 600_000, ours.label);
            return s.stopSampling();
          },
          async stop() {
            s.stopSampling();
            await stopServer(s);
            await rm(s.dir, { recursive: true, force: true });
            tempDirs.delete(s.dir);
          },
          log: s.log,
        };
      },
      runJob: (job, timeoutMs, onSetUp) => runLoadgen(job, timeoutMs, onSetUp, () => undefined),
      flushPageCache,
    },
  );
}

// ---------------------------------------------------------------------------------------------- cleanup

function killAll(): void {
  for (const c of live) {
    try {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  // `rm -rf`: a retired folder may hold a million files, which fs.rmSync takes minutes (and much memory) to remove.
  for (const d of tempDirs) spawnSync('rm', ['-rf', '--', d], { stdio: 'ignore' });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping servers\n`);
    killAll();
    process.exit(130);
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killAll();
  process.exit(1);
});
