import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { STYLESHEET } from './styles.js';

/** Where pages load the UI's own files from: each URL carries a hash of its content, so it can be cached for good. */
export interface AssetUrls {
  css: string;
  tus: string;
  status: string;
}

interface Asset {
  name: string;
  type: string;
  body: Buffer;
  version: string;
}

/**
 * The UI's files, read once at start-up: the stylesheet, the status page's script (compiled with the server) and
 * tus-js-client's browser build from node_modules. Served by the UI itself; no page loads anything from elsewhere.
 */
export async function loadAssets(): Promise<Asset[]> {
  const require = createRequire(import.meta.url);
  const files: Array<Omit<Asset, 'version'>> = [
    { name: 'ui.css', type: 'text/css; charset=utf-8', body: Buffer.from(STYLESHEET) },
    { name: 'tus.min.js', type: 'text/javascript; charset=utf-8', body: await readFile(require.resolve('tus-js-client/dist/tus.min.js')) },
    { name: 'status.js', type: 'text/javascript; charset=utf-8', body: withoutSourceMap(await readFile(new URL('./client/status.js', import.meta.url), 'utf8')) },
  ];
  return files.map((f) => ({ ...f, version: createHash('sha256').update(f.body).digest('hex').slice(0, 16) }));
}

/** The compiled script names a source map that is not served. */
const withoutSourceMap = (js: string) => Buffer.from(js.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n'));

export function assetUrls(assets: Asset[]): AssetUrls {
  const url = (name: string) => {
    const a = assets.find((x) => x.name === name)!;
    return `/assets/${a.name}?v=${a.version}`;
  };
  return { css: url('ui.css'), tus: url('tus.min.js'), status: url('status.js') };
}

export async function assetsPlugin(app: FastifyInstance, opts: { assets: Asset[] }): Promise<void> {
  for (const a of opts.assets) {
    const etag = `"${a.version}"`;
    app.get(`/assets/${a.name}`, async (req, reply) => {
      const { v } = req.query as { v?: string };
      reply
        .type(a.type)
        .header('ETag', etag)
        .header('Cache-Control', v === a.version ? 'public, max-age=31536000, immutable' : 'no-cache');
      if (req.headers['if-none-match'] === etag) return reply.code(304).send();
      return reply.send(a.body);
    });
  }
}
