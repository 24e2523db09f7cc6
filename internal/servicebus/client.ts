import { ServiceBusClient, type RetryOptions } from '@azure/service-bus';
import { ConfigError } from '../config/env.js';
import type { Logger } from '../logging/logger.js';
import { parseConnectionString, scrubSecrets } from './connection-string.js';

/**
 * The SDK's own retries are kept short (its default waits 30 s between tries): our callers retry with their own
 * back-off (the report/event queues, the subscriber's receive loop), so a down broker shows in /health quickly. The
 * operation timeout also bounds a send caught by a dropped connection: the SDK holds it while it reconnects, and
 * only its failure turns the entry DOWN.
 */
const SDK_RETRY: RetryOptions = { maxRetries: 2, retryDelayInMs: 500, maxRetryDelayInMs: 5_000, timeoutInMs: 10_000 };

/** Validates the connection string (errors name `variable`, never the value) and builds the client. */
export function createServiceBusClient(connectionString: string, variable: string): ServiceBusClient {
  parseConnectionString(connectionString, variable);
  try {
    return new ServiceBusClient(connectionString, { retryOptions: SDK_RETRY });
  } catch (err) {
    throw new ConfigError(`${variable}: rejected by the Service Bus client: ${scrubSecrets((err as Error).message)}`);
  }
}

const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Closes an SDK object without letting shutdown hang: after the connection has dropped, the SDK's close() can wait
 * forever for a broker that is gone. Failures and timeouts are logged, never thrown.
 */
export async function closeQuietly(what: string, close: () => Promise<void>, log: Logger, timeoutMs = CLOSE_TIMEOUT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    // Not unref'd: the shutdown that awaits this must reach its end (and its log line) even if nothing else is left.
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([close().then(() => 'closed' as const), timedOut]);
    if (outcome === 'timeout') log.warn({ timeoutMs }, `closing the Service Bus ${what} timed out; going on`);
  } catch (err) {
    log.warn({ err }, `closing the Service Bus ${what} failed`);
  } finally {
    clearTimeout(timer);
  }
}
