// The server composed in this test process (as cmd/main.ts composes it), for suites that plug their own hooks in.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../internal/config/config.js';
import { createLogger } from '../../internal/logging/logger.js';
import { composeServer, type Server } from '../../internal/server/compose.js';
import type { TusHooks } from '../../internal/tus/hooks.js';
import { modeEnv } from './manifest-mode.js';
import { REPO_ROOT } from './server.js';

export interface InProcessServer {
  base: string;
  server: Server;
  close(): Promise<void>;
}

/** Listens on a free loopback port with a fresh uploads folder; validation follows the test mode unless `env` says. */
export async function startInProcess(hooks: TusHooks[], env: Record<string, string> = {}): Promise<InProcessServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dex-inproc-'));
  // The shipped deliver.yml with its file targets moved into this folder (the process's cwd is the repository).
  const deliverYml = path.join(dir, 'deliver.yml');
  const shipped = await readFile(path.join(REPO_ROOT, 'configs/local/deliver.yml'), 'utf8');
  await writeFile(deliverYml, shipped.replaceAll('path: ./uploads/', `path: ${path.join(dir, 'uploads')}/`));
  const config = loadConfig({
    LOCAL_EVENTS_FOLDER: path.join(dir, 'uploads', 'events'),
    DEX_DELIVERY_CONFIG_FILE: deliverYml,
    LOCAL_FOLDER_UPLOADS_TUS: path.join(dir, 'uploads'),
    LOCAL_REPORTS_FOLDER: path.join(dir, 'uploads', 'reports'),
    UI_PORT: '',
    UPLOAD_CONFIG_PATH: path.join(REPO_ROOT, 'upload-configs'),
    ...modeEnv(),
    ...env,
  });
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  const server = await composeServer(config, createLogger(config, quiet), hooks);
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = server.app.server.address();
  return {
    base: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    server,
    async close() {
      await server.app.close();
      await server.bus.close();
      await server.reports.drain();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
