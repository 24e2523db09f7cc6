import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { lazyChildLoggerFactory } from '../logging/lazy-child.js';
import type { Config } from '../config/config.js';
import { healthPlugin, type HealthCheck } from '../health/plugin.js';
import { tusBadUrl, tusMethodNotAllowed, tusPlugin, tusRefusalHeaders } from '../tus/plugin.js';
import type { TusCore } from '../tus/core.js';
import type { DataStore } from '../storage/store.js';
import { infoPlugin } from '../info/plugin.js';
import { aboutPlugin, type BuildInfo } from '../version/plugin.js';
import type { Logger } from '../logging/logger.js';
import { routePlugin, type RoutePluginOptions } from '../delivery/route-plugin.js';
import { metricsPlugin } from '../metrics/plugin.js';
import type { ServerMetrics } from '../metrics/metrics.js';
import { authHook, guarded } from '../auth/plugin.js';
import type { BearerVerifier } from '../auth/verifier.js';

export interface AppParts {
  config: Config;
  build: BuildInfo;
  core: TusCore;
  store: DataStore;
  healthChecks: HealthCheck[];
  route: RoutePluginOptions;
  metrics?: ServerMetrics;
  /** Present when OAUTH_AUTH_ENABLED: guards the tus routes and /info (dex-api.md §3). */
  auth?: BearerVerifier;
}

/** The upload API: one Fastify instance, one plugin per concern. */
export function buildApp(parts: AppParts, logger: Logger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // No per-request lines at info: failures are logged where they happen; every request only at debug (below).
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLoggerFactory,
    exposeHeadRoutes: false,
    // Long uploads are fine; a dead peer is caught by the per-body idle timeout (TUS_NETWORK_TIMEOUT).
    requestTimeout: 0,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Undecodable URLs: a tus 404 under the base path (O2), Fastify's 400 elsewhere.
    frameworkErrors: (err, req, reply) => {
      if (err.code === 'FST_ERR_BAD_URL' && tusBadUrl(parts.core, req, reply)) return;
      (reply as FastifyReply).code(err.statusCode ?? 400).send(err);
    },
  });

  // Failures are logged where they happen (warn/error); the per-request line costs a hook, so only at debug level.
  if (logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', async (req, reply) => {
      req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: reply.elapsedTime }, 'request');
    });
  }

  app.setNotFoundHandler((req, reply) => {
    if (tusMethodNotAllowed(parts.core, req, reply)) return;
    reply.code(404).type('text/plain; charset=utf-8').send('404 page not found\n');
  });

  if (parts.metrics) app.register(metricsPlugin, { metrics: parts.metrics });
  app.register(aboutPlugin, { build: parts.build });
  app.register(healthPlugin, { checks: parts.healthChecks });
  // OAuth guards the tus routes and /info only. A tus OPTIONS (preflight, discovery) needs no token; /info answers
  // every method with the upload's data, so its OPTIONS does.
  const { auth, core } = parts;
  const infoAuth = auth && authHook(auth, { allowOptions: false });
  const tusAuth = auth && authHook(auth, { allowOptions: true, decorateRefusal: (req, reply) => tusRefusalHeaders(core, req, reply) });
  app.register(guarded(infoPlugin, infoAuth), { store: parts.store, reportsFolder: parts.config.reports.localReportsFolder });
  app.register(routePlugin, parts.route);
  app.register(guarded(tusPlugin, tusAuth), { core });
  return app;
}
