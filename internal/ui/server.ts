import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import type { ConfigCache, ConfigLister } from '../manifest/config.js';
import { ApiUnreachableError, type UploadApi } from './api-client.js';
import { assetsPlugin, assetUrls, loadAssets, type AssetUrls } from './assets.js';
import type { SafeHtml } from './html.js';
import { errorBody } from './pages/errors.js';
import { page, type PageOptions } from './pages/layout.js';
import { uiRoutes } from './routes.js';
import type { TokenVerifier } from './token.js';

export interface UiOptions {
  config: Pick<Config, 'ui' | 'tus'>;
  configs: ConfigCache;
  /** Absent when the config store cannot list its configs (the landing page then asks for the names). */
  lister?: ConfigLister;
  api: UploadApi;
  /** The port the upload API listens on, for its default public URL (known once it listens). */
  apiPort: () => number;
  /** When OAuth is on (issue 13): the API's bearer verifier; the UI then asks for a token and forwards it. */
  auth?: TokenVerifier;
  log: Logger;
}

/** What every route of the UI shares. */
export interface UiContext extends UiOptions {
  assets: AssetUrls;
  /** The API's base URL as the browser reaches it (no trailing slash). */
  publicApiBase(req: FastifyRequest): string;
  render(reply: FastifyReply, status: number, title: string, body: SafeHtml, extra?: Pick<PageOptions, 'newUploadLink' | 'scripts'>): FastifyReply;
}

const HOSTNAME = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])$/;
const CSRF_COOKIE_MAX_AGE_S = 12 * 3600; // as the original's gorilla/csrf cookie

/**
 * The sender UI (dex-api.md §4): a Fastify instance of its own on UI_PORT, server-rendered pages, CSRF protection on
 * every unsafe request, and the upload API reached over HTTP like any other client.
 */
export async function buildUiApp(opts: UiOptions): Promise<FastifyInstance> {
  const { ui, tus } = opts.config;
  const app = Fastify({
    loggerInstance: opts.log.child({ component: 'ui' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    trustProxy: tus.behindProxy,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  const assets = await loadAssets();
  const urls = assetUrls(assets);
  const publicApiBase = (req: FastifyRequest) => {
    if (ui.externalHost) return `${ui.externalProtocol}://${ui.externalHost}`.replace(/\/+$/, '');
    // Unset: the API on the host name this page was reached by, at the API's own port.
    const host = HOSTNAME.test(req.hostname) ? req.hostname : 'localhost';
    return `${ui.externalProtocol}://${host}:${opts.apiPort()}`;
  };
  const ctx: UiContext = {
    ...opts,
    assets: urls,
    publicApiBase,
    render(reply, status, title, body, extra = {}) {
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(page({ title, assets: urls, body, ...extra }).value);
    },
  };

  await app.register(fastifyCookie, { secret: ui.csrfToken });
  await app.register(fastifyCsrf, {
    cookieKey: 'dex_csrf',
    cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true, signed: true, secure: 'auto', maxAge: CSRF_COOKIE_MAX_AGE_S },
  });
  await app.register(fastifyFormbody);

  // Every unsafe request needs the form's token (or an X-CSRF-Token header) matching the signed cookie.
  app.addHook('preHandler', (req, reply, done) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(req.method)) return done();
    app.csrfProtection(req, reply, done);
  });

  app.addHook('onSend', async (req, reply) => {
    let connect = "'self'";
    try {
      connect += ` ${new URL(publicApiBase(req)).origin}`;
    } catch {
      /* an unusable UI_SERVER_EXTERNAL_HOST: uploads fail, the pages still load */
    }
    reply.header(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src ${connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    );
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'same-origin');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Vary', 'Cookie');
    if (!req.url.startsWith('/assets/')) reply.header('Cache-Control', 'no-store');
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, req, reply) => {
    if (err.code === 'FST_CSRF_INVALID_TOKEN' || err.code === 'FST_CSRF_MISSING_SECRET') {
      const what = err.code === 'FST_CSRF_MISSING_SECRET' ? 'CSRF token not found in request' : 'CSRF token invalid';
      return ctx.render(reply, 403, 'Forbidden', errorBody('Forbidden', `Forbidden - ${what}. Reload the form and send it again.`));
    }
    if (err instanceof ApiUnreachableError) {
      req.log.error({ err }, 'sender UI: upload API unreachable');
      return ctx.render(reply, 502, 'Upload API unavailable', errorBody('The upload service is not available', 'Try again in a few minutes.'));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'sender UI: request failed');
    return ctx.render(reply, status, 'Error', errorBody(status === 500 ? 'Something went wrong' : 'Bad request', status === 500 ? 'The page could not be shown.' : err.message));
  });
  app.setNotFoundHandler((_req, reply) => ctx.render(reply, 404, 'Page not found', errorBody('Page not found', '404 page not found')));

  await app.register(assetsPlugin, { assets });
  await app.register(uiRoutes, { ctx });
  return app;
}
