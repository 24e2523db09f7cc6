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
