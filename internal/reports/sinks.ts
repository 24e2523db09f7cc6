import { mkdir } from 'node:fs/promises';
import { appendText, type TextAppender } from '../fsutil/fast-fs.js';
import path from 'node:path';
import type { Report } from './report.js';

/** Somewhere reports go. A sink that throws is retried by the publisher. */
export interface ReportSink {
  readonly name: string;
  publish(report: Report): Promise<void>;
  /**
   * Optional: writes many reports at once, keeping their order wherever it matters to the sink; resolves with the
   * reports not written (retried later, in order) and the first error.
   */
  publishBatch?(reports: Report[]): Promise<{ failed: Report[]; error?: unknown }>;
  /** Reports held before the oldest are dropped (default MAX_PENDING, 10,000). */
  readonly maxPending?: number;
}

const SAFE_ID = /^[0-9a-f-]{36}$/;

/**
 * `<folder>/<upload_id>_<stage>`, one JSON line per report: the durable record, always on. Under load the publisher
 * hands over batches: the lines of one file are appended with a single write (their order kept), and different files
 * are written in parallel, so the sink keeps up with thousands of reports a second.
 */
export class FileReportSink implements ReportSink {
  readonly name = 'file';
  /**
   * The file sink is the durable record: under a burst of uploads it may fall behind for a while without being
   * broken, so it holds far more than a broker sink before dropping anything (about 1 KiB per report).
   */
  readonly maxPending = 100_000;
  private ready: Promise<unknown> | null = null;

  constructor(
    private readonly folder: string,
    private readonly appendFile: TextAppender = appendText,
  ) {}

  private async ensureFolder(): Promise<void> {
    // A failed mkdir is not remembered: the retry must try again once the folder can be made.
    this.ready ??= mkdir(this.folder, { recursive: true, mode: 0o750 }).catch((err: unknown) => {
      this.ready = null;
      throw err;
    });
    await this.ready;
  }

  private fileOf(report: Report): string {
    if (!SAFE_ID.test(report.upload_id)) throw new Error(`refusing report for id ${JSON.stringify(report.upload_id)}`);
    return path.join(this.folder, `${report.upload_id}_${report.stage_info.action}`);
  }

  private async append(file: string, text: string): Promise<void> {
    try {
      await this.appendFile(file, text, 0o644);
    } catch (err) {
      // The folder went away (cleaned while running): make it again on the retry.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.ready = null;
      throw err;
    }
  }

  async publish(report: Report): Promise<void> {
    const file = this.fileOf(report);
    await this.ensureFolder();
    await this.append(file, `${JSON.stringify(report)}\n`);
  }

  async publishBatch(reports: Report[]): Promise<{ failed: Report[]; error?: unknown }> {
    const groups = new Map<string, Report[]>();
    const refused: Report[] = [];
    let error: unknown;
    for (const r of reports) {
      let file: string;
      try {
        file = this.fileOf(r);
      } catch (err) {
        // Never writable: not retried forever either (counted as written, and reported once).
        error ??= err;
        refused.push(r);
        continue;
      }
      const g = groups.get(file);
      if (g) g.push(r);
      else groups.set(file, [r]);
    }
    try {
      await this.ensureFolder();
    } catch (err) {
      return { failed: reports.filter((r) => !refused.includes(r)), error: err };
    }
    const failed = new Set<Report>();
    // All files at once: the I/O thread takes them as one batch (a batch holds at most 256 reports).
    await Promise.all(
      [...groups].map(async ([file, lines]) => {
        try {
          await this.append(file, lines.map((r) => `${JSON.stringify(r)}\n`).join(''));
        } catch (err) {
          error ??= err;
          for (const r of lines) failed.add(r);
        }
      }),
    );
    return { failed: reports.filter((r) => failed.has(r)), error: failed.size > 0 || refused.length > 0 ? error : undefined };
  }
}
