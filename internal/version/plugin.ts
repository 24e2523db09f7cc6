import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { goTimeLocal } from '../clock/gotime.js';

export interface BuildInfo {
  repo: string;
  latest_release_version: string;
  git_short_sha: string;
}

/** Written by scripts/build-info.mjs at build time, next to the compiled code. */
export function loadBuildInfo(): BuildInfo {
  try {
    const raw = JSON.parse(readFileSync(new URL('../../build-info.json', import.meta.url), 'utf8')) as Partial<BuildInfo>;
    return { repo: raw.repo ?? '', latest_release_version: raw.latest_release_version ?? '', git_short_sha: raw.git_short_sha ?? '' };
  } catch {
    return { repo: '', latest_release_version: '', git_short_sha: '' };
  }
}

/** `<version>_<sha>`, the report `stage_info.version`. */
export const reportVersion = (b: BuildInfo) => `${b.latest_release_version}_${b.git_short_sha}`;

/** GET / and GET /version. */
export async function aboutPlugin(app: FastifyInstance, opts: { build: BuildInfo }): Promise<void> {
  const version = `${JSON.stringify(opts.build)}\n`;
  app.get('/', async (_req, reply) => {
    reply
      .type('application/json')
      .send(JSON.stringify({ system: 'DEX', dex_product: 'UPLOAD API', dex_app: 'upload server', server_time: goTimeLocal() }));
  });
  app.get('/version', async (_req, reply) => {
    reply.type('application/json').send(version);
  });
}
