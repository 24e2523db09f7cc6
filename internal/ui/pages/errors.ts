import { html, type SafeHtml } from '../html.js';

/** A page that says what went wrong and where to go next; `lines` are shown as sent (e.g. the config loader's text). */
export function errorBody(heading: string, message: string, lines: string[] = []): SafeHtml {
  return html`<h1>${heading}</h1>
<p>${message}</p>
${lines.length > 0 ? html`<pre class="error-text">${lines.join('\n')}</pre>` : ''}
<p><a href="/">Start a new upload</a></p>`;
}
