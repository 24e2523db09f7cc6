import { EnvReader, ConfigError, type Env } from './env.js';
import { parseArn, type AwsArn } from '../aws/arn.js';

export { ConfigError } from './env.js';
export type { AwsArn } from '../aws/arn.js';

/** The whole configuration, read once at start-up. Names follow DEX's environment variables (dex-pipeline.md §1.2). */
export interface Config {
  logger: { debug: boolean; environment: string };
  server: {
    protocol: string;
    hostname: string;
    port: number;
    listenHost: string;
    shutdownTimeoutMs: number;
  };
  tus: {
    basePath: string; // always with leading and trailing slash
    infoPath: string;
    uploadPrefix: string;
    maxSize: number; // 0 = no limit
    expirationSeconds: number; // 0 = off
    behindProxy: boolean;
    networkTimeoutMs: number;
    lockTimeoutMs: number;
    disableDownload: boolean;
    corsAllowOrigin: RegExp;
    fsync: boolean;
  };
  storage: {
    localFolderUploadsTus: string;
    /** Azure Blob upload storage (dex-pipeline.md §1.3–1.4): present when an AZURE_ variable is set; wins over S3. */
    azure?: AzureStorageConfig;
    /** S3 upload storage: present when S3_ENDPOINT or S3_BUCKET_NAME is set. */
    s3?: S3StorageConfig;
  };
  /** REDIS_CONNECTION_STRING: absent → the in-memory locker (one instance); set → the Redis locker (several). */
  locking: { redisUrl?: string };
  manifest: {
    validation: boolean;
    uploadConfigPath: string;
    metricsLabelsFromManifest: string[];
  };
  reports: { localReportsFolder: string };
  events: { localEventsFolder: string; maxRetryCount: number; listenerWorkers: number };
  /** Azure Service Bus blocks: each is present only when one of its variables is non-empty (dex-pipeline.md §1.1). */
  serviceBus: {
    reporter?: ServiceBusSenderConfig;
    publisher?: ServiceBusSenderConfig;
    subscriber?: ServiceBusSubscriberConfig;
  };
  /** AWS SNS/SQS (dex-pipeline.md §2.4, §3.2–3.4); credentials and endpoint overrides come from the standard AWS_* chain. */
  aws: {
    snsReporter?: AwsArn;
    snsPublisher?: AwsArn;
    sqsSubscriber?: SqsSubscriberConfig;
  };
  delivery: { configFile: string };
  ui: {
    port: number | null; // null = disabled
    externalProtocol: string;
    internalProtocol: string;
    /** Unset: the host name the browser reached the UI by, at the API's port. */
    externalHost?: string;
    /** Unset: this process's own API, on loopback at its port. */
    internalHost?: string;
    csrfToken: string;
  };
  oauth: {
    enabled: boolean;
    introspectionUrl?: string;
    issuerUrl?: string;
    requiredScopes: string[];
    audience?: string;
  };
  processingStatusHealthUri?: string;
}

export interface AzureStorageConfig {
  account: string;
  /** Shared key; without it the service principal (tenant, client id, secret) is used. */
  key?: string;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** `https://<account>.blob.core.windows.net` unless AZURE_ENDPOINT is set. */
  endpoint: string;
  /** TUS_AZURE_CONTAINER_NAME: the uploads' container. */
  container: string;
  /** DEX_MANIFEST_CONFIG_CONTAINER_NAME: manifest configs are read from this container instead of UPLOAD_CONFIG_PATH. */
  manifestConfigContainer?: string;
}

export interface S3StorageConfig {
  endpoint: string;
  bucket: string;
  /** AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1 (credentials come from the AWS SDK's default chain). */
  region: string;
  /** S3_PART_SIZE: preferred multipart part size in bytes. */
  partSize: number;
  /** Manifest configs from `<bucket>/<folder>/<key>` instead of UPLOAD_CONFIG_PATH, when the folder is set. */
  manifestConfig?: { bucket: string; folder: string };
}

const MiB = 1024 * 1024;
/** S3's limits: parts of 5 MiB to 5 GiB, at most 10,000 of them, objects of at most 5 TiB. */
export const S3_MIN_PART_SIZE = 5 * MiB;
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;
export const S3_MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;
/** The default part size: whole MiB, large enough for a 5 TiB object in 10,000 parts (525 MiB). */
export const S3_DEFAULT_PART_SIZE = Math.ceil(S3_MAX_OBJECT_SIZE / S3_MAX_PARTS / MiB) * MiB;

export interface ServiceBusSenderConfig {
  connectionString: string;
  /** Queue wins over topic. */
  entity: string;
  kind: 'queue' | 'topic';
}

export interface ServiceBusSubscriberConfig {
  connectionString: string;
  topic: string;
  subscription: string;
  /** SUBSCRIBER_MAX_MESSAGES, 0 or unset → 3. */
  maxMessages: number;
}

export interface SqsSubscriberConfig {
  queue: AwsArn;
  /** SQS_SUBSCRIBER_MAX_MESSAGES, 0 or unset → 3; at most 10 (SQS's limit per receive). */
  maxMessages: number;
}

/**
 * Every variable loadConfig reads, found by running it on an empty environment that records each name asked for
 * (a block's variables are all asked for when its presence is checked). Compose files and .env.example are tested
 * against this list, so it cannot drift from the code.
 */
export function configVariableNames(): string[] {
  const asked = new Set<string>();
  const recording = new Proxy({} as Env, {
    get(_target, name) {
      if (typeof name === 'string') asked.add(name);
      return undefined;
    },
  });
  loadConfig(recording);
  return [...asked].sort();
}

function normalizeBasePath(p: string, name: string): string {
  if (!p.startsWith('/')) throw new ConfigError(`${name}: "${p}" must start with /`);
  if (/[\s?#%]/.test(p)) throw new ConfigError(`${name}: "${p}" must be a plain path`);
  return p.endsWith('/') ? p : `${p}/`;
}

export function loadConfig(env: Env): Config {
  const r = new EnvReader(env);

  let corsAllowOrigin: RegExp;
  const corsText = r.string('TUS_CORS_ALLOW_ORIGIN', '.*');
  try {
    // The pattern must match the whole origin.
    corsAllowOrigin = new RegExp(`^(?:${corsText})$`);
  } catch {
    throw new ConfigError(`TUS_CORS_ALLOW_ORIGIN: "${corsText}" is not a valid regular expression`);
  }

  const uiPortRaw = env['UI_PORT'];
  const uiPort = uiPortRaw !== undefined && uiPortRaw.trim() === '' ? null : r.port('UI_PORT', 8081);

  return {
    logger: { debug: r.bool('LOGGER_DEBUG_ON', false), environment: r.string('ENVIRONMENT', 'DEV') },
    server: {
      protocol: r.string('SERVER_PROTOCOL', 'http'),
      hostname: r.string('SERVER_HOSTNAME', 'localhost'),
      port: r.port('SERVER_PORT', 8080),
      listenHost: r.string('SERVER_LISTEN_HOST', '0.0.0.0'),
      shutdownTimeoutMs: r.int('SERVER_SHUTDOWN_TIMEOUT', 10_000, { min: 0 }),
    },
    tus: {
      basePath: normalizeBasePath(r.string('TUSD_HANDLER_BASE_PATH', '/files/'), 'TUSD_HANDLER_BASE_PATH'),
      infoPath: r.string('TUSD_HANDLER_INFO_PATH', '/info/'),
      uploadPrefix: validPrefix(r.string('TUS_UPLOAD_PREFIX', 'tus-prefix')),
      maxSize: r.int('TUS_MAX_SIZE', 0, { min: 0 }),
      expirationSeconds: r.int('TUS_UPLOAD_EXPIRATION', 0, { min: 0 }),
      behindProxy: r.bool('TUS_BEHIND_PROXY', false),
      networkTimeoutMs: r.int('TUS_NETWORK_TIMEOUT', 60_000, { min: 1 }),
      lockTimeoutMs: r.int('TUS_LOCK_TIMEOUT', 20_000, { min: 1 }),
      disableDownload: r.bool('TUS_DISABLE_DOWNLOAD', true),
      corsAllowOrigin,
      fsync: r.bool('TUS_FSYNC', false),
    },
    storage: { localFolderUploadsTus: r.string('LOCAL_FOLDER_UPLOADS_TUS', './uploads'), ...cloudStorage(r) },
    locking: { redisUrl: redisUrl(r.optional('REDIS_CONNECTION_STRING')) },
    manifest: {
      validation: r.bool('UPLOAD_MANIFEST_VALIDATION', true),
      uploadConfigPath: r.string('UPLOAD_CONFIG_PATH', './upload-configs'),
      metricsLabelsFromManifest: metricLabels(r.list('METRICS_LABELS_FROM_MANIFEST', ['data_stream_id', 'data_stream_route', 'sender_id'])),
    },
    reports: { localReportsFolder: r.string('LOCAL_REPORTS_FOLDER', './uploads/reports') },
    events: {
      localEventsFolder: r.string('LOCAL_EVENTS_FOLDER', './uploads/events'),
      maxRetryCount: r.int('EVENT_MAX_RETRY_COUNT', 3, { min: 0 }),
      listenerWorkers: r.int('LISTENER_WORKERS', 5, { min: 1 }),
    },
    serviceBus: {
      reporter: senderBlock(r, 'REPORTER'),
      publisher: senderBlock(r, 'PUBLISHER'),
      subscriber: subscriberBlock(r),
    },
    aws: {
      snsReporter: topicArn(r.optional('SNS_REPORTER_EVENT_ARN'), 'SNS_REPORTER_EVENT_ARN'),
      snsPublisher: topicArn(r.optional('SNS_PUBLISHER_EVENT_ARN'), 'SNS_PUBLISHER_EVENT_ARN'),
      sqsSubscriber: sqsBlock(r),
    },
    delivery: { configFile: r.string('DEX_DELIVERY_CONFIG_FILE', './configs/local/deliver.yml') },
    ui: {
      port: uiPort,
      externalProtocol: r.string('UI_SERVER_EXTERNAL_PROTOCOL', 'http'),
      internalProtocol: r.string('UI_SERVER_INTERNAL_PROTOCOL', 'http'),
      externalHost: r.optional('UI_SERVER_EXTERNAL_HOST'),
      internalHost: r.optional('UI_SERVER_INTERNAL_HOST'),
      csrfToken: r.string('CSRF_TOKEN', '1qQBJumxRABFBLvaz5PSXBcXLE84viE42x4Aev359DvLSvzjbXSme3whhFkESatW'),
    },
    oauth: oauthBlock(r),
    processingStatusHealthUri: r.optional('PROCESSING_STATUS_HEALTH_URI'),
  };
}

/** Label names of upload_manifest_count: Prometheus' label syntax, no reserved `__` names, no repeats. */
function metricLabels(names: string[]): string[] {
  for (const n of names) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(n) || n.startsWith('__')) {
      throw new ConfigError(`METRICS_LABELS_FROM_MANIFEST: "${n}" is not a Prometheus label name (letters, digits and _, not starting with a digit or __)`);
    }
  }
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated) throw new ConfigError(`METRICS_LABELS_FROM_MANIFEST: "${repeated}" is named twice`);
  return names;
}

function validPrefix(p: string): string {
  if (p.includes('..') || p.startsWith('/') || p.includes('\0')) {
    throw new ConfigError(`TUS_UPLOAD_PREFIX: "${p}" must be a relative folder name without ..`);
  }
  return p;
}

/** OAUTH_*: when enabled, an issuer is required and both URLs must be http(s) (checked here, not at the first request). */
function oauthBlock(r: EnvReader): Config['oauth'] {
  const oauth: Config['oauth'] = {
    enabled: r.bool('OAUTH_AUTH_ENABLED', false),
    introspectionUrl: r.optional('OAUTH_INTROSPECTION_URL'),
    issuerUrl: r.optional('OAUTH_ISSUER_URL'),
    requiredScopes: (r.optional('OAUTH_REQUIRED_SCOPES') ?? '').split(' ').filter(Boolean),
    audience: r.optional('OAUTH_AUDIENCE'),
  };
  if (!oauth.enabled) return oauth;
  if (!oauth.issuerUrl) throw new ConfigError('OAUTH_ISSUER_URL: required when OAUTH_AUTH_ENABLED is true');
  httpUrl('OAUTH_ISSUER_URL', oauth.issuerUrl);
  if (oauth.introspectionUrl) httpUrl('OAUTH_INTROSPECTION_URL', oauth.introspectionUrl);
  return oauth;
}

/** The value is never echoed: the introspection URL may carry client credentials. */
function httpUrl(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name}: not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(`${name}: must be an http:// or https:// URL`);
}

/** A go-redis URL: `redis://[user:pass@]host:port[/db]`, or `rediss://` for TLS. The value is never echoed (it may hold a password). */
function redisUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError('REDIS_CONNECTION_STRING: not a URL (expected redis://[user:password@]host:port[/db] or rediss://…)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`REDIS_CONNECTION_STRING: the scheme must be redis:// or rediss://, not ${url.protocol}//`);
  }
  if (!url.hostname) throw new ConfigError('REDIS_CONNECTION_STRING: the URL names no host');
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) {
    throw new ConfigError('REDIS_CONNECTION_STRING: the path must be a database number (/0, /1 …)');
  }
  return value;
}

/** dex-pipeline.md §1.3–1.4: the Azure block, else the S3 block, else local disk; never both. */
function cloudStorage(r: EnvReader): { azure?: AzureStorageConfig; s3?: S3StorageConfig } {
  const azure = azureBlock(r);
  const s3 = s3Block(r);
  if (azure && s3) {
    throw new ConfigError('AZURE_* and S3_*: cannot load metadata config from multiple locations (set either the Azure or the S3 storage variables)');
  }
  // A setting that only makes sense with its backend would otherwise be ignored in silence.
  const azureOnly = ['TUS_AZURE_CONTAINER_NAME', 'DEX_MANIFEST_CONFIG_CONTAINER_NAME'];
  const s3Only = ['DEX_S3_MANIFEST_CONFIG_FOLDER_NAME', 'DEX_MANIFEST_CONFIG_BUCKET_NAME'];
  for (const name of azure ? [] : azureOnly) {
    if (r.isSet(name)) throw new ConfigError(`${name}: set without the Azure storage variables it belongs to (AZURE_STORAGE_ACCOUNT ...)`);
  }
  for (const name of s3 ? [] : s3Only) {
    if (r.isSet(name)) throw new ConfigError(`${name}: set without the S3 storage variables it belongs to (S3_ENDPOINT, S3_BUCKET_NAME)`);
  }
  return { ...(azure ? { azure } : {}), ...(s3 ? { s3 } : {}) };
}

function azureBlock(r: EnvReader): AzureStorageConfig | undefined {
  if (!blockPresent(r, 'AZURE', ['STORAGE_ACCOUNT', 'STORAGE_KEY', 'TENANT_ID', 'CLIENT_ID', 'CLIENT_SECRET', 'ENDPOINT'])) return undefined;
  const account = r.optional('AZURE_STORAGE_ACCOUNT');
  const key = r.optional('AZURE_STORAGE_KEY');
  const tenantId = r.optional('AZURE_TENANT_ID');
  const clientId = r.optional('AZURE_CLIENT_ID');
  const clientSecret = r.optional('AZURE_CLIENT_SECRET');
  if (!account || (!key && !(tenantId && clientId && clientSecret))) {
    throw new ConfigError(
      'AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY: missing required values for connecting to Azure ' +
        '(the account and either its key or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET)',
    );
  }
  const container = r.optional('TUS_AZURE_CONTAINER_NAME');
  if (!container) throw new ConfigError('TUS_AZURE_CONTAINER_NAME: required with Azure storage (the container of the uploads)');
  const endpoint = (r.optional('AZURE_ENDPOINT') ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/\s]+/.test(endpoint)) throw new ConfigError(`AZURE_ENDPOINT: "${endpoint}" is not an http(s) URL`);
  const manifestConfigContainer = r.optional('DEX_MANIFEST_CONFIG_CONTAINER_NAME');
  return {
    account,
    ...(key ? { key } : { tenantId, clientId, clientSecret }),
    endpoint,
    container,
    ...(manifestConfigContainer ? { manifestConfigContainer } : {}),
  };
}

function s3Block(r: EnvReader): S3StorageConfig | undefined {
  if (!blockPresent(r, 'S3', ['ENDPOINT', 'BUCKET_NAME'])) return undefined;
  const endpoint = r.optional('S3_ENDPOINT');
  const bucket = r.optional('S3_BUCKET_NAME');
  if (!endpoint || !bucket) throw new ConfigError('S3_ENDPOINT, S3_BUCKET_NAME: missing required values for connecting to AWS S3 (both are required)');
  if (!/^https?:\/\/[^/\s]+/.test(endpoint)) throw new ConfigError(`S3_ENDPOINT: "${endpoint}" is not an http(s) URL`);
  const folder = r.optional('DEX_S3_MANIFEST_CONFIG_FOLDER_NAME');
  const configBucket = r.optional('DEX_MANIFEST_CONFIG_BUCKET_NAME');
  if (configBucket && !folder) {
    throw new ConfigError('DEX_MANIFEST_CONFIG_BUCKET_NAME: needs DEX_S3_MANIFEST_CONFIG_FOLDER_NAME (the folder of the configs in that bucket)');
  }
  return {
    endpoint: endpoint.replace(/\/+$/, ''),
    bucket,
    region: r.optional('AWS_REGION') ?? r.optional('AWS_DEFAULT_REGION') ?? 'us-east-1',
    partSize: r.int('S3_PART_SIZE', S3_DEFAULT_PART_SIZE, { min: S3_MIN_PART_SIZE, max: S3_MAX_PART_SIZE }),
    ...(folder ? { manifestConfig: { bucket: configBucket ?? bucket, folder: folder.replace(/^\/+|\/+$/g, '') } } : {}),
  };
}

const blockPresent = (r: EnvReader, prefix: string, names: string[]) => names.some((n) => r.isSet(`${prefix}_${n}`));

/** REPORTER_* / PUBLISHER_*: connection string plus a queue (preferred) or a topic. */
function senderBlock(r: EnvReader, prefix: 'REPORTER' | 'PUBLISHER'): ServiceBusSenderConfig | undefined {
  if (!blockPresent(r, prefix, ['CONNECTION_STRING', 'TOPIC', 'QUEUE', 'SUBSCRIPTION', 'MAX_MESSAGES'])) return undefined;
  const connectionString = r.optional(`${prefix}_CONNECTION_STRING`);
  if (!connectionString) throw new ConfigError(`${prefix}_CONNECTION_STRING: required when any ${prefix}_ variable is set`);
  const queue = r.optional(`${prefix}_QUEUE`);
  const topic = r.optional(`${prefix}_TOPIC`);
  if (!queue && !topic) throw new ConfigError(`${prefix}_QUEUE or ${prefix}_TOPIC: one is required with ${prefix}_CONNECTION_STRING`);
  return { connectionString, entity: (queue ?? topic)!, kind: queue ? 'queue' : 'topic' };
}

/** SUBSCRIBER_*: a topic subscription (SUBSCRIBER_QUEUE is read by the original but unused). */
function subscriberBlock(r: EnvReader): ServiceBusSubscriberConfig | undefined {
  if (!blockPresent(r, 'SUBSCRIBER', ['CONNECTION_STRING', 'TOPIC', 'SUBSCRIPTION', 'MAX_MESSAGES', 'QUEUE'])) return undefined;
  const connectionString = r.optional('SUBSCRIBER_CONNECTION_STRING');
  if (!connectionString) throw new ConfigError('SUBSCRIBER_CONNECTION_STRING: required when any SUBSCRIBER_ variable is set');
  const topic = r.optional('SUBSCRIBER_TOPIC');
  const subscription = r.optional('SUBSCRIBER_SUBSCRIPTION');
  if (!topic || !subscription) throw new ConfigError('SUBSCRIBER_TOPIC and SUBSCRIBER_SUBSCRIPTION: both are required with SUBSCRIBER_CONNECTION_STRING');
  const max = r.int('SUBSCRIBER_MAX_MESSAGES', 0, { min: 0 });
  return { connectionString, topic, subscription, maxMessages: max === 0 ? 3 : max };
}

function topicArn(value: string | undefined, variable: string): AwsArn | undefined {
  return value === undefined ? undefined : parseArn(value, variable, 'sns');
}

/** SQS_*: a queue ARN (SQS_SUBSCRIBER_MAX_MESSAGES alone is an error: it would switch nothing on). */
function sqsBlock(r: EnvReader): SqsSubscriberConfig | undefined {
  if (!blockPresent(r, 'SQS_SUBSCRIBER', ['EVENT_ARN', 'MAX_MESSAGES'])) return undefined;
  const arn = r.optional('SQS_SUBSCRIBER_EVENT_ARN');
  if (!arn) throw new ConfigError('SQS_SUBSCRIBER_EVENT_ARN: required when SQS_SUBSCRIBER_MAX_MESSAGES is set');
  const max = r.int('SQS_SUBSCRIBER_MAX_MESSAGES', 0, { min: 0, max: 10 });
  return { queue: parseArn(arn, 'SQS_SUBSCRIBER_EVENT_ARN', 'sqs'), maxMessages: max === 0 ? 3 : max };
}
