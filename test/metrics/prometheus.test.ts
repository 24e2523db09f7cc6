// A real Prometheus (Debian's package) scrapes the running server with the shipped prometheus.yml; after an upload,
// PromQL through its HTTP API sees upload_manifest_count and tusd_bytes_received. Every query of the shipped
// Grafana dashboard is parsed by that Prometheus, names only metrics the server exports, and returns data.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT, startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, head, patch, request } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';
import { exportedNames, sampleNames, scrape } from '../helpers/metrics.js';
import { metricNames } from '../helpers/promql.js';
import { prometheusBinary, startPrometheus, type Prometheus } from '../helpers/prometheus.js';
import { waitUntil } from '../helpers/wait.js';

const PROMETHEUS_YML = path.join(REPO_ROOT, 'configs/local/prometheus/prometheus.yml');
const DASHBOARD = path.join(REPO_ROOT, 'configs/local/grafana/provisioning/dashboards/dex.json');
/** Grafana's interval variables, given the value Grafana would pick for a 5-minute range scraped every second. */
const GRAFANA_VARIABLES = /\$__(rate_interval|interval|range)\b/g;

/** Names whose lint complaint (no `_total` on a counter, `_total` on a gauge) is kept for compatibility. */
const LINT_EXCEPTIONS = new Set([
  // tusd's and DEX's names (decisions.md: metric names are kept exactly).
  'tusd_bytes_received',
  'tusd_uploads_created',
  'tusd_uploads_finished',
  'tusd_uploads_terminated',
  'upload_manifest_count',
  // prom-client's default process metrics.
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]);

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}

async function dashboardQueries(): Promise<Array<{ panel: string; expr: string }>> {
  const dash = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Panel[] };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr.replace(GRAFANA_VARIABLES, '1m') })));
}

const binary = prometheusBinary();
const promtool = prometheusBinary('promtool');

describe('a real Prometheus scraping the server', { skip: 'missing' in binary ? binary.missing : false }, () => {
  let server: RunningServer;
  let prom: Prometheus;
  before(async () => {
    server = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
    // The shipped configuration, with the compose service name replaced by this server's loopback address.
    const config = YAML.parse(await readFile(PROMETHEUS_YML, 'utf8')) as { scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
    assert.deepEqual(config.scrape_configs[0]!.static_configs[0]!.targets, ['upload-server:8080']);
    config.scrape_configs[0]!.static_configs[0]!.targets = [`127.0.0.1:${server.port}`];
    prom = await startPrometheus((binary as { path: string }).path, config);
  });
  after(async () => {
    await prom?.stop();
    await server?.cleanup();
  });

  it('promtool accepts the shipped prometheus.yml', { skip: 'missing' in promtool ? promtool.missing : false }, () => {
    const r = spawnSync((promtool as { path: string }).path, ['check', 'config', PROMETHEUS_YML], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('after an upload, PromQL returns its upload_manifest_count and tusd_bytes_received', async () => {
    const body = Buffer.alloc(5000, 'd');
    const { url } = await createUpload(server.url, { length: body.length, metadata: encodeManifest(DEXTESTING) });
    assert.equal((await patch(url, 0, body.subarray(0, 2000))).status, 204);
    assert.equal((await patch(url, 2000, body.subarray(2000))).status, 204);
    const value = async (expr: string) => {
      const a = await prom.query(expr);
      assert.equal(a.status, 'success', `${expr}: ${a.error}`);
      return a.data!.result.map((r) => ({ labels: r.metric, value: Number(r.value[1]) }));
    };
    const manifest = 'upload_manifest_count{data_stream_id="dextesting",data_stream_route="testevent1",sender_id="test sender"}';
    const counted = await waitUntil('Prometheus to scrape the upload', async () => {
      const got = await value(manifest);
      return got.length === 1 && got[0]!.value === 1 ? got : undefined;
    });
    assert.equal(counted[0]!.labels['job'], 'upload-server');
    // Each counter moves at its own point of the request; a scrape may fall between them.
    const becomes = (expr: string, want: number) => waitUntil(`${expr} = ${want}`, async () => ((await value(expr))[0]?.value === want ? true : undefined));
    await becomes('tusd_bytes_received', 5000);
    await becomes('tusd_uploads_finished', 1);
    await becomes('sum(http_requests_total{method="PATCH",code="204"})', 2);
  });

  it('every dashboard query parses, names only exported metrics, and returns data when the server has some', async () => {
    const queries = await dashboardQueries();
    assert.ok(queries.length >= 8, `${queries.length} queries`);
    // An error answer, so that the error panel has data too.
    assert.equal((await head(`${server.url}/files/00000000-0000-4000-8000-000000000000`)).status, 404);
    const { text } = await scrape(server.url);
    const exported = exportedNames(text);
    const withSamples = sampleNames(text);
    let answered = 0;
    for (const q of queries) {
      assert.doesNotMatch(q.expr, /\$/, `${q.panel}: a Grafana variable this test does not know`);
      const names = [...metricNames(q.expr)];
      assert.ok(names.length > 0, `${q.panel}: no metric in ${q.expr}`);
      for (const n of names) assert.ok(exported.has(n), `${q.panel}: ${n} is not exported by the server`);
      // Prometheus answers a syntax error with bad_data; a well-formed query returns series once two scrapes are in.
      const a = await prom.query(q.expr);
      assert.equal(a.status, 'success', `${q.panel}: ${q.expr}: ${a.errorType} ${a.error}`);
      if (!names.every((n) => withSamples.has(n))) continue; // e.g. hook errors: none happened
      await waitUntil(`data for "${q.panel}": ${q.expr}`, async () => ((await prom.query(q.expr)).data!.result.length > 0 ? true : undefined));
      answered++;
    }
    assert.ok(answered >= queries.length - 1, `only ${answered} of ${queries.length} queries had data`);
    const broken = await prom.query('sum by(code (rate(http_requests_total[1m]))');
    assert.equal(broken.status, 'error');
    assert.equal(broken.errorType, 'bad_data');
  });

  it('promtool lints the exposition: only the names kept for compatibility are reported', { skip: 'missing' in promtool ? promtool.missing : false }, async () => {
    const text = (await request({ method: 'GET', url: `${server.url}/metrics` })).body;
    const r = spawnSync((promtool as { path: string }).path, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
    assert.ok(r.status === 0 || r.status === 3, `promtool could not read the exposition (${r.status}): ${problems.join('\n')}`);
    for (const p of problems) assert.ok(LINT_EXCEPTIONS.has(p.split(' ')[0]!), `promtool: ${p}`);
  });
});
