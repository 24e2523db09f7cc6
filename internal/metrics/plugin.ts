import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from './metrics.js';

export interface MetricsPluginOptions {
  metrics: ServerMetrics;
}

/** GET /metrics in Prometheus' text format, and the request counters of the API server. */
export async function metricsPlugin(app: FastifyInstance, { metrics }: MetricsPluginOptions): Promise<void> {
  // Counted on the HTTP server itself rather than in a Fastify hook: every request, including those Fastify answers
  // before any route (an undecodable URL, 503 while closing), and no hook on each request. First in line, so that a
  // scrape counts itself among the open requests, as in DEX.
  app.server.prependListener('request', metrics.http.onRequest);
  app.addHook('onClose', async () => {
    app.server.off('request', metrics.http.onRequest);
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
