// Configuration: defaults, empty values, Go number/boolean forms, start-up errors of the real binary, -appconf
// dotenv files, and .env.example documenting every variable the config module reads.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dotenv from 'dotenv';
import { ConfigError, configVariableNames, loadConfig, type Config } from '../../internal/config/config.js';
import { parseGoInt } from '../../internal/config/env.js';
import { REPO_ROOT, runToExit, startServer, type RunningServer } from '../helpers/server.js';
import { request, TR } from '../helpers/http.js';

const CONFIG_JS = path.join(REPO_ROOT, 'dist/internal/config/config.js');
const ENV_EXAMPLE = path.join(REPO_ROOT, '.env.example');
const CSRF_DEV = '1qQBJumxRABFBLvaz5PSXBcXLE84viE42x4Aev359DvLSvzjbXSme3whhFkESatW';

/** Every variable of dex-pipeline.md §1.2, decisions.md "Settings beyond DEX's", and SERVER_SHUTDOWN_TIMEOUT. */
const DOCUMENTED = [
  'LOGGER_DEBUG_ON', 'ENVIRONMENT', 'SERVER_PROTOCOL', 'SERVER_HOSTNAME', 'SERVER_PORT', 'TUSD_HANDLER_BASE_PATH',
  'TUSD_HANDLER_INFO_PATH', 'EVENT_MAX_RETRY_COUNT', 'METRICS_LABELS_FROM_MANIFEST', 'TUS_UPLOAD_PREFIX', 'UI_PORT',
  'UI_SERVER_EXTERNAL_PROTOCOL', 'UI_SERVER_INTERNAL_PROTOCOL', 'UI_SERVER_EXTERNAL_HOST', 'UI_SERVER_INTERNAL_HOST',
  'CSRF_TOKEN', 'REDIS_CONNECTION_STRING', 'OAUTH_AUTH_ENABLED', 'OAUTH_INTROSPECTION_URL', 'OAUTH_ISSUER_URL',
  'OAUTH_REQUIRED_SCOPES', 'PROCESSING_STATUS_HEALTH_URI', 'LOCAL_FOLDER_UPLOADS_TUS', 'UPLOAD_CONFIG_PATH',
  'LOCAL_REPORTS_FOLDER', 'LOCAL_EVENTS_FOLDER', 'AZURE_STORAGE_ACCOUNT', 'AZURE_STORAGE_KEY', 'AZURE_TENANT_ID',
  'AZURE_CLIENT_ID', 'AZURE_CLIENT_SECRET', 'AZURE_ENDPOINT', 'TUS_AZURE_CONTAINER_NAME',
  'DEX_MANIFEST_CONFIG_CONTAINER_NAME', 'REPORTER_CONNECTION_STRING', 'REPORTER_TOPIC', 'REPORTER_QUEUE',
  'REPORTER_SUBSCRIPTION', 'REPORTER_MAX_MESSAGES', 'PUBLISHER_CONNECTION_STRING', 'PUBLISHER_TOPIC', 'PUBLISHER_QUEUE',
  'PUBLISHER_SUBSCRIPTION', 'PUBLISHER_MAX_MESSAGES', 'SUBSCRIBER_CONNECTION_STRING', 'SUBSCRIBER_TOPIC',
  'SUBSCRIBER_SUBSCRIPTION', 'SUBSCRIBER_MAX_MESSAGES', 'SUBSCRIBER_QUEUE', 'SNS_REPORTER_EVENT_ARN',
  'SNS_PUBLISHER_EVENT_ARN', 'SQS_SUBSCRIBER_EVENT_ARN', 'SQS_SUBSCRIBER_MAX_MESSAGES', 'S3_ENDPOINT', 'S3_BUCKET_NAME',
  'DEX_MANIFEST_CONFIG_BUCKET_NAME', 'DEX_S3_MANIFEST_CONFIG_FOLDER_NAME', 'DEX_DELIVERY_CONFIG_FILE', 'LISTENER_WORKERS',
  // decisions.md
  'SERVER_LISTEN_HOST', 'TUS_MAX_SIZE', 'TUS_UPLOAD_EXPIRATION', 'TUS_BEHIND_PROXY', 'TUS_NETWORK_TIMEOUT',
  'TUS_LOCK_TIMEOUT', 'TUS_DISABLE_DOWNLOAD', 'TUS_CORS_ALLOW_ORIGIN', 'TUS_FSYNC', 'UPLOAD_MANIFEST_VALIDATION',
  'OAUTH_AUDIENCE', 'SERVER_SHUTDOWN_TIMEOUT',
];

/** Names the config module reads (asked of it), and the prefixes (ending in `_`) of its not-yet-supported groups. */
async function namesReadByConfig(): Promise<{ exact: string[]; prefixes: string[] }> {
  const src = await readFile(CONFIG_JS, 'utf8');
  const prefixes = [...src.matchAll(/\bprefix:\s*'([A-Z][A-Z0-9_]*_)'/g)].map((m) => m[1]!);
  return { exact: configVariableNames(), prefixes };
}

/** Every variable named in .env.example, active or commented out, with its line and the comment above it. */
async function envExample(): Promise<Map<string, { active: boolean; line: string; comment: string }>> {
  const lines = (await readFile(ENV_EXAMPLE, 'utf8')).split('\n');
  const out = new Map<string, { active: boolean; line: string; comment: string }>();
  for (let i = 0; i < lines.length; i++) {
    const m = /^(#\s*)?(?:export\s+)?([A-Z][A-Z0-9_]*)=/.exec(lines[i]!);
    if (!m) continue;
    let j = i - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    out.set(m[2]!, { active: m[1] === undefined, line: lines[i]!, comment: j >= 0 ? lines[j]! : '' });
  }
  return out;
}

const throwsNaming = (env: Record<string, string>, pattern: RegExp) =>
  assert.throws(() => loadConfig(env), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });

describe('config: defaults (loadConfig({}))', () => {
  it('has every default of dex-pipeline.md §1.2 and decisions.md', () => {
    const c = loadConfig({});
    const { corsAllowOrigin, ...tus } = c.tus;
    assert.deepEqual(c.logger, { debug: false, environment: 'DEV' });
    assert.deepEqual(c.server, { protocol: 'http', hostname: 'localhost', port: 8080, listenHost: '0.0.0.0', shutdownTimeoutMs: 10_000 });
    assert.deepEqual(tus, {
      basePath: '/files/',
      infoPath: '/info/',
      uploadPrefix: 'tus-prefix',
      maxSize: 0,
      expirationSeconds: 0,
      behindProxy: false,
      networkTimeoutMs: 60_000,
      lockTimeoutMs: 20_000,
      disableDownload: true,
      fsync: false,
    });
    // `.*` must match any whole origin.
    for (const o of ['http://localhost:3000', 'https://app.example', 'null', '']) assert.ok(corsAllowOrigin.test(o), o);
    assert.deepEqual(c.storage, { localFolderUploadsTus: './uploads' });
    assert.equal(c.manifest.uploadConfigPath, './upload-configs');
    assert.deepEqual(c.manifest.metricsLabelsFromManifest, ['data_stream_id', 'data_stream_route', 'sender_id']);
    assert.deepEqual(c.reports, { localReportsFolder: './uploads/reports' });
    assert.deepEqual(c.events, { localEventsFolder: './uploads/events', maxRetryCount: 3, listenerWorkers: 5 });
    assert.deepEqual(c.delivery, { configFile: './configs/local/deliver.yml' });
    assert.deepEqual(c.ui, {
      port: 8081,
      externalProtocol: 'http',
      internalProtocol: 'http',
      // Unset: derived at run time (the host the browser used, the API's own port), which is localhost:8080 for a
      // browser on localhost with the default SERVER_PORT, DEX's default.
      externalHost: undefined,
      internalHost: undefined,
      csrfToken: CSRF_DEV,
    });
    assert.equal(c.oauth.enabled, false);
    assert.equal(c.oauth.introspectionUrl, undefined);
    assert.equal(c.oauth.issuerUrl, undefined);
    assert.equal(c.oauth.audience, undefined);
    assert.deepEqual(c.oauth.requiredScopes, []);
    assert.equal(c.processingStatusHealthUri, undefined);
  });

  it('UPLOAD_MANIFEST_VALIDATION defaults to true; false turns it off; a bad value names the variable', () => {
    assert.equal(loadConfig({}).manifest.validation, true);
    assert.equal(loadConfig({ UPLOAD_MANIFEST_VALIDATION: 'true' }).manifest.validation, true);
    assert.equal(loadConfig({ UPLOAD_MANIFEST_VALIDATION: '' }).manifest.validation, true);
    assert.equal(loadConfig({ UPLOAD_MANIFEST_VALIDATION: 'false' }).manifest.validation, false);
    throwsNaming({ UPLOAD_MANIFEST_VALIDATION: 'maybe' }, /UPLOAD_MANIFEST_VALIDATION/);
  });

  it('reads the non-default values it is given', () => {
    const c = loadConfig({
      LOGGER_DEBUG_ON: 'true',
      ENVIRONMENT: 'PROD',
      SERVER_PROTOCOL: 'https',
      SERVER_HOSTNAME: 'up.example',
      SERVER_PORT: '9000',
      SERVER_LISTEN_HOST: '127.0.0.1',
      SERVER_SHUTDOWN_TIMEOUT: '2500',
      TUSD_HANDLER_BASE_PATH: '/up',
      TUSD_HANDLER_INFO_PATH: '/status/',
      TUS_UPLOAD_PREFIX: 'raw',
      TUS_MAX_SIZE: '1048576',
      TUS_UPLOAD_EXPIRATION: '3600',
      TUS_BEHIND_PROXY: 'true',
      TUS_NETWORK_TIMEOUT: '1000',
      TUS_LOCK_TIMEOUT: '500',
      TUS_DISABLE_DOWNLOAD: 'false',
      TUS_CORS_ALLOW_ORIGIN: 'https://app\\.example',
      TUS_FSYNC: 'true',
      LOCAL_FOLDER_UPLOADS_TUS: '/data/up',
      UPLOAD_CONFIG_PATH: '/data/configs',
      METRICS_LABELS_FROM_MANIFEST: ' a , b ,, c ',
      LOCAL_REPORTS_FOLDER: '/data/reports',
      LOCAL_EVENTS_FOLDER: '/data/events',
      EVENT_MAX_RETRY_COUNT: '0',
      LISTENER_WORKERS: '2',
      DEX_DELIVERY_CONFIG_FILE: '/data/deliver.yml',
      UI_PORT: '9001',
      CSRF_TOKEN: 'secret',
      OAUTH_AUTH_ENABLED: 'false',
      OAUTH_ISSUER_URL: 'https://issuer.example',
      OAUTH_REQUIRED_SCOPES: 'a  b c',
      OAUTH_AUDIENCE: 'dex',
      PROCESSING_STATUS_HEALTH_URI: 'http://ps/health',
    });
    assert.equal(c.logger.debug, true);
    assert.equal(c.logger.environment, 'PROD');
    assert.deepEqual(c.server, { protocol: 'https', hostname: 'up.example', port: 9000, listenHost: '127.0.0.1', shutdownTimeoutMs: 2500 });
    assert.equal(c.tus.basePath, '/up/', 'a trailing slash is added');
    assert.equal(c.tus.infoPath, '/status/');
    assert.equal(c.tus.uploadPrefix, 'raw');
    assert.equal(c.tus.maxSize, 1048576);
    assert.equal(c.tus.expirationSeconds, 3600);
    assert.equal(c.tus.behindProxy, true);
    assert.equal(c.tus.networkTimeoutMs, 1000);
    assert.equal(c.tus.lockTimeoutMs, 500);
    assert.equal(c.tus.disableDownload, false);
    assert.equal(c.tus.fsync, true);
    assert.ok(c.tus.corsAllowOrigin.test('https://app.example'));
    assert.ok(!c.tus.corsAllowOrigin.test('https://app.example.evil'), 'the pattern must match the whole origin');
    assert.ok(!c.tus.corsAllowOrigin.test('https://appXexample'));
    assert.equal(c.storage.localFolderUploadsTus, '/data/up');
    assert.equal(c.manifest.uploadConfigPath, '/data/configs');
    assert.deepEqual(c.manifest.metricsLabelsFromManifest, ['a', 'b', 'c']);
    assert.deepEqual(c.reports, { localReportsFolder: '/data/reports' });
    assert.deepEqual(c.events, { localEventsFolder: '/data/events', maxRetryCount: 0, listenerWorkers: 2 });
    assert.equal(c.delivery.configFile, '/data/deliver.yml');
    assert.equal(c.ui.port, 9001);
    assert.equal(c.ui.csrfToken, 'secret');
    assert.equal(c.oauth.issuerUrl, 'https://issuer.example');
    assert.deepEqual(c.oauth.requiredScopes, ['a', 'b', 'c']);
    assert.equal(c.oauth.audience, 'dex');
    assert.equal(c.processingStatusHealthUri, 'http://ps/health');
  });
});

describe('config: empty values', () => {
  let names: string[];
  before(async () => {
    const read = await namesReadByConfig();
    // Prefix groups are represented by their documented members.
    names = [...new Set([...read.exact, ...DOCUMENTED])];
  });

  it('an empty (or blank) value means the default for every variable, except UI_PORT= which disables the UI', () => {
    const defaults = loadConfig({});
    for (const blank of ['', '   ', '\t']) {
      const env: Record<string, string> = {};
      for (const n of names) env[n] = blank;
      const c = loadConfig(env);
      assert.equal(c.ui.port, null, `UI_PORT=${JSON.stringify(blank)} disables the UI`);
      assert.deepEqual({ ...c, ui: { ...c.ui, port: defaults.ui.port } }, defaults, `all variables set to ${JSON.stringify(blank)}`);
    }
    assert.ok(names.length >= 60, `${names.length} names`);
  });

  it('each variable alone set to empty gives exactly the defaults', () => {
    const defaults = loadConfig({});
    for (const n of names) {
      if (n === 'UI_PORT') continue;
      assert.deepEqual(loadConfig({ [n]: '' }), defaults, n);
    }
    assert.equal(loadConfig({ UI_PORT: '' }).ui.port, null);
    assert.equal(loadConfig({ UI_PORT: '8082' }).ui.port, 8082);
  });
});

describe('config: Go integer forms and booleans', () => {
  it('integers accept Go ParseInt(base 0) forms', () => {
    for (const v of ['8080', '0x1F90', '0X1f90', '0o17620', '0O17620', '017620', '0b1111110010000', '0B1111110010000', '8_080', '0x_1F_90', '+8080']) {
      assert.equal(loadConfig({ SERVER_PORT: v }).server.port, 8080, v);
    }
    assert.equal(loadConfig({ TUS_MAX_SIZE: '1_000_000' }).tus.maxSize, 1_000_000);
    assert.equal(loadConfig({ TUS_MAX_SIZE: ' 42 ' }).tus.maxSize, 42, 'surrounding blanks are ignored');
  });

  it('a malformed or out-of-range integer is an error naming the variable', () => {
    for (const v of ['abc', '80 80', '8080.0', '8e3', '0x', '08', '0b2', '1__0', '_1', '1_', '0x1G', 'NaN', '８０８０']) {
      throwsNaming({ SERVER_PORT: v }, /SERVER_PORT/);
    }
    throwsNaming({ SERVER_PORT: '65536' }, /SERVER_PORT/);
    throwsNaming({ SERVER_PORT: '-1' }, /SERVER_PORT/);
    throwsNaming({ TUS_MAX_SIZE: '-1' }, /TUS_MAX_SIZE/);
    throwsNaming({ TUS_MAX_SIZE: '99999999999999999999' }, /TUS_MAX_SIZE/);
    throwsNaming({ TUS_LOCK_TIMEOUT: '0' }, /TUS_LOCK_TIMEOUT/);
    throwsNaming({ LISTENER_WORKERS: '0x' }, /LISTENER_WORKERS/);
    throwsNaming({ UI_PORT: 'none' }, /UI_PORT/);
  });

  it('booleans accept Go ParseBool forms', () => {
    for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(loadConfig({ TUS_BEHIND_PROXY: v }).tus.behindProxy, true, v);
    for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(loadConfig({ TUS_DISABLE_DOWNLOAD: v }).tus.disableDownload, false, v);
    for (const v of ['maybe', 'yes', 'no', 'on', 'off', '2', 'tRuE', 'fAlse', 'y']) throwsNaming({ TUS_BEHIND_PROXY: v }, /TUS_BEHIND_PROXY/);
    throwsNaming({ LOGGER_DEBUG_ON: 'INFO' }, /LOGGER_DEBUG_ON/);
  });

  it('other invalid values are errors naming the variable', () => {
    throwsNaming({ TUSD_HANDLER_BASE_PATH: 'files/' }, /TUSD_HANDLER_BASE_PATH/);
    throwsNaming({ TUSD_HANDLER_BASE_PATH: '/files?x' }, /TUSD_HANDLER_BASE_PATH/);
    throwsNaming({ TUS_CORS_ALLOW_ORIGIN: '(' }, /TUS_CORS_ALLOW_ORIGIN/);
    throwsNaming({ TUS_UPLOAD_PREFIX: '../escape' }, /TUS_UPLOAD_PREFIX/);
    throwsNaming({ TUS_UPLOAD_PREFIX: '/abs' }, /TUS_UPLOAD_PREFIX/);
    throwsNaming({ METRICS_LABELS_FROM_MANIFEST: 'data-stream-id' }, /METRICS_LABELS_FROM_MANIFEST: "data-stream-id" is not a Prometheus label name/);
    throwsNaming({ METRICS_LABELS_FROM_MANIFEST: 'sender_id,__name__' }, /METRICS_LABELS_FROM_MANIFEST: "__name__"/);
    throwsNaming({ METRICS_LABELS_FROM_MANIFEST: 'sender_id, sender_id' }, /METRICS_LABELS_FROM_MANIFEST: "sender_id" is named twice/);
  });

  it('Service Bus blocks: present only when a variable is set; queue wins over topic; the subscriber needs topic and subscription', () => {
    assert.deepEqual(loadConfig({}).serviceBus, { reporter: undefined, publisher: undefined, subscriber: undefined });
    const cs = 'Endpoint=sb://127.0.0.1:5672/;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true';
    assert.deepEqual(loadConfig({ REPORTER_CONNECTION_STRING: cs, REPORTER_TOPIC: 't', REPORTER_QUEUE: 'q' }).serviceBus.reporter, {
      connectionString: cs,
      entity: 'q',
      kind: 'queue',
    });
    assert.deepEqual(loadConfig({ PUBLISHER_CONNECTION_STRING: cs, PUBLISHER_TOPIC: 't' }).serviceBus.publisher, { connectionString: cs, entity: 't', kind: 'topic' });
    assert.deepEqual(loadConfig({ SUBSCRIBER_CONNECTION_STRING: cs, SUBSCRIBER_TOPIC: 't', SUBSCRIBER_SUBSCRIPTION: 's' }).serviceBus.subscriber, {
      connectionString: cs,
      topic: 't',
      subscription: 's',
      maxMessages: 3,
    });
    assert.equal(loadConfig({ SUBSCRIBER_CONNECTION_STRING: cs, SUBSCRIBER_TOPIC: 't', SUBSCRIBER_SUBSCRIPTION: 's', SUBSCRIBER_MAX_MESSAGES: '10' }).serviceBus.subscriber?.maxMessages, 10);
    throwsNaming({ REPORTER_QUEUE: 'q' }, /REPORTER_CONNECTION_STRING/);
    throwsNaming({ PUBLISHER_CONNECTION_STRING: cs }, /PUBLISHER_QUEUE or PUBLISHER_TOPIC/);
    throwsNaming({ SUBSCRIBER_CONNECTION_STRING: cs, SUBSCRIBER_TOPIC: 't' }, /SUBSCRIBER_SUBSCRIPTION/);
    throwsNaming({ SUBSCRIBER_CONNECTION_STRING: cs, SUBSCRIBER_TOPIC: 't', SUBSCRIBER_SUBSCRIPTION: 's', SUBSCRIBER_MAX_MESSAGES: 'many' }, /SUBSCRIBER_MAX_MESSAGES/);
  });

  it('upload storage: Azure > S3 > local, with the errors of dex-pipeline.md §1.3', () => {
    assert.equal(loadConfig({}).storage.azure, undefined);
    assert.equal(loadConfig({}).storage.s3, undefined);
    const azure = { AZURE_STORAGE_ACCOUNT: 'acct', AZURE_STORAGE_KEY: 'k3y', TUS_AZURE_CONTAINER_NAME: 'uploads' };
    assert.deepEqual(loadConfig(azure).storage.azure, { account: 'acct', key: 'k3y', endpoint: 'https://acct.blob.core.windows.net', container: 'uploads' });
    assert.deepEqual(
      loadConfig({ ...azure, AZURE_ENDPOINT: 'http://127.0.0.1:10000/acct/', DEX_MANIFEST_CONFIG_CONTAINER_NAME: 'configs' }).storage.azure,
      { account: 'acct', key: 'k3y', endpoint: 'http://127.0.0.1:10000/acct', container: 'uploads', manifestConfigContainer: 'configs' },
    );
    const principal = { AZURE_STORAGE_ACCOUNT: 'acct', AZURE_TENANT_ID: 't', AZURE_CLIENT_ID: 'c', AZURE_CLIENT_SECRET: 's', TUS_AZURE_CONTAINER_NAME: 'u' };
    assert.deepEqual(loadConfig(principal).storage.azure, {
      account: 'acct', tenantId: 't', clientId: 'c', clientSecret: 's', endpoint: 'https://acct.blob.core.windows.net', container: 'u',
    });
    for (const missing of <Record<string, string>[]>[{ AZURE_STORAGE_KEY: 'k' }, { AZURE_STORAGE_ACCOUNT: 'a' }, { AZURE_ENDPOINT: 'http://x' }, { ...principal, AZURE_CLIENT_SECRET: '' }]) {
      throwsNaming({ TUS_AZURE_CONTAINER_NAME: 'u', ...missing }, /missing required values for connecting to Azure/);
    }
    throwsNaming({ ...azure, TUS_AZURE_CONTAINER_NAME: '' }, /TUS_AZURE_CONTAINER_NAME: required/);
    throwsNaming({ ...azure, AZURE_ENDPOINT: 'ftp://x' }, /AZURE_ENDPOINT/);

    const s3 = { S3_ENDPOINT: 'http://127.0.0.1:9000/', S3_BUCKET_NAME: 'uploads' };
    assert.deepEqual(loadConfig(s3).storage.s3, { endpoint: 'http://127.0.0.1:9000', bucket: 'uploads', region: 'us-east-1', partSize: 525 * 1024 * 1024 });
    assert.ok(525 * 1024 * 1024 * 10_000 >= 5 * 2 ** 40, 'the default part size fits 5 TiB in 10,000 parts');
    const s3c = loadConfig({ ...s3, AWS_DEFAULT_REGION: 'eu-west-1', S3_PART_SIZE: String(8 * 1024 * 1024), DEX_S3_MANIFEST_CONFIG_FOLDER_NAME: '/configs/' }).storage.s3;
    assert.deepEqual(s3c, { endpoint: 'http://127.0.0.1:9000', bucket: 'uploads', region: 'eu-west-1', partSize: 8 * 1024 * 1024, manifestConfig: { bucket: 'uploads', folder: 'configs' } });
    assert.equal(loadConfig({ ...s3, AWS_REGION: 'us-west-2', AWS_DEFAULT_REGION: 'eu-west-1' }).storage.s3?.region, 'us-west-2');
    assert.deepEqual(loadConfig({ ...s3, DEX_S3_MANIFEST_CONFIG_FOLDER_NAME: 'c', DEX_MANIFEST_CONFIG_BUCKET_NAME: 'other' }).storage.s3?.manifestConfig, { bucket: 'other', folder: 'c' });
    throwsNaming({ S3_ENDPOINT: 'http://x' }, /missing required values for connecting to AWS S3/);
    throwsNaming({ S3_BUCKET_NAME: 'b' }, /missing required values for connecting to AWS S3/);
    throwsNaming({ ...s3, S3_PART_SIZE: String(5 * 1024 * 1024 - 1) }, /S3_PART_SIZE.*minimum/);
    throwsNaming({ ...s3, S3_PART_SIZE: String(6 * 1024 ** 3) }, /S3_PART_SIZE.*maximum/);
    throwsNaming({ ...s3, DEX_MANIFEST_CONFIG_BUCKET_NAME: 'other' }, /DEX_MANIFEST_CONFIG_BUCKET_NAME: needs DEX_S3_MANIFEST_CONFIG_FOLDER_NAME/);
    throwsNaming({ ...azure, ...s3 }, /cannot load metadata config from multiple locations/);
    // A setting of a backend that is not configured is an error, not silently ignored.
    for (const n of ['TUS_AZURE_CONTAINER_NAME', 'DEX_MANIFEST_CONFIG_CONTAINER_NAME']) throwsNaming({ [n]: 'x' }, new RegExp(`${n}: set without the Azure`));
    for (const n of ['DEX_S3_MANIFEST_CONFIG_FOLDER_NAME', 'DEX_MANIFEST_CONFIG_BUCKET_NAME']) throwsNaming({ [n]: 'x' }, new RegExp(`${n}: set without the S3`));
    throwsNaming({ ...s3, DEX_MANIFEST_CONFIG_CONTAINER_NAME: 'x' }, /DEX_MANIFEST_CONFIG_CONTAINER_NAME: set without the Azure/);
  });

  it('every feature is built: no variable is refused as "not yet supported"', () => {
    for (const n of DOCUMENTED) {
      try {
        loadConfig({ [n]: 'x' });
      } catch (err) {
        // Values may be invalid for the variable (`x` is no port); they are never refused as a missing feature.
        assert.ok(err instanceof ConfigError && !/not yet supported/.test(err.message), `${n}: ${(err as Error).message}`);
      }
    }
  });

  it('OAUTH_AUTH_ENABLED=true needs an http(s) OAUTH_ISSUER_URL; the introspection URL must be http(s) and is never echoed', () => {
    const issuer = 'https://login.example/realms/dex';
    for (const on of ['true', 'T', '1']) throwsNaming({ OAUTH_AUTH_ENABLED: on }, /^OAUTH_ISSUER_URL: required when OAUTH_AUTH_ENABLED is true$/);
    throwsNaming({ OAUTH_AUTH_ENABLED: 'true', OAUTH_ISSUER_URL: 'login.example' }, /^OAUTH_ISSUER_URL: not a valid URL$/);
    throwsNaming({ OAUTH_AUTH_ENABLED: 'true', OAUTH_ISSUER_URL: 'ftp://login.example' }, /^OAUTH_ISSUER_URL: must be an http/);
    throwsNaming({ OAUTH_AUTH_ENABLED: 'true', OAUTH_ISSUER_URL: issuer, OAUTH_INTROSPECTION_URL: 'ldap://client:s3cret@x' }, /^OAUTH_INTROSPECTION_URL: must be an http:\/\/ or https:\/\/ URL$/);
    for (const bad of ['client:s3cret', 'https://client:s3cret@exa mple', 'ftp://client:s3cret@x']) {
      throwsNaming({ OAUTH_AUTH_ENABLED: 'true', OAUTH_ISSUER_URL: issuer, OAUTH_INTROSPECTION_URL: bad }, /^OAUTH_INTROSPECTION_URL: (?:(?!s3cret).)*$/);
    }
    const c = loadConfig({
      OAUTH_AUTH_ENABLED: 'true',
      OAUTH_ISSUER_URL: issuer,
      OAUTH_INTROSPECTION_URL: 'https://client:s3cret@login.example/introspect',
      OAUTH_REQUIRED_SCOPES: 'dex:upload dex:info',
      OAUTH_AUDIENCE: 'dex-upload',
    });
    assert.deepEqual(c.oauth, {
      enabled: true,
      issuerUrl: issuer,
      introspectionUrl: 'https://client:s3cret@login.example/introspect',
      requiredScopes: ['dex:upload', 'dex:info'],
      audience: 'dex-upload',
    });
    // Off: the other OAUTH_* values are read but not checked (nothing uses them).
    assert.equal(loadConfig({ OAUTH_AUTH_ENABLED: 'false', OAUTH_ISSUER_URL: 'not a url' }).oauth.enabled, false);
    throwsNaming({ OAUTH_AUTH_ENABLED: 'yes' }, /OAUTH_AUTH_ENABLED/);
  });
});

describe('config: REDIS_CONNECTION_STRING', () => {
  it('redis:// and rediss:// URLs select the Redis locker; anything else stops the start without echoing the value', () => {
    assert.equal(loadConfig({}).locking.redisUrl, undefined);
    assert.equal(loadConfig({ REDIS_CONNECTION_STRING: '' }).locking.redisUrl, undefined);
    for (const url of ['redis://localhost:6379', 'rediss://user:secret@cache.example:6380/2', 'redis://:pw@10.0.0.1:6379/0']) {
      assert.equal(loadConfig({ REDIS_CONNECTION_STRING: url }).locking.redisUrl, url);
    }
    for (const [bad, why] of [
      ['localhost:6379', /scheme must be redis/],
      ['http://h:1', /scheme must be redis/],
      ['not a url', /not a URL/],
      ['redis://h:1/db', /database number/],
      ['redis://:hunter2@h:1/x', /database number/],
    ] as const) {
      assert.throws(() => loadConfig({ REDIS_CONNECTION_STRING: bad }), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^REDIS_CONNECTION_STRING: /);
        assert.match(err.message, why);
        assert.doesNotMatch(err.message, /hunter2/, 'the password is never printed');
        return true;
      });
    }
  });
});

describe('config: parseGoInt', () => {
  it('parses Go base-0 integer literals', () => {
    const table: Array<[string, number | undefined]> = [
      ['0', 0], ['7', 7], ['-7', -7], ['+7', 7], ['42', 42], ['0x1F90', 8080], ['0X1f90', 8080], ['-0x10', -16],
      ['0o17', 15], ['0O17', 15], ['017', 15], ['0_17', 15], ['0b101', 5], ['0B101', 5], ['1_000', 1000],
      ['0x_ff', 255], ['0b_1_0', 2], ['9007199254740991', Number.MAX_SAFE_INTEGER], ['00', 0],
      ['', undefined], [' ', undefined], ['08', undefined], ['09', undefined], ['0x', undefined], ['0b', undefined],
      ['0b2', undefined], ['0o8', undefined], ['1.5', undefined], ['1e3', undefined], ['abc', undefined], ['--1', undefined],
      ['+-1', undefined], ['1_', undefined], ['_1', undefined], ['1__0', undefined], ['0x1G', undefined], [' 1', undefined],
      ['9007199254740993', undefined], ['99999999999999999999', undefined], ['١٢', undefined], ['Infinity', undefined],
      ['NaN', undefined], ['1_a', undefined],
    ];
    for (const [v, want] of table) assert.equal(parseGoInt(v), want, JSON.stringify(v));
  });
});

describe('config: the real binary', () => {
  it('a non-numeric SERVER_PORT exits 1 naming the variable', async () => {
    const r = await runToExit({ SERVER_PORT: 'eighty' });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /SERVER_PORT/);
  });

  it('an unknown boolean exits 1 naming the variable', async () => {
    const r = await runToExit({ TUS_BEHIND_PROXY: 'maybe' });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /TUS_BEHIND_PROXY/);
  });

  it('-appconf naming a missing file exits 1 naming the file', async () => {
    const missing = path.join(tmpdir(), 'dex-no-such-dir', 'missing-settings.env');
    for (const args of [['-appconf', missing], [`--appconf=${missing}`]]) {
      const r = await runToExit({}, args);
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, /missing-settings\.env/);
    }
    const r = await runToExit({}, ['-appconf']);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /appconf/);
  });

  it('a port already in use exits 1 with the reason (after stopping the I/O threads it had started)', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const r = await runToExit({ SERVER_PORT: String(port) });
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, /"msg":"start-up failed".*EADDRINUSE/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('an unknown command-line argument exits 1', async () => {
    const r = await runToExit({}, ['--port=9']);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /--port=9/);
  });

  it('an incomplete S3 or Azure storage block exits 1 with the message of dex-pipeline.md §1.3', async () => {
    const s3 = await runToExit({ S3_ENDPOINT: 'http://127.0.0.1:1' });
    assert.equal(s3.code, 1, s3.output);
    assert.match(s3.output, /missing required values for connecting to AWS S3/);
    const azure = await runToExit({ AZURE_STORAGE_ACCOUNT: 'acct', TUS_AZURE_CONTAINER_NAME: 'u' });
    assert.equal(azure.code, 1, azure.output);
    assert.match(azure.output, /missing required values for connecting to Azure/);
    assert.ok(!azure.output.includes('k3y'));
  });
});

describe('config: OAuth at start-up (the real binary)', () => {
  it('OAUTH_AUTH_ENABLED=true without OAUTH_ISSUER_URL exits 1 with a clear message', async () => {
    const r = await runToExit({ OAUTH_AUTH_ENABLED: 'true' });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /configuration error: OAUTH_ISSUER_URL: required when OAUTH_AUTH_ENABLED is true/);
  });

  it('a bad OAUTH_INTROSPECTION_URL exits 1 without printing its credentials', async () => {
    const r = await runToExit({ OAUTH_AUTH_ENABLED: 'true', OAUTH_ISSUER_URL: 'http://127.0.0.1:9/', OAUTH_INTROSPECTION_URL: 'ftp://client:s3cret-value@x/y' });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /OAUTH_INTROSPECTION_URL: must be an http/);
    assert.ok(!r.output.includes('s3cret-value'), r.output);
  });
});

describe('config: -appconf dotenv files', () => {
  let dir: string;
  const servers: RunningServer[] = [];
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dex-appconf-'));
    await writeFile(path.join(dir, 'simple.env'), '# settings for the test\nTUSD_HANDLER_BASE_PATH=/up/\n');
    await writeFile(
      path.join(dir, 'layered.env'),
      [
        '# comments and export prefixes are fine',
        'export PART=up2',
        'TUSD_HANDLER_BASE_PATH=/${PART}/',
        'TUS_UPLOAD_EXPIRATION=$EXPIRY_FROM_ENV',
        'TUS_CORS_ALLOW_ORIGIN="https://${CORS_HOST}"',
        'TUS_MAX_SIZE=999 # already set in the environment: not overridden',
        'ENVIRONMENT=from-file',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    for (const s of servers) await s.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = async (opts: Parameters<typeof startServer>[0]) => {
    const s = await startServer(opts);
    servers.push(s);
    return s;
  };

  for (const form of ['-appconf FILE', '--appconf=FILE', '-appconf=FILE', '--appconf FILE']) {
    it(`${form} loads the dotenv file`, async () => {
      const file = path.join(dir, 'simple.env');
      const args = form.includes('=') ? [form.replace('FILE', file)] : [form.split(' ')[0]!, file];
      const s = await start({ args });
      const o = await request({ method: 'OPTIONS', url: `${s.url}/up/` });
      assert.equal(o.status, 200);
      assert.equal(o.headers['tus-version'], '1.0.0');
      const c = await request({ method: 'POST', url: `${s.url}/up/`, headers: { ...TR, 'Upload-Length': '1' } });
      assert.equal(c.status, 201);
      assert.match(String(c.headers.location), /\/up\/[0-9a-f-]{36}$/);
      assert.equal((await request({ method: 'OPTIONS', url: `${s.url}/files/` })).status, 404, 'the default base path is not served');
      await s.stop();
    });
  }

  it('a relative -appconf path resolves against the working directory', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'dex-appconf-rel-'));
    try {
      await writeFile(path.join(work, 'settings.env'), 'TUSD_HANDLER_BASE_PATH=/rel/\n');
      const s = await startServer({ dir: work, args: ['-appconf', 'settings.env'] });
      try {
        assert.equal((await request({ method: 'OPTIONS', url: `${s.url}/rel/` })).status, 200);
      } finally {
        await s.cleanup();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('expands $VAR / ${VAR} and never overrides a variable already in the environment', async () => {
    const s = await start({
      args: ['-appconf', path.join(dir, 'layered.env')],
      env: { EXPIRY_FROM_ENV: '3600', CORS_HOST: 'app.example', TUS_MAX_SIZE: '4242', ENVIRONMENT: 'from-env' },
    });
    const o = await request({ method: 'OPTIONS', url: `${s.url}/up2/` });
    assert.equal(o.status, 200, '${PART} expanded from the file itself');
    assert.match(String(o.headers['tus-extension']), /(^|,)expiration(,|$)/, '$EXPIRY_FROM_ENV expanded from the environment');
    assert.equal(o.headers['tus-max-size'], '4242', 'the environment wins over the file');
    const ok = await request({ method: 'OPTIONS', url: `${s.url}/up2/`, headers: { Origin: 'https://app.example' } });
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example', 'double-quoted value expanded');
    const refused = await request({ method: 'OPTIONS', url: `${s.url}/up2/`, headers: { Origin: 'https://other.example' } });
    assert.equal(refused.status, 403);
    const created = await request({ method: 'POST', url: `${s.url}/up2/`, headers: { ...TR, 'Upload-Length': '1' } });
    assert.equal(created.status, 201);
    assert.ok(created.headers['upload-expires'], 'expiration is on');
    const record = s
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { app_info?: { Env?: string } })
      .find((r) => r.app_info);
    assert.equal(record?.app_info?.Env, 'from-env');
    await s.stop();
  });

  it('with no settings at all the server starts, creates its folders and /health is UP', async () => {
    // Only what the harness needs (a free loopback port, no UI) is set.
    const s = await start({});
    const h = await request({ method: 'GET', url: `${s.url}/health` });
    assert.equal(h.status, 200);
    const body = JSON.parse(h.body) as { status: string; services: Array<{ status: string }> | null };
    assert.equal(body.status, 'UP');
    for (const svc of body.services ?? []) assert.equal(svc.status, 'UP');
    assert.ok((await stat(s.storeDir)).isDirectory(), 'uploads/tus-prefix exists before any upload');
    assert.equal((await request({ method: 'OPTIONS', url: `${s.url}/files/` })).status, 200);
    await s.stop();
  });

  it('.env.example works as an -appconf file', async () => {
    const s = await start({ args: ['-appconf', ENV_EXAMPLE] });
    const o = await request({ method: 'OPTIONS', url: `${s.url}/files/` });
    assert.equal(o.status, 200);
    assert.equal(o.headers['tus-max-size'], undefined, 'TUS_MAX_SIZE=0 means no limit');
    assert.equal((await request({ method: 'GET', url: `${s.url}/health` })).status, 200);
    await s.stop();
  });
});

describe('config: .env.example', () => {
  let example: Map<string, { active: boolean; line: string; comment: string }>;
  let read: { exact: string[]; prefixes: string[] };
  before(async () => {
    example = await envExample();
    read = await namesReadByConfig();
  });

  it('names every variable the config module reads', () => {
    assert.ok(read.exact.length >= 40, `only ${read.exact.length} names found in ${CONFIG_JS}`);
    assert.ok(read.exact.includes('SERVER_SHUTDOWN_TIMEOUT'));
    assert.deepEqual(read.exact.filter((n) => !example.has(n)), []);
    for (const p of read.prefixes) assert.ok([...example.keys()].some((n) => n.startsWith(p)), `no variable with prefix ${p}`);
  });

  it('names every variable of dex-pipeline.md §1.2 and decisions.md', () => {
    assert.deepEqual(DOCUMENTED.filter((n) => !example.has(n)), []);
  });

  it('documents each variable with a one-line comment giving its default', () => {
    for (const [name, e] of example) {
      assert.match(e.comment, /^#\s.*\(default: [^)]*\)/, `${name}: comment above is ${JSON.stringify(e.comment)}`);
    }
  });

  it('marks no variable "not yet supported" (every feature is built), and keeps the OAuth lines commented out', () => {
    for (const [n, e] of example) assert.doesNotMatch(e.comment, /not yet supported/i, n);
    for (const n of example.keys()) if (/^OAUTH_/.test(n)) assert.equal(example.get(n)!.active, false, n);
  });

  it('its active lines are the defaults and name only variables the server reads', async () => {
    const parsed = dotenv.parse(await readFile(ENV_EXAMPLE, 'utf8'));
    const active = [...example].filter(([, e]) => e.active).map(([n]) => n);
    assert.deepEqual(Object.keys(parsed).sort(), active.sort());
    assert.deepEqual(active.filter((n) => !read.exact.includes(n)), []);
    const c: Config = loadConfig(parsed);
    assert.deepEqual(c, loadConfig({}));
  });
});
