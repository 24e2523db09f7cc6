import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, head, patch, request, b64 } from '../helpers/http.js';

describe('smoke: create, patch, head', () => {
  let s: RunningServer;
  before(async () => {
    s = await startServer();
  });
  after(async () => {
    await s.cleanup();
  });

  it('stores the bytes and reports the offset', async () => {
    const { url, id } = await createUpload(s.url, { length: 11, metadata: `filename ${b64('test.txt')}` });
    const p = await patch(url, 0, 'hello world');
    assert.equal(p.status, 204);
    assert.equal(p.headers['upload-offset'], '11');
    const h = await head(url);
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '11');
    assert.equal(await readFile(path.join(s.storeDir, id), 'utf8'), 'hello world');
  });

  it('answers GET / and /version', async () => {
    const root = await request({ method: 'GET', url: `${s.url}/` });
    assert.equal(root.status, 200);
    assert.equal(JSON.parse(root.body).system, 'DEX');
    const v = await request({ method: 'GET', url: `${s.url}/version` });
    assert.deepEqual(Object.keys(JSON.parse(v.body)), ['repo', 'latest_release_version', 'git_short_sha']);
  });
});
