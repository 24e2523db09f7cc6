import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import type { ConfigCache, ConfigLoader, ConfigLister } from '../manifest/config.js';
import { HttpUploadApi } from './api-client.js';
import { buildUiApp } from './server.js';
import type { TokenVerifier } from './token.js';

export interface UiParts {
  config: Config;
  configs: ConfigCache;
  loader: ConfigLoader;
  /** The upload API of this process: its port once it listens. */
  api: FastifyInstance;
  log: Logger;
  auth?: TokenVerifier;
}

/** A host the API can be reached at from this process when it listens on `listenHost`. */
function loopbackOf(listenHost: string): string {
  if (listenHost === '' || listenHost === '0.0.0.0') return '127.0.0.1';
  if (listenHost === '::') return '[::1]';
  return listenHost.includes(':') ? `[${listenHost}]` : listenHost;
}

/** The sender UI on UI_PORT, or `undefined` when UI_PORT is empty. */
export async function createUi(parts: UiParts): Promise<FastifyInstance | undefined> {
  const { config } = parts;
  if (config.ui.port === null) return undefined;
  const apiPort = () => {
    const a = parts.api.server.address();
    return typeof a === 'object' && a ? a.port : config.server.port;
  };
  const internalBase = () =>
    config.ui.internalHost
      ? `${config.ui.internalProtocol}://${config.ui.internalHost}`.replace(/\/+$/, '')
      : `http://${loopbackOf(config.server.listenHost)}:${apiPort()}`;
  const infoPath = config.tus.infoPath.endsWith('/') ? config.tus.infoPath : `${config.tus.infoPath}/`;
  const lister = 'listV2' in parts.loader ? (parts.loader as ConfigLoader & ConfigLister) : undefined;
  return buildUiApp({
    config,
    configs: parts.configs,
    lister,
    api: new HttpUploadApi(internalBase, config.tus.basePath, infoPath),
    apiPort,
    auth: parts.auth,
    log: parts.log,
  });
}
