// Shared pieces of the Service Bus suites: connection strings with a recognisable secret, config from env, polling.
import { loadConfig, type Config } from '../../internal/config/config.js';
import type { HealthCheck } from '../../internal/health/check.js';
import type { MiniServiceBus } from '../helpers/mini-servicebus.js';

/** The shared access key in every test connection string: it must never show up in a log line or an error. */
export const SECRET = 'k3y-SHOULD-never-BE-logged=';

export const connectionString = (broker: MiniServiceBus) =>
  `Endpoint=sb://127.0.0.1:${broker.port}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${SECRET};UseDevelopmentEmulator=true`;

export const configFrom = (env: Record<string, string>): Config => loadConfig({ UI_PORT: '', ...env });

export { sleep, waitUntil } from '../helpers/wait.js';

/** `UP`, or the DOWN issue text. */
export async function healthOf(check: HealthCheck): Promise<string> {
  try {
    await check.check();
    return 'UP';
  } catch (err) {
    return `DOWN: ${(err as Error).message}`;
  }
}
