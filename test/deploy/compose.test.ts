// docker-compose*.yml, the Dockerfile and the Grafana provisioning, checked without a Docker engine (there is none
// here): every file parses, every file it references exists (through the image layout and the mounts), every
// environment variable given to the server is one it reads, and the values pass its own configuration checks.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { configVariableNames, loadConfig } from '../../internal/config/config.js';
import { loadDeliveryConfig } from '../../internal/delivery/config.js';
import { REPO_ROOT } from '../helpers/server.js';

/** Read by the AWS SDK's default chain, not by our config module (dex-pipeline.md §1.2 "used indirectly"). */
const AWS_SDK_VARIABLES = ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_ENDPOINT_URL'];
/** The deployments: the base file alone and with each overlay. */
const STACKS = [['docker-compose.yml'], ['docker-compose.yml', 'docker-compose.azurite.yml'], ['docker-compose.yml', 'docker-compose.minio.yml']];

type Env = Record<string, string>;
interface Service {
  build?: string | { context: string; dockerfile?: string };
  image?: string;
  command?: string | string[];
  environment?: Env | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  [k: string]: unknown;
}
interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const envOf = (s: Service): Env =>
  Array.isArray(s.environment)
    ? Object.fromEntries(s.environment.map((e) => [e.split('=')[0]!, e.slice(e.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v ?? '')]));
const dependsOf = (s: Service) => (Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {}));

/** Compose's merge of override files, for the keys used here: maps merge, volumes and ports add up, the rest replaces. */
function merge(files: ComposeFile[]): ComposeFile {
  const out: ComposeFile = { services: {}, volumes: {} };
  for (const f of files) {
    Object.assign(out.volumes!, f.volumes ?? {});
    for (const [name, s] of Object.entries(f.services)) {
      const prev = out.services[name] ?? {};
      out.services[name] = {
        ...prev,
        ...s,
        environment: { ...envOf(prev), ...envOf(s) },
        volumes: [...(prev.volumes ?? []), ...(s.volumes ?? [])],
        ports: [...(prev.ports ?? []), ...(s.ports ?? [])],
        depends_on: Object.fromEntries([...dependsOf(prev), ...dependsOf(s)].map((d) => [d, {}])),
      };
    }
  }
  return out;
}

/** `${NAME:-default}` / `${NAME}` as compose interpolates them with nothing set on the host. */
const interpolate = (v: string) => v.replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_m, _n, def?: string) => def ?? '');

/** `src:dst[:mode]` bind mounts (src a path) and named volumes. */
function mounts(s: Service): Array<{ source: string; target: string; bind: boolean }> {
  return (s.volumes ?? []).map((v) => {
    const [source, target] = v.split(':') as [string, string];
    return { source, target, bind: source.startsWith('.') || source.startsWith('/') };
  });
}

interface Instruction {
  op: string;
  args: string;
}
/** The Dockerfile's instructions by stage (continuation lines joined, comments dropped). */
function dockerStages(text: string): Instruction[][] {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Instruction[][] = [];
  for (const l of lines) {
    const [op, ...rest] = l.split(/\s+/);
    const ins = { op: op!.toUpperCase(), args: rest.join(' ') };
    if (ins.op === 'FROM') stages.push([]);
    stages.at(-1)!.push(ins);
  }
  return stages;
}

/** Where a path inside the server's container comes from: a bind mount, else what the Dockerfile copied to /app. */
function hostPath(containerPath: string, s: Service, imageCopies: Map<string, string>): string | undefined {
  const candidates = [
    ...mounts(s).filter((m) => m.bind).map((m) => [m.target, path.resolve(REPO_ROOT, m.source)] as const),
    ...[...imageCopies].map(([target, source]) => [target, path.join(REPO_ROOT, source)] as const),
  ].sort((a, b) => b[0].length - a[0].length);
  for (const [target, source] of candidates) {
    if (containerPath === target || containerPath.startsWith(`${target}/`)) return path.join(source, containerPath.slice(target.length));
  }
  return undefined;
}

describe('Dockerfile', () => {
  let stages: Instruction[][];
  before(async () => {
    stages = dockerStages(await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
  });

  it('is multi-stage: builds with the dev dependencies, runs with the production ones only', () => {
    assert.ok(stages.length >= 2);
    const build = stages[0]!;
    const run = stages.at(-1)!;
    assert.match(build[0]!.args, /\bAS build$/i);
    assert.ok(build.some((i) => i.op === 'RUN' && /npm ci(?!.*--omit=dev)/.test(i.args)), 'the build stage installs the dev dependencies');
    assert.ok(build.some((i) => i.op === 'RUN' && /npm run build/.test(i.args)), 'the build stage compiles');
    assert.ok(run.some((i) => i.op === 'RUN' && /npm ci .*--omit=dev/.test(i.args)), 'the runtime stage installs production dependencies only');
    assert.ok(run.some((i) => i.op === 'COPY' && /^--from=build \/app\/dist /.test(i.args)), 'the runtime stage takes the compiled server');
  });

  it('every COPY source exists, and .dockerignore keeps none of them out', async () => {
    const ignored = (await readFile(path.join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.ok(ignored.includes('node_modules') && ignored.includes('dist') && ignored.includes('.env'));
    const copies = stages.flat().filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='));
    assert.ok(copies.length >= 5);
    for (const c of copies) {
      for (const src of c.args.split(/\s+/).slice(0, -1)) {
        assert.ok(existsSync(path.join(REPO_ROOT, src)), `COPY ${src}: no such file`);
        assert.ok(!ignored.includes(src.replace(/\/$/, '')), `COPY ${src} is in .dockerignore`);
      }
    }
  });

  it('runs as a non-root user, exposes 8080 and 8081, checks /health, and starts the built dist/cmd/main.js', () => {
    const run = stages.at(-1)!;
    const user = run.filter((i) => i.op === 'USER').at(-1);
    assert.ok(user && !/^(root|0)(:|$)/.test(user.args), 'USER must be a non-root user');
    const exposed = run.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    assert.deepEqual(exposed.sort(), ['8080', '8081']);
    const health = run.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(health, 'HEALTHCHECK is missing');
    assert.match(health.args, /CMD .*http:\/\/127\.0\.0\.1:\$\{SERVER_PORT:-8080\}\/health/);
    const entry = run.find((i) => i.op === 'ENTRYPOINT');
    assert.ok(entry, 'ENTRYPOINT is missing');
    assert.deepEqual(JSON.parse(entry.args), ['node', 'dist/cmd/main.js']);
    assert.ok(statSync(path.join(REPO_ROOT, 'dist/cmd/main.js')).isFile(), 'npm run build produces dist/cmd/main.js');
    assert.equal(run.find((i) => i.op === 'WORKDIR')?.args, '/app');
  });
});

describe('docker-compose files', () => {
  const files = readdirSync(REPO_ROOT).filter((f) => /^docker-compose(\.[a-z0-9-]+)?\.yml$/.test(f));
  let parsed: Map<string, ComposeFile>;
  let readable: Set<string>;
  let imageCopies: Map<string, string>;
  before(async () => {
    parsed = new Map();
    for (const f of files) parsed.set(f, YAML.parse(await readFile(path.join(REPO_ROOT, f), 'utf8')) as ComposeFile);
    readable = new Set([...configVariableNames(), ...AWS_SDK_VARIABLES]);
    // COPY <repo path> ./<dir> of the runtime stage, under WORKDIR /app.
    const run = dockerStages(await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8')).at(-1)!;
    imageCopies = new Map(
      run
        .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))
        .map((i) => i.args.split(/\s+/))
        .filter((a) => a.length === 2)
        .map(([src, dst]) => [path.posix.join('/app', dst!), src!]),
    );
  });

  it('are the base file and the Azurite and MinIO overlays, and each parses', () => {
    assert.deepEqual(files.sort(), ['docker-compose.azurite.yml', 'docker-compose.minio.yml', 'docker-compose.yml']);
    for (const [f, c] of parsed) assert.ok(c && typeof c.services === 'object', `${f} has no services`);
    assert.deepEqual(Object.keys(parsed.get('docker-compose.yml')!.services).sort(), ['cache', 'grafana', 'prometheus', 'upload-server']);
  });

  for (const stack of STACKS) {
    describe(stack.join(' + '), () => {
      let compose: ComposeFile;
      let server: Service;
      let env: Env;
      before(() => {
        compose = merge(stack.map((f) => parsed.get(f)!));
        server = compose.services['upload-server']!;
        env = Object.fromEntries(Object.entries(envOf(server)).map(([k, v]) => [k, interpolate(v)]));
      });

      it('references only files that exist, and services and volumes it defines', () => {
        for (const [name, s] of Object.entries(compose.services)) {
          for (const m of mounts(s)) {
            if (m.bind) assert.ok(existsSync(path.resolve(REPO_ROOT, m.source)), `${name}: ${m.source} does not exist`);
            else assert.ok(m.source in (compose.volumes ?? {}), `${name}: volume ${m.source} is not declared`);
          }
          for (const d of dependsOf(s)) assert.ok(d in compose.services, `${name} depends on ${d}, which is not a service`);
          if (s.build) {
            const context = typeof s.build === 'string' ? s.build : s.build.context;
            assert.ok(existsSync(path.join(REPO_ROOT, context, 'Dockerfile')), `${name}: no Dockerfile in ${context}`);
          }
        }
        assert.equal(server.build, '.', 'the server is built from ./Dockerfile');
        for (const name of ['UPLOAD_CONFIG_PATH', 'DEX_DELIVERY_CONFIG_FILE']) {
          const host = hostPath(env[name]!, server, imageCopies);
          assert.ok(host && existsSync(host), `${name}=${env[name]} is no file of the image or of a mount`);
        }
      });

      it("gives the server only variables it reads (or its delivery config's $VARs), with values its configuration accepts", async () => {
        const deliverFile = hostPath(env['DEX_DELIVERY_CONFIG_FILE']!, server, imageCopies)!;
        const deliverText = await readFile(deliverFile, 'utf8');
        const referenced = new Set([...deliverText.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!));
        for (const name of Object.keys(env)) {
          assert.ok(readable.has(name) || referenced.has(name), `upload-server: ${name} is not a variable the server reads`);
        }
        assert.doesNotThrow(() => loadConfig(env), 'the server accepts this environment');
        // The delivery config parses with this environment, and routes the same streams as the local one.
        const delivery = await loadDeliveryConfig(deliverFile, env);
        const local = await loadDeliveryConfig(path.join(REPO_ROOT, 'configs/local/deliver.yml'), {});
        assert.deepEqual([...delivery.groups.keys()], [...local.groups.keys()]);
        assert.deepEqual([...delivery.targets.keys()].sort(), [...local.targets.keys()].sort());
        for (const t of delivery.targets.values()) {
          if (t.type === 'az-blob') assert.equal(t.endpoint, env['AZURE_ENDPOINT']);
          if (t.type === 's3') assert.equal(t.endpoint, env['S3_ENDPOINT']);
        }
      });

      it('publishes the API and UI ports, and Prometheus and Grafana reach what they are configured for', async () => {
        assert.ok(server.ports!.some((p) => interpolate(p) === '8080:8080'));
        assert.ok(server.ports!.some((p) => interpolate(p) === '8081:8081'));
        const prometheus = compose.services['prometheus']!;
        const promYml = hostPath('/etc/prometheus/prometheus.yml', { volumes: prometheus.volumes }, new Map());
        assert.ok(promYml && existsSync(promYml));
        const promConfig = YAML.parse(await readFile(promYml, 'utf8')) as { scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
        const [host, port] = promConfig.scrape_configs[0]!.static_configs[0]!.targets[0]!.split(':');
        assert.equal(server['hostname'], host);
        assert.equal(port, '8080');

        const grafana = compose.services['grafana']!;
        const provisioning = hostPath('/etc/grafana/provisioning', { volumes: grafana.volumes }, new Map())!;
        const ds = YAML.parse(await readFile(path.join(provisioning, 'datasources/datasource.yml'), 'utf8')) as { datasources: Array<{ url: string; type: string }> };
        assert.equal(ds.datasources[0]!.type, 'prometheus');
        assert.equal(new URL(ds.datasources[0]!.url).hostname, 'prometheus');
        assert.ok(prometheus.ports!.includes(`${new URL(ds.datasources[0]!.url).port}:9090`));
        const providers = YAML.parse(await readFile(path.join(provisioning, 'dashboards/dashboards.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
        const dashboard = hostPath(providers.providers[0]!.options.path, { volumes: grafana.volumes }, new Map());
        assert.ok(dashboard && existsSync(dashboard), `the dashboard provider's ${providers.providers[0]!.options.path} is not mounted`);
        const dash = JSON.parse(await readFile(dashboard, 'utf8')) as { uid: string; title: string; panels: Array<{ datasource: { uid: string } }> };
        assert.equal(dash.title, 'DEX Dashboard');
        for (const p of dash.panels) assert.equal(p.datasource.uid, (ds.datasources[0] as { uid?: string }).uid);
      });
    });
  }

  it('the overlays switch the upload storage and the delivery targets to Azurite and MinIO', () => {
    const az = envOf(parsed.get('docker-compose.azurite.yml')!.services['upload-server']!);
    assert.equal(az['AZURE_STORAGE_ACCOUNT'], 'devstoreaccount1');
    assert.equal(az['AZURE_ENDPOINT'], 'http://azurite:10000/devstoreaccount1');
    assert.equal(az['TUS_AZURE_CONTAINER_NAME'], 'test');
    assert.match(az['AZURE_STORAGE_KEY']!, /^\$\{AZURITE_STORAGE_KEY:-/);
    assert.equal(az['DEX_DELIVERY_CONFIG_FILE'], '/app/configs/local/deliver-azurite.yml');
    const minio = envOf(parsed.get('docker-compose.minio.yml')!.services['upload-server']!);
    assert.equal(minio['S3_ENDPOINT'], 'http://minio:8000');
    assert.equal(minio['S3_BUCKET_NAME'], 'test-bucket');
    assert.equal(minio['AWS_REGION'], 'us-east-1');
    assert.equal(minio['DEX_DELIVERY_CONFIG_FILE'], '/app/configs/local/deliver-minio.yml');
    // The buckets the server and its targets use are the ones the minio-buckets job makes.
    const job = parsed.get('docker-compose.minio.yml')!.services['minio-buckets']!;
    const made = [...String((job['entrypoint'] as string[]).at(-1)).matchAll(/local\/([a-z0-9-]+)/g)].map((m) => m[1]);
    assert.deepEqual(made.sort(), ['edav', 'ehdi', 'eicr', 'ncird', 'test-bucket']);
  });
});
