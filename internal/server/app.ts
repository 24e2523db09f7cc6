import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { healthPlugin, type HealthCheck } from '../health/plugin.js';
import { tusMethodNotAllowed, tusPlugin } from '../tus/plugin.js';
import type { TusCore } from '../tus/core.js';
import { aboutPlugin, type BuildInfo } from '../version/plugin.js';
import type { Logger } from '../logging/logger.js';

export interface AppParts {
  config: Config;
  build: BuildInfo;
  core: TusCore;
  healthChecks: HealthCheck[];
}

/** The upload API: one Fastify instance, one plugin per concern. */
export function buildApp(parts: AppParts, logger: Logger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request is logged by our onResponse hook (debug), not Fastify's two at info.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    // Long uploads are fine; a dead peer is caught by the per-body idle timeout (TUS_NETWORK_TIMEOUT).
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  app.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode >= 500) req.log.warn({ method: req.method, url: req.url, status: reply.statusCode }, 'request failed');
    else req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
  });

  app.setNotFoundHandler((req, reply) => {
    if (tusMethodNotAllowed(parts.core, req, reply)) return;
    reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });

  app.register(aboutPlugin, { build: parts.build });
  app.register(healthPlugin, { checks: parts.healthChecks });
  app.register(tusPlugin, { core: parts.core });
  return app;
}
