import { goTimeUTC } from '../clock/gotime.js';

export type Stage =
  | 'metadata-transform'
  | 'metadata-verify'
  | 'upload-started'
  | 'upload-status'
  | 'upload-completed'
  | 'blob-file-copy';

export interface Issue {
  level: 'ERROR' | 'WARNING';
  message: string;
}

/** The DEX report envelope (dex-pipeline.md §2.1); key order is part of the format. */
export interface Report {
  report_schema_version: '1.0.0';
  upload_id: string;
  sender_id: string;
  data_stream_id: string;
  data_stream_route: string;
  jurisdiction: string;
  dex_ingest_datetime: string;
  content_type: 'application/json';
  disposition_type: 'add' | 'replace';
  stage_info: {
    service: 'UPLOAD API';
    action: Stage;
    version: string;
    status: 'SUCCESS' | 'FAILURE';
    issues: Issue[] | null;
    start_processing_time: string;
    end_processing_time: string;
  };
  content: { content_schema_name: Stage; content_schema_version: '1.0.0' } & Record<string, unknown>;
}

const DISPOSITION: Record<Stage, 'add' | 'replace'> = {
  'metadata-transform': 'add',
  'metadata-verify': 'add',
  'upload-started': 'add',
  'upload-status': 'replace',
  'upload-completed': 'add',
  'blob-file-copy': 'add',
};

export interface ReportInput {
  stage: Stage;
  uploadId: string;
  manifest: Record<string, string> | null;
  /** `<version>_<sha>` of this build. */
  version: string;
  content: Record<string, unknown>;
  issues?: Issue[];
  start?: Date;
  end?: Date;
}

/** Builds one report; a report with issues is a FAILURE. */
export function buildReport(r: ReportInput): Report {
  const m = r.manifest ?? {};
  const now = new Date();
  const issues = r.issues && r.issues.length > 0 ? r.issues : null;
  return {
    report_schema_version: '1.0.0',
    upload_id: r.uploadId,
    sender_id: m['sender_id'] ?? '',
    data_stream_id: m['data_stream_id'] ?? '',
    data_stream_route: m['data_stream_route'] ?? '',
    jurisdiction: m['jurisdiction'] ?? '',
    dex_ingest_datetime: m['dex_ingest_datetime'] ?? '',
    content_type: 'application/json',
    disposition_type: DISPOSITION[r.stage],
    stage_info: {
      service: 'UPLOAD API',
      action: r.stage,
      version: r.version,
      status: issues ? 'FAILURE' : 'SUCCESS',
      issues,
      // An explicit end taken just before this builder ran must not precede the default start.
      start_processing_time: goTimeUTC(r.start ?? (r.end && r.end < now ? r.end : now)),
      end_processing_time: goTimeUTC(r.end ?? now),
    },
    content: { content_schema_name: r.stage, content_schema_version: '1.0.0', ...r.content },
  };
}

/** The filename rule of dex-pipeline.md §4.4: the first present key wins, even when empty. */
export function manifestFilename(m: Record<string, string>): string {
  for (const k of ['filename', 'original_filename', 'meta_ext_filename', 'received_filename']) {
    if (Object.prototype.hasOwnProperty.call(m, k)) return m[k]!;
  }
  return '';
}
