// Entry point: read the configuration, compose the parts once, serve, and shut down gracefully.
import { appconfPath, loadAppconf } from '../internal/config/appconf.js';
import { ConfigError, loadConfig, type Config } from '../internal/config/config.js';
import { createLogger } from '../internal/logging/logger.js';
import { composeServer, type Server } from '../internal/server/compose.js';
import { preferAtomicMarking } from '../internal/runtime/gc.js';

function readConfig(): Config {
  try {
    const file = appconfPath(process.argv.slice(2));
    if (file) loadAppconf(file, process.env);
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: `configuration error: ${err.message}` })}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** Set once composed: a start-up that fails later (a port in use) closes it before exiting. */
let composed: Server | undefined;

async function main(): Promise<void> {
  preferAtomicMarking();
  const config = readConfig();
  const log = createLogger(config);
  composed = await composeServer(config, log);
  const { app, ui, core, cleaner, reports, bus, redeliver, close } = composed;

  await app.listen({ port: config.server.port, host: config.server.listenHost });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  if (ui) {
    await ui.listen({ port: config.ui.port!, host: config.server.listenHost });
    const uiAddress = ui.server.address();
    log.info({ port: typeof uiAddress === 'object' && uiAddress ? uiAddress.port : config.ui.port, host: config.server.listenHost }, 'ui listening');
  }
  log.info({ port, host: config.server.listenHost, basePath: config.tus.basePath }, 'server listening');
  cleaner.start();
  redeliver().catch((err: unknown) => log.error({ err }, 'start-up redelivery failed'));

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // A PATCH still receiving its body stops now, saves its bytes and answers 503 (tusd does the same); the other
    // in-flight requests (a body that has fully arrived, a download) get the grace period, then are cut.
    core.shutdown();
    const cut = setTimeout(() => app.server.closeAllConnections(), config.server.shutdownTimeoutMs);
    try {
      await Promise.all([app.close(), ui?.close()]);
      await cleaner.stop();
      // Deliveries cut short here have no SUCCESS report, so the next start delivers them again.
      await bus.close();
      // Reports of the last requests are written before exiting (bounded: a dead sink must not hold the exit).
      await Promise.race([reports.drain(), new Promise((r) => setTimeout(r, 5_000).unref())]);
      await close();
    } catch (err) {
      log.error({ err }, 'error during shutdown');
    } finally {
      clearTimeout(cut);
    }
    log.info('stopped');
    log.flush?.();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch(async (err: unknown) => {
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'start-up failed', err: (err as Error).message })}\n`);
  // The I/O threads have exited before the process does: exiting while one is still starting can abort Node
  // (see IoThread.start). Bounded: a dead dependency must not hold the exit.
  const closing = composed?.close().catch(() => undefined);
  await Promise.race([closing, new Promise((r) => setTimeout(r, 5_000).unref())]);
  process.exit(1);
});
