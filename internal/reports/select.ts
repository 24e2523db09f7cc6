import type { Config } from '../config/config.js';
import type { HealthCheck } from '../health/check.js';
import type { Logger } from '../logging/logger.js';
import { FileReportSink, type ReportSink } from './sinks.js';

export interface ReportSinks {
  /** In fan-out order: the file sink first (always), then any broker. */
  sinks: ReportSink[];
  /** /health entries of broker sinks (the file sink has none). */
  health: HealthCheck[];
  close(): Promise<void>;
}

/** dex-pipeline.md §2.4: the file sink always. */
export async function buildReportSinks(config: Config, _log: Logger): Promise<ReportSinks> {
  return { sinks: [new FileReportSink(config.reports.localReportsFolder)], health: [], close: async () => {} };
}
