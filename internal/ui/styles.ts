// The UI's one stylesheet, served from /assets/ui.css. Colours keep at least 4.5:1 against their background (WCAG AA);
// focus is always visible; the layout is a single column that fits a 320 px wide screen.
export const STYLESHEET = `
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
html { font-size: 100%; -webkit-text-size-adjust: 100%; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  line-height: 1.5; color: #1b1b1b; background: #f0f0f0; }
a { color: #005ea2; }
a:hover { color: #1a4480; }
:focus-visible { outline: 3px solid #1a4480; outline-offset: 2px; }
.skip-link { position: absolute; left: 0.5rem; top: -4rem; z-index: 10; padding: 0.5rem 1rem; background: #fff;
  color: #005ea2; border: 2px solid #1a4480; }
.skip-link:focus { top: 0.5rem; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.site-header { background: #162e51; color: #fff; }
.site-nav { max-width: 48rem; margin: 0 auto; padding: 0.75rem 1rem; display: flex; flex-wrap: wrap; gap: 0.75rem;
  align-items: center; justify-content: space-between; }
.logo { color: #fff; font-weight: 700; font-size: 1.25rem; text-decoration: none; }
.logo:hover { color: #fff; text-decoration: underline; }
.site-nav :focus-visible { outline-color: #ffbe2e; }
main { display: block; max-width: 48rem; margin: 0 auto; padding: 1rem; }
main:focus { outline: none; }
h1 { font-size: 1.75rem; line-height: 1.25; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 1.25rem 0 0.5rem; }
h3 { font-size: 1.125rem; margin: 1rem 0 0.5rem; }
h4 { font-size: 1rem; margin: 0 0 0.25rem; }
h5 { font-size: 1rem; margin: 0.5rem 0 0.25rem; }
.card { background: #fff; border: 1px solid #a9aeb1; border-radius: 0.25rem; padding: 1rem; margin: 1rem 0; }
.stack > * + * { margin-top: 1rem; }
.field { margin: 0 0 1.25rem; }
.field label { display: block; font-weight: 700; margin-bottom: 0.25rem; }
.hint { color: #454545; margin: 0 0 0.25rem; }
.required { color: #b50909; }
input[type=text], input[type=number], select { display: block; width: 100%; max-width: 30rem; min-height: 2.75rem;
  padding: 0.5rem; font: inherit; color: #1b1b1b; background: #fff; border: 2px solid #565c65; border-radius: 0; }
input[type=file] { display: block; max-width: 100%; min-height: 2.75rem; padding: 0.5rem 0; font: inherit; }
.field-error { border-left: 4px solid #b50909; padding-left: 0.75rem; }
.field-error input, .field-error select { border-color: #b50909; }
.error-message { color: #b50909; font-weight: 700; margin: 0 0 0.25rem; }
.error-summary { border: 4px solid #b50909; background: #fff; padding: 1rem; margin: 0 0 1.5rem; }
.error-summary h2 { margin-top: 0; }
.error-summary a { color: #b50909; font-weight: 700; }
.alert { border-left: 6px solid #b50909; background: #f4e3db; padding: 0.75rem 1rem; margin: 0 0 1rem; }
.button { display: inline-block; min-height: 2.75rem; padding: 0.625rem 1.25rem; font: inherit; font-weight: 700;
  color: #fff; background: #005ea2; border: 0; border-radius: 0.25rem; text-decoration: none; cursor: pointer; }
.button:hover { background: #1a4480; color: #fff; }
.button:disabled { color: #454545; background: #dfe1e2; cursor: not-allowed; }
.button-secondary { background: #fff; color: #162e51; }
.button-secondary:hover { background: #dfe1e2; color: #162e51; }
.button-row { display: flex; flex-wrap: wrap; gap: 0.75rem; margin-top: 0.75rem; }
progress { display: block; width: 100%; height: 1.5rem; accent-color: #005ea2; }
.progress-text { font-variant-numeric: tabular-nums; margin: 0.25rem 0 0; }
.advanced { margin: 0 0 1rem; }
.advanced summary { cursor: pointer; color: #005ea2; margin-bottom: 0.5rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.status { font-weight: 700; }
.upload-complete, .delivery-success { color: #00703c; }
.delivery-failure { color: #b50909; }
.file-delivery-container { border-top: 1px solid #a9aeb1; padding: 0.5rem 0; }
.file-delivery-container p { margin: 0.125rem 0; }
.location code { font-size: 0.875rem; }
dl.details { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0; }
dl.details dt { font-weight: 700; }
dl.details dd { margin: 0; overflow-wrap: anywhere; }
pre.error-text { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid #a9aeb1; padding: 0.75rem; }
@media (max-width: 30rem) {
  h1 { font-size: 1.5rem; }
  dl.details { grid-template-columns: 1fr; }
  dl.details dd { margin-bottom: 0.5rem; }
  .button { width: 100%; text-align: center; }
  .site-nav .button { width: auto; }
}
`;
