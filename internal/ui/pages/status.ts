import { html, type SafeHtml } from '../html.js';

/** The parts of `GET /info/{id}` the page shows (dex-api.md §1.4). */
export interface UploadInfoView {
  manifest?: Record<string, string>;
  file_info?: { updated_at?: string; size_bytes?: number } | null;
  upload_status?: { status?: string; chunk_received_at?: string };
  deliveries?: Array<{ status?: string; name?: string; location?: string; delivered_at?: string; issues?: unknown }> | null;
}

export interface StatusPageOptions {
  id: string;
  info: UploadInfoView;
  /** The tus URL of this upload as the browser reaches the API. */
  uploadUrl: string;
  /** Where the page polls its details fragment. */
  detailsUrl: string;
  /** The user's bearer token when OAuth is on, for tus-js-client's requests. */
  token?: string;
}

const kebab = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** Go's RFC850 in UTC, as the original shows dates: `Monday, 02-Jan-06 15:04:05 UTC`. */
export function rfc850(text: string | undefined): string {
  const d = new Date(text ?? '');
  if (Number.isNaN(d.getTime())) return text ?? '';
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())}-${months[d.getUTCMonth()]}-${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`;
}

/** SI bytes, upper-cased, one decimal below 10: `10 KB`, `1.5 MB` (the original's go-humanize rule). */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : val.toFixed(0)} ${units[e]}`;
}

const time = (t: string | undefined) => (t ? html`<time datetime="${t}">${rfc850(t)}</time>` : 'unknown');

/** The part of the status page that follows the upload: polled and replaced as the upload and deliveries go on. */
export function detailsFragment(id: string, info: UploadInfoView): SafeHtml {
  const m = info.manifest ?? {};
  const status = info.upload_status?.status ?? 'Unknown';
  const deliveries = info.deliveries ?? [];
  const filename = m['received_filename'] || m['filename'] || 'Your upload';
  const detail = (label: string, value: string | undefined) => html`<dt>${label}</dt><dd>${value ?? ''}</dd>
`;
  return html`<div id="details-content" data-status="${status}" data-offset="${info.file_info?.size_bytes ?? 0}" data-deliveries="${deliveries.map((d) => `${d.name}:${d.status}`).join(',')}">
<div class="file-header-container">
<h2>${filename}</h2>
<p>ID: <code>${id}</code></p>
<p class="upload-status">Upload Status: <span id="upload-status-value" class="status upload-${kebab(status)}">${status}</span></p>
<p>${status === 'Complete' ? 'Upload Completed At:' : 'Last Activity At:'} ${time(info.upload_status?.chunk_received_at)}</p>
</div>
${deliveries.length > 0 ? html`<div class="file-deliveries-container">
<h3>Delivery Status</h3>
${deliveries.map((d) => html`<div class="file-delivery-container file-delivery-${kebab(d.status ?? '')}">
<h4>${(d.name ?? '').toUpperCase()}</h4>
<p>Delivery Status: <span class="status delivery-${kebab(d.status ?? '')}">${d.status}</span></p>
<p>Delivered At: ${time(d.delivered_at)}</p>
<p class="location">Location: <code>${d.location}</code></p>
${issuesList(d.issues)}
</div>
`)}</div>` : ''}
<div class="file-details-container">
<h3>Upload Details</h3>
<dl class="details">
${info.file_info ? detail('File Size:', humanBytes(info.file_info.size_bytes ?? 0)) : ''}${detail('Sender ID:', m['sender_id'])}${detail('Producer ID:', m['data_producer_id'])}${detail('Stream ID:', m['data_stream_id'])}${detail('Stream Route:', m['data_stream_route'])}${detail('Jurisdiction:', m['jurisdiction'])}</dl>
</div>
</div>`;
}

function issuesList(issues: unknown): SafeHtml | '' {
  if (!Array.isArray(issues) || issues.length === 0) return '';
  const text = (i: unknown) => {
    if (i && typeof i === 'object') {
      const { level, message } = i as { level?: unknown; message?: unknown };
      return `${String(level ?? '')}: ${String(message ?? '')}`;
    }
    return String(i);
  };
  return html`<h5>Issues</h5><ul>${issues.map((i) => html`<li>${text(i)}</li>`)}</ul>`;
}

const HEADINGS: Record<string, string> = { Initiated: 'File Uploader', 'In Progress': 'Resume Upload', Complete: 'Upload Complete' };

/** `/status/{id}`: the file picker and progress (until the upload is complete), then its status and deliveries. */
export function statusBody(o: StatusPageOptions): SafeHtml {
  const status = o.info.upload_status?.status ?? 'Unknown';
  const uploading = status === 'Initiated' || status === 'In Progress';
  const received = o.info.file_info?.size_bytes ?? 0;
  return html`<h1 id="page-title" class="${status === 'In Progress' ? 'resume-upload' : 'new-upload'}">${HEADINGS[status] ?? 'Upload Status'}</h1>
<div id="upload-app" data-upload-url="${o.uploadUrl}" data-upload-id="${o.id}" data-details-url="${o.detailsUrl}" data-status="${status}" data-received="${received}"${o.token ? html` data-token="${o.token}"` : ''}>
<section id="uploader" class="card" aria-labelledby="page-title"${uploading ? '' : html` hidden`}>
<div id="support-alert" class="alert" role="alert" hidden>This browser cannot upload files from this page. Use a current version of Firefox, Chrome, Edge or Safari.</div>
<p id="uploader-intro">${status === 'In Progress'
    ? html`${humanBytes(received)} of this upload have been received. Choose the same file again to upload the rest.`
    : 'Choose the file to upload. The upload starts as soon as you choose it.'}</p>
<div id="picker">
<div class="field">
<label for="files">File to upload</label>
<input type="file" id="files" name="files">
</div>
<details class="advanced">
<summary>Advanced settings</summary>
<div class="field">
<label for="chunksize">Chunk Size (bytes)</label>
<p class="hint" id="chunksize-hint">Note: Chunksize should be set on the client for uploading files of large size (1GB or over).</p>
<input type="number" id="chunksize" name="chunksize" min="1" step="1" value="40000000" inputmode="numeric" aria-describedby="chunksize-hint">
</div>
</details>
</div>
<div id="progress-area" hidden>
<label for="progress">Upload progress</label>
<progress id="progress" max="100" value="0">0%</progress>
<p id="progress-text" class="progress-text">0%</p>
<div class="button-row" id="upload-buttons">
<button type="button" id="pause-upload-button" class="button">Pause</button>
<button type="button" id="resume-upload-button" class="button" disabled>Resume</button>
</div>
</div>
<p id="upload-error" class="error-message" role="alert" hidden></p>
</section>
<p id="announcer" class="visually-hidden" role="status"></p>
<section id="details" class="card" aria-label="Upload status and details">
${detailsFragment(o.id, o.info)}
</section>
</div>`;
}
