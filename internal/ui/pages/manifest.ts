import type { FieldConfig } from '../../manifest/config.js';
import type { FieldError } from '../../manifest/validate.js';
import { flag, html, type SafeHtml } from '../html.js';
import { FIXED_FIELDS, type DataStream } from '../streams.js';

/** `sender_id` → `Sender Id` (the original's labels). */
export const fieldLabel = (name: string): string =>
  name
    .split('_')
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join(' ');

/** What a sender reads beside a field the validator refused. */
export function fieldErrorText(field: string, kind: FieldError['kind']): string {
  const label = fieldLabel(field);
  switch (kind) {
    case 'missing':
      return `Enter ${label}.`;
    case 'disallowed':
      return `Choose one of the listed values for ${label}.`;
    case 'invalid-character':
      return `${label} must not contain a slash (/).`;
  }
}

export interface ManifestFormOptions {
  stream: DataStream;
  fields: FieldConfig[];
  csrfToken: string;
  /** What the sender typed, kept when the form comes back with errors. */
  values?: Record<string, string>;
  /** Field name → message. */
  errors?: Map<string, string>;
  /** Errors of the upload API that belong to no field. */
  otherErrors?: string[];
}

/** `/manifest`: one control per config field (but the stream and route, which are fixed); `POST /upload`. */
export function manifestBody(o: ManifestFormOptions): SafeHtml {
  const values = o.values ?? {};
  const errors = o.errors ?? new Map<string, string>();
  const fields = o.fields.filter((f) => !FIXED_FIELDS.includes(f.field_name));
  const hasErrors = errors.size > 0 || (o.otherErrors?.length ?? 0) > 0;
  return html`<h1>Please fill in the sender manifest form for your file</h1>
<p>Data stream <strong>${o.stream.id}</strong>, route <strong>${o.stream.route}</strong>.</p>
${hasErrors ? errorSummary(fields, errors, o.otherErrors ?? []) : ''}
<p class="hint"><span aria-hidden="true">*</span> indicates a required field</p>
<form method="post" action="/upload" class="stack" novalidate>
<input type="hidden" name="_csrf" value="${o.csrfToken}">
<input type="hidden" name="data_stream_id" value="${o.stream.id}">
<input type="hidden" name="data_stream_route" value="${o.stream.route}">
${fields.map((f) => fieldControl(f, values[f.field_name], errors.get(f.field_name)))}
<button type="submit" class="button">Next</button>
</form>`;
}

function errorSummary(fields: FieldConfig[], errors: Map<string, string>, other: string[]): SafeHtml {
  return html`<div class="error-summary" role="alert" aria-labelledby="error-summary-title" tabindex="-1" id="error-summary">
<h2 id="error-summary-title">There is a problem</h2>
<ul>
${fields.filter((f) => errors.has(f.field_name)).map((f) => html`<li><a href="#${f.field_name}">${errors.get(f.field_name)}</a></li>
`)}${other.map((e) => html`<li>${e}</li>
`)}</ul>
</div>`;
}

function fieldControl(f: FieldConfig, value: string | undefined, error: string | undefined): SafeHtml {
  const name = f.field_name;
  const hintId = `${name}-hint`;
  const errorId = `${name}-error`;
  const describedBy = [f.description ? hintId : '', error ? errorId : ''].filter(Boolean).join(' ');
  const describe = describedBy ? html` aria-describedby="${describedBy}"` : '';
  const invalid = error ? html` aria-invalid="true"` : '';
  const allowed = Array.isArray(f.allowed_values) && f.allowed_values.length > 0 ? f.allowed_values : undefined;
  const control = allowed
    ? html`<select id="${name}" name="${name}"${describe}${invalid}>
${allowed.map((v) => html`<option value="${v}"${flag('selected', v === value)}>${v}</option>
`)}</select>`
    : html`<input type="text" id="${name}" name="${name}" value="${value ?? ''}"${flag('required', f.required)}${describe}${invalid} autocomplete="off" spellcheck="false">`;
  return html`<div class="field${error ? ' field-error' : ''}">
<label for="${name}">${fieldLabel(name)}${f.required ? html` <span class="required" aria-hidden="true">*</span>` : ''}</label>
${f.description ? html`<p class="hint" id="${hintId}">${f.description}</p>` : ''}
${error ? html`<p class="error-message" id="${errorId}"><span class="visually-hidden">Error:</span> ${error}</p>` : ''}
${control}
</div>
`;
}
