import { html, type SafeHtml } from '../html.js';

/** `/login` (only when OAuth is on): the user's access token, kept in a signed HttpOnly cookie for this UI. */
export function loginBody(o: { csrfToken: string; next: string; error?: string }): SafeHtml {
  return html`<h1>Sign in to DEX Upload</h1>
${o.error ? html`<div class="error-summary" role="alert" tabindex="-1" id="error-summary"><h2>There is a problem</h2><p>${o.error}</p></div>` : ''}
<form method="post" action="/login" class="stack" novalidate>
<input type="hidden" name="_csrf" value="${o.csrfToken}">
<input type="hidden" name="next" value="${o.next}">
<div class="field${o.error ? ' field-error' : ''}">
<label for="token">Access token</label>
<p class="hint" id="token-hint">The bearer token your identity provider issued for the upload API.</p>
<input type="text" id="token" name="token" required autocomplete="off" spellcheck="false" aria-describedby="token-hint"${o.error ? html` aria-invalid="true"` : ''}>
</div>
<button type="submit" class="button">Sign in</button>
</form>`;
}
