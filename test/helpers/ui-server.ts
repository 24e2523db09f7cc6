// The real server with its sender UI on a free loopback port (UI_PORT=0), manifest validation on.
import { startServer, type RunningServer, type StartOptions } from './server.js';
import { waitUntil } from './wait.js';

export interface RunningUiServer extends RunningServer {
  /** http://127.0.0.1:<UI port> */
  uiUrl: string;
}

export async function startUiServer(opts: StartOptions = {}): Promise<RunningUiServer> {
  const s = await startServer({ ...opts, env: { UI_PORT: '0', UPLOAD_MANIFEST_VALIDATION: 'true', ...opts.env } });
  const port = await waitUntil('the "ui listening" line', () => {
    for (const line of s.logs().split('\n')) {
      if (!line.includes('"ui listening"')) continue;
      return (JSON.parse(line) as { port: number }).port;
    }
    return undefined;
  }, 15_000);
  return Object.assign(s, { uiUrl: `http://127.0.0.1:${port}` });
}

/** What a browser holds after loading a form page: the CSRF cookie and the form's token. */
export async function csrfPair(uiUrl: string, formPath = '/manifest?data_stream_id=dextesting&data_stream_route=testevent1'): Promise<{ cookie: string; token: string }> {
  const res = await fetch(`${uiUrl}${formPath}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const token = /name="_csrf" value="([^"]+)"/.exec(await res.text())?.[1];
  if (!token) throw new Error(`no CSRF token in ${formPath}`);
  return { cookie, token };
}

/** POSTs a form to the UI as a browser would (no redirects followed). */
export const postForm = (uiUrl: string, path: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
  fetch(`${uiUrl}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields),
  });
