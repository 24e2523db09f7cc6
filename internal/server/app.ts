import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Config } from '../config/config.js';
import { healthPlugin, type HealthCheck } from '../health/plugin.js';
import { tusBadUrl, tusMethodNotAllowed, tusPlugin } from '../tus/plugin.js';
import type { TusCore } from '../tus/core.js';
import { aboutPlugin, type BuildInfo } from '../version/plugin.js';
import type { Logger } from '../logging/logger.js';
import { errors } from '../tus/errors.js';
import { TUS_VERSION } from '../tus/headers.js';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

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

  // A connection that ends in the middle of a tus request body (the client half-closes) is a parse error for Node,
  // which Fastify would answer with a generic 400 JSON. The handler keeps the bytes that arrived; answer as it would.
  app.server.prependListener('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    const url = res?.req?.url?.split('?')[0] ?? '';
    const base = parts.core.opts.basePath;
    if (err.code !== 'HPE_INVALID_EOF_STATE' || !res || res.headersSent || socket.destroyed) return;
    if (url !== base.slice(0, -1) && !url.startsWith(base)) return;
    const e = errors.internal('the request body was cut short');
    const body = `${e.code}: ${e.message}\n`;
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nTus-Resumable: ${TUS_VERSION}\r\nX-Content-Type-Options: nosniff\r\n` +
          `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
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
