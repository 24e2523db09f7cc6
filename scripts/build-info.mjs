// Captures what /version reports: package.json's repository and version, and the git commit being built.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const repo = typeof pkg.repository === 'string' ? pkg.repository : (pkg.repository?.url ?? '');
let sha = '';
try {
  sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
} catch {
  sha = '';
}
const info = { repo: repo.replace(/^github:/, ''), latest_release_version: pkg.version ?? '', git_short_sha: sha };
writeFileSync(new URL('../dist/build-info.json', import.meta.url), JSON.stringify(info) + '\n');
