import { mkdir } from 'node:fs/promises';
import { appendFile } from '../fsutil/fast-fs.js';
import path from 'node:path';
import type { Report } from './report.js';

/** Somewhere reports go. A sink that throws is retried by the publisher. */
export interface ReportSink {
  readonly name: string;
  publish(report: Report): Promise<void>;
}

/** `<folder>/<upload_id>_<stage>`, one JSON line per report: the durable record, always on. */
export class FileReportSink implements ReportSink {
  readonly name = 'file';
  private ready: Promise<unknown> | null = null;

  constructor(private readonly folder: string) {}

  async publish(report: Report): Promise<void> {
    if (!/^[0-9a-f-]{36}$/.test(report.upload_id)) throw new Error(`refusing report for id ${JSON.stringify(report.upload_id)}`);
    // A failed mkdir is not remembered: the retry must try again once the folder can be made.
    this.ready ??= mkdir(this.folder, { recursive: true, mode: 0o750 }).catch((err: unknown) => {
      this.ready = null;
      throw err;
    });
    await this.ready;
    const file = path.join(this.folder, `${report.upload_id}_${report.stage_info.action}`);
    try {
      await appendFile(file, `${JSON.stringify(report)}\n`, { mode: 0o644 });
    } catch (err) {
      // The folder went away (cleaned while running): make it again on the retry.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.ready = null;
      throw err;
    }
  }
}
