// deliver.yml (dex-pipeline.md §4.1): the shipped local file, $VAR expansion, and every start-up error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeliveryConfigError, loadDeliveryConfig, parseDeliveryConfig } from '../../internal/delivery/config.js';
import { deliveredPath } from '../../internal/delivery/path-template.js';
import { REPO_ROOT } from '../helpers/server.js';

const parse = (yaml: string) => parseDeliveryConfig('test.yml', yaml);
const refuses = (yaml: string, pattern: RegExp) =>
  assert.throws(() => parse(yaml), (e: Error) => e instanceof DeliveryConfigError && pattern.test(e.message), pattern.source);

describe('deliver.yml', () => {
  it('the shipped configs/local/deliver.yml: four file targets and a group for every shipped v2 stream', async () => {
    const c = await loadDeliveryConfig(path.join(REPO_ROOT, 'configs/local/deliver.yml'), {});
    assert.deepEqual([...c.targets.keys()].sort(), ['edav', 'ehdi', 'eicr', 'ncird']);
    for (const t of c.targets.values()) assert.equal(t.type, 'file');
    assert.deepEqual(c.warnings, []);
    const streams = readdirSync(path.join(REPO_ROOT, 'upload-configs/v2')).map((f) => f.replace(/\.json$/, ''));
    for (const s of streams) assert.ok(c.groups.has(s), `a routing group for ${s}`);
    const dex = c.groups.get('dextesting_testevent1')!;
    assert.deepEqual(dex.map((d) => d.name), ['edav']);
    const id = '0b7c3c2e-5a8f-4d7e-9a11-2f3b4c5d6e7f';
    assert.equal(deliveredPath(id, dex[0]!.template, { dex_ingest_datetime: '2024-12-06T15:38:06Z', received_filename: 'test.txt' }), `2024/12/06/test_${id}.txt`);
    assert.deepEqual(c.groups.get('routine-immunization_other')!.map((d) => d.name), ['ncird']);
  });

  it('expands $VAR and ${VAR} over the whole text before parsing (unset → empty; a lone $ stays)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dex-deliver-'));
    try {
      const file = path.join(dir, 'deliver.yml');
      await writeFile(file, 'targets:\n  a: {name: a, type: file, path: "$BASE/a"}\n  b: {name: b, type: file, path: "${BASE}/b$UNSET/$"}\nrouting_groups: []\n');
      const c = await loadDeliveryConfig(file, { BASE: '/data' });
      assert.equal((c.targets.get('a') as { path: string }).path, '/data/a');
      assert.equal((c.targets.get('b') as { path: string }).path, '/data/b/$');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses, naming the problem: unknown type, missing fields, undefined designations, bad templates, bad YAML', () => {
    refuses('targets:\n  x: {name: x, type: ftp}\n', /target x: Unknown destination type: ftp/);
    refuses('targets:\n  x: {type: file, path: /p}\n', /target x: missing name/);
    refuses('targets:\n  x: {name: x, type: file}\n', /target x: missing path/);
    refuses('targets:\n  x: {name: x, type: s3}\n', /target x: missing bucket_name/);
    refuses('targets:\n  x: {name: x, type: az-blob, container_name: c}\n', /target x: not enough information/);
    refuses(
      'targets:\n  x: {name: x, type: file, path: /p}\nrouting_groups:\n  - {data_stream_id: a, data_stream_route: b, delivery_targets: [{name: y}]}\n',
      /routing group a_b: target y is not defined/,
    );
    refuses(
      'targets:\n  x: {name: x, type: file, path: /p}\nrouting_groups:\n  - {data_stream_id: a, data_stream_route: b, delivery_targets: [{name: x, path_template: "{{.Nope}}"}]}\n',
      /routing group a_b, target x: .*unknown field/,
    );
    refuses('targets: [unclosed\n', /bad YAML/);
    refuses('routing_groups:\n  - {data_stream_id: a}\n', /missing data_stream_id or data_stream_route/);
  });

  it('keeps a group without targets (with a warning); a later group with the same key replaces the earlier one', () => {
    const c = parse(
      'targets:\n  x: {name: x, type: file, path: /p}\n  y: {name: y, type: file, path: /q}\nrouting_groups:\n' +
        '  - {data_stream_id: a, data_stream_route: b, delivery_targets: [{name: x}]}\n' +
        '  - {data_stream_id: a, data_stream_route: b, delivery_targets: [{name: y}]}\n' +
        '  - {data_stream_id: c, data_stream_route: d}\n',
    );
    assert.deepEqual(c.groups.get('a_b')!.map((d) => d.name), ['y']);
    assert.deepEqual(c.groups.get('c_d'), []);
    assert.deepEqual(c.warnings, ['no targets configured for group c_d']);
  });

  it('a missing file is a start-up error naming it', async () => {
    await assert.rejects(loadDeliveryConfig('/nonexistent/deliver.yml', {}), /\/nonexistent\/deliver\.yml: cannot read/);
  });
});
