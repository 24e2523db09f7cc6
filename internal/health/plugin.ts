import type { FastifyInstance } from 'fastify';

import type { HealthCheck } from './check.js';

export type { HealthCheck } from './check.js';

interface ServiceHealth {
  service: string;
  status: 'UP' | 'DOWN';
  health_issue: string;
}

export async function runChecks(checks: HealthCheck[]): Promise<{ status: 'UP' | 'DEGRADED'; services: ServiceHealth[] | null }> {
  const services: ServiceHealth[] = [];
  for (const c of checks) {
    try {
      await c.check();
      services.push({ service: c.name, status: 'UP', health_issue: 'None reported' });
    } catch (err) {
      services.push({ service: c.name, status: 'DOWN', health_issue: (err as Error).message || String(err) });
    }
  }
  return {
    status: services.some((s) => s.status === 'DOWN') ? 'DEGRADED' : 'UP',
    services: services.length ? services : null,
  };
}

/** GET /health: always 200; DEGRADED when a component is DOWN. Checks run in registration order. */
export async function healthPlugin(app: FastifyInstance, opts: { checks: HealthCheck[] }): Promise<void> {
  app.get('/health', async (_req, reply) => {
    const body = await runChecks(opts.checks);
    reply.type('application/json').send(JSON.stringify(body));
  });
}
