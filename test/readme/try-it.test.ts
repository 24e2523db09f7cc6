// The README's "Try it" commands, run as written against the real server: the README stays the single source. Each
// block follows a `<!-- try-it: NAME -->` marker; the only thing the test sets is SERVER (the blocks default it to
// http://localhost:8080) and, for the blocks a user runs later in the same shell, the ID the first block computed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT, startServer, type RunningServer } from '../helpers/server.js';
import { head, UUID_V4 } from '../helpers/http.js';
import { waitUntil } from '../helpers/wait.js';

const UUID = UUID_V4.source.slice(1, -1);

/** The fenced block that follows `<!-- try-it: name -->` in README.md. */
function block(readme: string, name: string): string {
  const m = new RegExp(`<!-- try-it: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme);
  assert.ok(m, `README.md has no "try-it: ${name}" block`);
  return `${m[1]}\n`;
}

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs a shell block with bash (failing on the first failing command) in `cwd`. */
function bash(script: string, cwd: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn('bash', ['-eo', 'pipefail', '-c', script], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env } });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.once('error', reject);
    proc.once('exit', (code) => resolve({ code, out, err }));
  });
}

const listing = async (dir: string): Promise<string[]> => {
  try {
    return await readdir(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
};

describe('README "Try it"', () => {
  let readme: string;
  let s: RunningServer;
  let id: string;

  before(async () => {
    readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    // The embedded defaults, run from a folder of its own: validation on, the shipped configs and deliver.yml, and
    // every output under ./uploads of the server's folder (the README's commands run in that folder too).
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' } });
  });
  after(async () => {
    await s.cleanup();
  });

  it('the curl example creates and completes an upload with a valid dextesting manifest', async () => {
    const r = await bash(block(readme, 'curl'), s.dir, { SERVER: s.url });
    assert.equal(r.code, 0, `the block failed:\n${r.out}\n${r.err}`);
    assert.equal(r.err, '', 'curl reported no error');
    const location = new RegExp(`^${s.url}/files/(${UUID})$`, 'm').exec(r.out);
    assert.ok(location, `the block prints the upload's Location:\n${r.out}`);
    id = location[1]!;
    assert.match(r.out, /^HTTP\/1\.1 204 No Content\r$/m, 'the PATCH answers 204');
    assert.equal(r.out.match(/^upload-offset: 11\r$/gim)?.length, 2, 'PATCH and HEAD both show offset 11');
    assert.equal(await readFile(path.join(s.storeDir, id), 'utf8'), 'hello world');
    assert.equal(await readFile(path.join(s.dir, 'hello.txt'), 'utf8'), 'hello world');
  });

  it('the files it names appear: data, .info, .meta, a report per stage, the delivered copy, /info', async () => {
    assert.ok(id, 'the curl example ran first');
    const reports = path.join(s.dir, 'uploads', 'reports');
    // Reports and delivery follow the upload off the request path (a deadline against hangs only).
    await waitUntil('the delivery report', async () => ((await listing(reports)).includes(`${id}_blob-file-copy`) ? true : undefined));
    const r = await bash(block(readme, 'look'), s.dir, { SERVER: s.url, ID: id });
    assert.equal(r.code, 0, `the block failed:\n${r.out}\n${r.err}`);
    for (const f of [id, `${id}.info`, `${id}.meta`]) assert.ok(r.out.includes(`uploads/tus-prefix/${f}\n`), `lists ${f}:\n${r.out}`);
    for (const stage of ['metadata-verify', 'metadata-transform', 'upload-started', 'upload-status', 'upload-completed', 'blob-file-copy']) {
      assert.ok(r.out.includes(`uploads/reports/${id}_${stage}\n`), `lists the ${stage} report:\n${r.out}`);
    }
    const copy = new RegExp(`^(uploads/edav/\\d{4}/\\d{2}/\\d{2}/hello_${id}\\.txt)$`, 'm').exec(r.out);
    assert.ok(copy, `finds the delivered copy:\n${r.out}`);
    assert.equal(await readFile(path.join(s.dir, copy[1]!), 'utf8'), 'hello world');
    const info = JSON.parse(r.out.slice(r.out.indexOf('{'))) as {
      manifest: Record<string, string>;
      upload_status: { status: string };
      deliveries: { name: string; status: string }[];
    };
    assert.equal(info.manifest.data_stream_id, 'dextesting');
    assert.equal(info.manifest.received_filename, 'hello.txt');
    assert.equal(info.upload_status.status, 'Complete');
    assert.deepEqual(info.deliveries.map((d) => [d.name, d.status]), [['edav', 'SUCCESS']]);
  });

  it('the tus-js-client example uploads hello.txt (saved as upload.mjs in a folder that has the node_modules)', async () => {
    await writeFile(path.join(s.dir, 'hello.txt'), 'hello world');
    await writeFile(path.join(s.dir, 'upload.mjs'), block(readme, 'tus-js-client'));
    // "in the repository folder": the script resolves tus-js-client from the repository's node_modules.
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(s.dir, 'node_modules'), 'dir');
    const r = await bash(block(readme, 'tus-js-client-run'), s.dir, { SERVER: s.url });
    assert.equal(r.code, 0, `the block failed:\n${r.out}\n${r.err}`);
    const m = new RegExp(`^uploaded hello\\.txt to (${s.url}/files/(${UUID}))$`, 'm').exec(r.out);
    assert.ok(m, `prints the upload's URL:\n${r.out}\n${r.err}`);
    const h = await head(m[1]!);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '11');
    assert.equal(h.headers['upload-length'], '11');
    assert.equal(await readFile(path.join(s.storeDir, m[2]!), 'utf8'), 'hello world');
  });
});
