// The file sink under load: the publisher hands it batches; lines of one file keep their order, different files are
// written in parallel, and a failing folder loses nothing. (Its throughput is measured by `npm run bench`.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { captureLogger } from '../helpers/delivery.js';
import { MAX_PENDING, ReportPublisher } from '../../internal/reports/publisher.js';
import { buildReport, type Stage } from '../../internal/reports/report.js';
import { FileReportSink } from '../../internal/reports/sinks.js';

const STAGES: Stage[] = ['metadata-transform', 'upload-started', 'upload-status', 'upload-completed'];

/** `uploads` uploads × the stages, with several upload-status lines each; `seq` records the publish order. */
function burst(uploads: number) {
  const reports = [];
  let seq = 0;
  for (let u = 0; u < uploads; u++) {
    const id = randomUUID();
    for (const stage of STAGES) {
      const lines = stage === 'upload-status' ? 3 : 1;
      for (let i = 0; i < lines; i++) {
        reports.push(buildReport({ stage, uploadId: id, manifest: null, version: 't_t', content: { seq: seq++ } }));
      }
    }
  }
  return reports;
}

async function readAll(folder: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const name of await readdir(folder)) {
    const text = await readFile(path.join(folder, name), 'utf8');
    assert.ok(text.endsWith('\n'), `${name} ends with a newline`);
    out.set(
      name,
      text
        .slice(0, -1)
        .split('\n')
        .map((l) => (JSON.parse(l) as { content: { seq: number } }).content.seq),
    );
  }
  return out;
}

function expected(reports: ReturnType<typeof burst>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const r of reports) {
    const name = `${r.upload_id}_${r.stage_info.action}`;
    out.set(name, [...(out.get(name) ?? []), r.content['seq'] as number]);
  }
  return out;
}

describe('file report sink with batches', () => {
  it('writes thousands of queued reports in batches: every file complete and in publish order, none dropped', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'dex-sink-'));
    try {
      const { log } = captureLogger();
      const drops: string[] = [];
      const pub = new ReportPublisher([new FileReportSink(folder)], log, (s) => drops.push(s));
      const reports = burst(500); // 3,000 reports: many batches, within the backlog limit
      assert.ok(reports.length < MAX_PENDING);
      for (const r of reports) pub.publish(r);
      await pub.drain();
      assert.deepEqual(drops, []);
      assert.deepEqual(await readAll(folder), expected(reports));
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('a folder that cannot be written is retried; afterwards every line is there once, in order', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'dex-sink-'));
    const folder = path.join(base, 'reports');
    try {
      await writeFile(folder, 'a file where the folder should be');
      const { log, records } = captureLogger();
      const pub = new ReportPublisher([new FileReportSink(folder)], log);
      const reports = burst(40);
      for (const r of reports) pub.publish(r);
      // Wait for the first failed attempt, then make the folder possible.
      for (const end = Date.now() + 20_000; !records().some((r) => /report sink failed/.test(JSON.stringify(r))); ) {
        if (Date.now() > end) assert.fail('the sink never failed');
        await new Promise((r) => setTimeout(r, 20));
      }
      await rm(folder);
      // The back-off timer does not hold a process open (a server has its sockets); this test holds it.
      const keepAlive = setInterval(() => {}, 1000);
      try {
        await pub.drain();
      } finally {
        clearInterval(keepAlive);
      }
      assert.deepEqual(await readAll(folder), expected(reports));
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
