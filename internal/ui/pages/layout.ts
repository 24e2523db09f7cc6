import { html, type SafeHtml } from '../html.js';
import type { AssetUrls } from '../assets.js';

export interface PageOptions {
  title: string;
  assets: AssetUrls;
  body: SafeHtml;
  /** The "Upload New File" link in the header (pages after the first). */
  newUploadLink?: boolean;
  /** Scripts of this page, run in order once it is parsed (no inline scripts: the Content-Security-Policy forbids them). */
  scripts?: Array<{ src: string; module?: boolean }>;
}

/** Every page: a skip link, the header with the home link, one `main` landmark. */
export function page(o: PageOptions): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${o.assets.css}">
</head>
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="site-header">
<nav class="site-nav" aria-label="Site">
<a class="logo" href="/">Upload</a>
${o.newUploadLink ? html`<a class="button button-secondary" href="/">Upload New File</a>` : ''}
</nav>
</header>
<main id="main" tabindex="-1">
${o.body}
</main>
${(o.scripts ?? []).map((s) => (s.module ? html`<script type="module" src="${s.src}"></script>
` : html`<script src="${s.src}" defer></script>
`))}
</body>
</html>
`;
}
