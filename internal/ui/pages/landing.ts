import { html, type SafeHtml } from '../html.js';
import type { DataStream } from '../streams.js';

/**
 * `/`: the data streams and routes that have a config, as one choice; `undefined` when the config store cannot list
 * its configs, then the two names are typed in (the original's form).
 */
export function landingBody(streams: DataStream[] | undefined): SafeHtml {
  if (streams === undefined) {
    return html`<h1>Welcome to DEX Upload</h1>
<h2>Start the upload process by entering a data stream and route.</h2>
<form method="get" action="/manifest" class="stack">
<div class="field"><label for="data_stream_id">Data Stream</label>
<input type="text" id="data_stream_id" name="data_stream_id" required autocomplete="off" spellcheck="false"></div>
<div class="field"><label for="data_stream_route">Data Stream Route</label>
<input type="text" id="data_stream_route" name="data_stream_route" required autocomplete="off" spellcheck="false"></div>
<button type="submit" class="button">Next</button>
</form>`;
  }
  if (streams.length === 0) {
    return html`<h1>Welcome to DEX Upload</h1>
<p>No data stream is configured on this server yet, so there is nothing to upload to.</p>`;
  }
  return html`<h1>Welcome to DEX Upload</h1>
<h2>Start the upload process by choosing a data stream and route.</h2>
<form method="get" action="/manifest" class="stack">
<div class="field">
<label for="stream">Data Stream and Route</label>
<p class="hint" id="stream-hint">Each data stream has one or more routes; the next page asks for the details it needs.</p>
<select id="stream" name="stream" aria-describedby="stream-hint">
${streams.map((s) => html`<option value="${s.id}/${s.route}">${s.id} / ${s.route}</option>
`)}</select>
</div>
<button type="submit" class="button">Next</button>
</form>`;
}
