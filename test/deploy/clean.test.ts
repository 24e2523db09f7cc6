// clean.sh after a real local run: the uploads, reports, events and delivered copies go, at the folders the server's
// settings give; configuration, other files and anything holding the working directory stay.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startServer } from '../helpers/server.js';
import { createUpload } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';
import { waitUntil } from '../helpers/wait.js';

/** A checkout-like folder: clean.sh, and dist/ and configs/ of the repository (links). */
async function workspace(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dex-clean-'));
  await copyFile(path.join(REPO_ROOT, 'clean.sh'), path.join(dir, 'clean.sh'));
  await symlink(path.join(REPO_ROOT, 'dist'), path.join(dir, 'dist'));
  await symlink(path.join(REPO_ROOT, 'configs'), path.join(dir, 'configs'));
  await writeFile(path.join(dir, 'notes.txt'), 'mine');
  return dir;
}

function clean(dir: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', [path.join(dir, 'clean.sh'), ...args], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, ...env } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', (code) => resolve({ code, out }));
  });
}

describe('clean.sh', () => {
  let dir: string;
  before(async () => {
    dir = await workspace();
    // A local run from this folder with the default folders: an upload delivered to edav, and one left unfinished.
    const server = await startServer({ dir, env: { UPLOAD_MANIFEST_VALIDATION: 'true', DEX_DELIVERY_CONFIG_FILE: './configs/local/deliver.yml' } });
    try {
      await createUpload(server.url, { length: 5, metadata: encodeManifest(DEXTESTING), body: 'hello' });
      await createUpload(server.url, { length: 5, metadata: encodeManifest(DEXTESTING) });
      await waitUntil('the delivery to edav', async () => ((await readdir(path.join(dir, 'uploads'))).includes('edav') ? true : undefined));
    } finally {
      await server.stop();
    }
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('--dry-run lists what a run left and removes nothing', async () => {
    const r = await clean(dir, ['--dry-run']);
    assert.equal(r.code, 0, r.out);
    for (const sub of ['tus-prefix', 'reports', 'events', 'edav']) assert.match(r.out, new RegExp(`would remove ${path.join(dir, 'uploads', sub)}\\n`));
    assert.ok(existsSync(path.join(dir, 'uploads', 'tus-prefix')));
  });

  it('removes the uploads, reports, events and delivered copies, and keeps everything else', async () => {
    const r = await clean(dir);
    assert.equal(r.code, 0, r.out);
    assert.ok(!existsSync(path.join(dir, 'uploads')), r.out);
    assert.deepEqual((await readdir(dir)).sort(), ['clean.sh', 'configs', 'dist', 'notes.txt']);
    assert.ok(existsSync(path.join(REPO_ROOT, 'configs/local/deliver.yml')));
  });

  it('follows -appconf settings, and refuses folders that hold the working directory or configuration', async () => {
    const ws = await workspace();
    try {
      for (const d of ['elsewhere/reports', 'elsewhere/tus-prefix', 'delivered/x', 'delivery']) await mkdir(path.join(ws, d), { recursive: true });
      // A target whose folder holds the delivery config itself.
      await writeFile(
        path.join(ws, 'delivery/deliver.yml'),
        'targets:\n  out: { name: out, type: file, path: ./delivered }\n  bad: { name: bad, type: file, path: ./delivery }\nrouting_groups: []\n',
      );
      await writeFile(
        path.join(ws, 'settings.env'),
        `LOCAL_FOLDER_UPLOADS_TUS=./elsewhere\nLOCAL_REPORTS_FOLDER=./elsewhere/reports\nLOCAL_EVENTS_FOLDER=.\nDEX_DELIVERY_CONFIG_FILE=./delivery/deliver.yml\n`,
      );
      // The script runs in its own folder, like the server run from the repository root.
      const r = await clean(ws, ['-appconf', 'settings.env']);
      assert.equal(r.code, 0, r.out);
      assert.ok(!existsSync(path.join(ws, 'elsewhere')), r.out);
      assert.ok(!existsSync(path.join(ws, 'delivered')), r.out);
      assert.match(r.out, new RegExp(`kept ${ws}: it holds the working or home directory`));
      assert.match(r.out, new RegExp(`kept ${path.join(ws, 'delivery')}: it holds configuration`));
      assert.deepEqual((await readdir(ws)).sort(), ['clean.sh', 'configs', 'delivery', 'dist', 'notes.txt', 'settings.env']);
      const bad = await clean(ws, ['-appconf', 'missing.env']);
      assert.equal(bad.code, 1);
      assert.match(bad.out, /missing\.env/);
    } finally {
      await rm(ws, { recursive: true, force: true });
    }
  });
});
