// The end-to-end clock of `npm run bench` (issue 17): when each upload of ours was really done, i.e. had its SUCCESS
// `blob-file-copy` report written (the last step of the pipeline: stored, reported, FileReady published, copied to
// the `edav` file target, hashed and checked) and its FileReady event recorded.
//
// How it is read without disturbing the work: nothing at all runs against the server while the load runs. Once the
// load generator is done, the benchmark only counts the report files (one `readdir`, at an interval ten times as long
// as the last one took, so its own CPU stays under ~10 %) until every upload has one, then reads each report once
// (SUCCESS?) and takes its modification time, and that of the upload's `<id>_FileReady` event file. Both are set
// by the kernel when the server appended the line, so the clock is the server's own, read after the fact; the load
// generator's times are in the same (wall-clock) time base. The file times have the kernel's tick as resolution
// (a few ms), far below the seconds measured.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { JobResult } from './loadgen.js';

export interface DeliveryTimes {
  /** Per delivered upload: when its SUCCESS report and its event were both written (epoch ms), sorted. */
  deliveredAtMs: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const REPORT = '_blob-file-copy';
const EVENT = '_FileReady';

/** Counts `<id>_blob-file-copy` files; returns the count and how long the listing took. */
async function countReports(folder: string): Promise<{ count: number; ms: number }> {
  const t0 = performance.now();
  const names = await readdir(folder).catch(() => [] as string[]);
  let count = 0;
  for (const n of names) if (n.endsWith(REPORT)) count++;
  return { count, ms: performance.now() - t0 };
}

/**
 * Waits until `uploads` uploads have a SUCCESS blob-file-copy report (`dir`: the server's working folder, default
 * DEX folders), then returns when each was done. Throws after `maxMs`.
 */
export async function waitPipeline(dir: string, uploads: number, maxMs: number, label: string): Promise<DeliveryTimes> {
  const reports = path.join(dir, 'uploads', 'reports');
  const events = path.join(dir, 'uploads', 'events');
  const t0 = Date.now();
  let count = 0;
  for (;;) {
    const c = await countReports(reports);
    count = c.count;
    if (count >= uploads) break;
    if (Date.now() - t0 > maxMs) throw new Error(`${label}: only ${count} of ${uploads} uploads delivered after ${maxMs} ms`);
    await sleep(Math.max(100, 10 * c.ms));
  }
  // Every report file exists; each must hold a SUCCESS line (a failed attempt would be retried, and counted when done).
  const pending = new Set(readdirSync(reports).filter((n) => n.endsWith(REPORT)));
  const deliveredAtMs: number[] = [];
  while (pending.size > 0) {
    for (const name of [...pending]) {
      const file = path.join(reports, name);
      if (!readFileSync(file, 'latin1').includes('"status":"SUCCESS"')) continue;
      pending.delete(name);
      const id = name.slice(0, -REPORT.length);
      let at = statSync(file).mtimeMs;
      try {
        at = Math.max(at, statSync(path.join(events, `${id}${EVENT}`)).mtimeMs);
      } catch {
        throw new Error(`${label}: upload ${id} was delivered but has no ${EVENT} event file`);
      }
      deliveredAtMs.push(at);
    }
    if (pending.size === 0) break;
    if (Date.now() - t0 > maxMs) throw new Error(`${label}: ${pending.size} uploads have a blob-file-copy report without SUCCESS after ${maxMs} ms`);
    await sleep(200);
  }
  deliveredAtMs.sort((a, b) => a - b);
  return { deliveredAtMs };
}

/** A server without a pipeline: each upload is done when it is acknowledged. */
export function acknowledgedTimes(r: JobResult): DeliveryTimes {
  return { deliveredAtMs: r.completionsMs.map((c) => r.startedAtMs + c) };
}

/** From the first timed request until the last upload was done (acknowledged, and for ours delivered). */
export function endToEndMs(r: JobResult, d: DeliveryTimes): number {
  const last = d.deliveredAtMs.at(-1);
  return last === undefined ? r.elapsedMs : Math.max(r.elapsedMs, last - r.startedAtMs);
}

export interface Sustained {
  ackedPerS: number;
  /** Uploads done (delivered) while the load ran, per second of load. */
  deliveredPerS: number;
  /** Acknowledged but not yet delivered, every 5 s from the start (the last value at the end of the load). */
  backlogEvery5s: number[];
  peakBacklog: number;
  /** Growth of the backlog over the last 30 s of load (least-squares slope × 30 s; half the load when shorter). */
  backlogGrowth: number;
  /** From the end of the load until the last upload was delivered. */
  drainMs: number;
}

/** Counts of `sorted` values ≤ t, for increasing t (one pass). */
function counter(sorted: number[]): (t: number) => number {
  let i = 0;
  return (t) => {
    while (i < sorted.length && sorted[i]! <= t) i++;
    return i;
  };
}

export function sustained(r: JobResult, d: DeliveryTimes): Sustained {
  const start = r.startedAtMs;
  const end = r.endedAtMs;
  const seconds = r.elapsedMs / 1000;
  const acked = r.completionsMs.map((c) => start + c).sort((a, b) => a - b);
  const ackedUpTo = counter(acked);
  const deliveredUpTo = counter(d.deliveredAtMs);
  // The backlog every 100 ms of the load.
  const samples: Array<{ t: number; backlog: number }> = [];
  for (let t = start; t <= end + 1e-6; t += 100) samples.push({ t, backlog: Math.max(0, ackedUpTo(t) - deliveredUpTo(t)) });
  const backlogEvery5s = samples.filter((_, i) => i > 0 && i % 50 === 0).map((s) => s.backlog);
  const endBacklog = Math.max(0, acked.length - counter(d.deliveredAtMs)(end));
  if (samples.length % 50 !== 1) backlogEvery5s.push(endBacklog);
  const window = Math.min(30_000, (end - start) / 2);
  const tail = samples.filter((s) => s.t >= end - window);
  const n = tail.length;
  const mt = tail.reduce((a, s) => a + s.t, 0) / n;
  const mb = tail.reduce((a, s) => a + s.backlog, 0) / n;
  const cov = tail.reduce((a, s) => a + (s.t - mt) * (s.backlog - mb), 0);
  const varT = tail.reduce((a, s) => a + (s.t - mt) ** 2, 0);
  const slopePerMs = varT > 0 ? cov / varT : 0;
  const last = d.deliveredAtMs.at(-1) ?? end;
  return {
    ackedPerS: acked.length / seconds,
    deliveredPerS: counter(d.deliveredAtMs)(end) / seconds,
    backlogEvery5s,
    peakBacklog: Math.max(0, ...samples.map((s) => s.backlog), endBacklog),
    backlogGrowth: slopePerMs * window,
    drainMs: Math.max(0, last - end),
  };
}
