// Captures what /version reports: package.json's repository and version, and the git commit being built
// (BUILD_REPO, BUILD_LATEST_RELEASE_VERSION and BUILD_GIT_SHORT_SHA in the environment override them).
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
// The Dockerfile's build arguments (its context has no git): a non-empty value wins.
const env = (name, fallback) => process.env[`BUILD_${name}`] || fallback;
const info = {
  repo: env('REPO', repo.replace(/^github:/, '')),
  latest_release_version: env('LATEST_RELEASE_VERSION', pkg.version ?? ''),
  git_short_sha: env('GIT_SHORT_SHA', sha),
};
writeFileSync(new URL('../dist/build-info.json', import.meta.url), JSON.stringify(info) + '\n');
