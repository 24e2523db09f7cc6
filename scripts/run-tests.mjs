// Runs every compiled test file with Node's built-in runner (Node 20 has no glob support in --test).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve('dist/test');
const files = [];
const walk = (d) => {
  for (const n of readdirSync(d)) {
    const p = path.join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (n.endsWith('.test.js')) files.push(p);
  }
};
walk(root);
const filter = process.argv.slice(2);
const selected = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (selected.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const run = (list, env) =>
  spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=180000', '--test-reporter=spec', ...list.sort()], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  }).status ?? 1;

// Every suite once (protocol suites as a plain tus server, on the file store), then the protocol suites again with
// manifest validation on: each creation then carries a valid manifest (test/helpers/manifest-mode.ts). Then the
// conformance and tus-js-client suites once more on each cloud store (S3 on s3rver, Azure Blob on Azurite;
// test/helpers/backend.ts), with validation on, so that finished uploads' manifests and deliveries go through them too.
const statuses = [run(selected, { DEX_TEST_MANIFEST_MODE: 'off' })];
const protocol = selected.filter((f) => /[\\/]tus[\\/]/.test(f) && !/memory|validation-on/.test(f));
if (protocol.length > 0) {
  console.log(`\n=== protocol suites again with manifest validation on (${protocol.length} files) ===\n`);
  statuses.push(run(protocol, { DEX_TEST_MANIFEST_MODE: 'on' }));
}
const perBackend = selected.filter((f) => /[\\/]tus[\\/](conformance-|interop)/.test(f));
for (const backend of perBackend.length > 0 ? ['s3', 'azure'] : []) {
  console.log(`\n=== conformance and interop suites on the ${backend} store (${perBackend.length} files) ===\n`);
  statuses.push(run(perBackend, { DEX_TEST_MANIFEST_MODE: 'on', DEX_TEST_BACKEND: backend }));
}
process.exit(statuses.find((s) => s !== 0) ?? 0);
