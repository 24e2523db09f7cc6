import { pino, type Logger } from 'pino';
import type { Config } from '../config/config.js';

export type { Logger };

/** JSON on stdout, DEX's app_info on every record, credentials redacted. Fastify logs through the same instance. */
export function createLogger(config: Config, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: config.logger.debug ? 'debug' : 'info',
      base: {
        app_info: { System: 'DEX', Product: 'UPLOAD API', App: 'UPLOAD SERVER', Env: config.logger.environment },
      },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization', 'headers.authorization', 'request.headers.authorization', '*.password', '*.secret', '*.accountKey', '*.connectionString',
          // Bearer tokens (issue 13): never logged by our code; these catch a header or token object logged by mistake.
          'authorization', '*.authorization', '*.*.authorization', 'token', '*.token',
        ],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}
