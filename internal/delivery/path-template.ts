// Delivery path templates (dex-pipeline.md §4.4): Go text/template field references only, e.g.
// `{{.Year}}/{{.Month}}/{{.Day}}/{{.Filename}}_{{.UploadId}}`; the file's extension is appended after rendering.

export const DEFAULT_TEMPLATE = '{{.Year}}/{{.Month}}/{{.Day}}/{{.Filename}}';
const FIELDS = ['Year', 'Month', 'Day', 'Hour', 'Filename', 'UploadId', 'DataStreamID', 'DataStreamRoute', 'Prefix', 'Suffix'] as const;
type Field = (typeof FIELDS)[number];

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}
/** The manifest's `dex_ingest_datetime` is missing or not RFC 3339. */
export class BadIngestTimestampError extends Error {
  constructor(detail?: string) {
    super(detail ? `bad ingest timestamp: ${detail}` : 'bad ingest timestamp');
    this.name = 'BadIngestTimestampError';
  }
}

export type CompiledTemplate = Array<string | { field: Field }>;

/** Parses a template once (at start-up): an unknown field or any other action is an error. */
export function compileTemplate(template: string): CompiledTemplate {
  const parts: CompiledTemplate = [];
  let rest = template === '' ? DEFAULT_TEMPLATE : template;
  for (;;) {
    const open = rest.indexOf('{{');
    const close = rest.indexOf('}}');
    if (open < 0) {
      if (close >= 0) throw new TemplateError(`template ${JSON.stringify(template)}: unexpected "}}"`);
      if (rest) parts.push(rest);
      return parts;
    }
    if (open > 0) parts.push(rest.slice(0, open));
    const end = rest.indexOf('}}', open + 2);
    if (end < 0) throw new TemplateError(`template ${JSON.stringify(template)}: unclosed action`);
    const action = rest.slice(open + 2, end).trim();
    const m = /^\.([A-Za-z]+)$/.exec(action);
    if (!m || !(FIELDS as readonly string[]).includes(m[1]!)) {
      throw new TemplateError(`template ${JSON.stringify(template)}: unknown field or action {{${action}}}`);
    }
    parts.push({ field: m[1] as Field });
    rest = rest.slice(end + 2);
  }
}

const FILENAME_KEYS = ['filename', 'original_filename', 'meta_ext_filename', 'received_filename'];
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** Go's filepath.Ext: from the last `.` of the last path element, `""` when there is none. */
export function goExt(p: string): string {
  for (let i = p.length - 1; i >= 0 && p[i] !== '/'; i--) if (p[i] === '.') return p.slice(i);
  return '';
}

/**
 * The path of an upload inside a delivery target: the rendered template plus the original file's extension. The
 * result is always relative and can never leave the target (no `..` segment, no absolute path, no NUL).
 */
export function deliveredPath(uploadId: string, template: CompiledTemplate, manifest: Record<string, string>): string {
  const key = FILENAME_KEYS.find((k) => Object.prototype.hasOwnProperty.call(manifest, k));
  const original = key ? manifest[key]! : '';
  const ext = goExt(original);
  const ts = manifest['dex_ingest_datetime'];
  if (ts === undefined) throw new BadIngestTimestampError();
  const t = RFC3339.exec(ts);
  if (!t) throw new BadIngestTimestampError(`parsing ${JSON.stringify(ts)} as RFC 3339`);
  const values: Record<Field, string> = {
    Year: t[1]!,
    Month: t[2]!,
    Day: t[3]!,
    Hour: t[4]!,
    Filename: original.slice(0, original.length - ext.length),
    UploadId: uploadId,
    DataStreamID: manifest['data_stream_id'] ?? '',
    DataStreamRoute: manifest['data_stream_route'] ?? '',
    Prefix: '',
    Suffix: '',
  };
  const rendered = template.map((p) => (typeof p === 'string' ? p : values[p.field])).join('') + ext;
  if (rendered.includes('\0') || rendered.startsWith('/') || rendered.split(/[\\/]/).some((seg) => seg === '..') || rendered === '') {
    throw new TemplateError(`delivery path ${JSON.stringify(rendered)} would leave its target`);
  }
  return rendered;
}
