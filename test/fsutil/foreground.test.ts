// Background work waits for a quiet moment of the upload API (internal/fsutil/foreground.ts), with real HTTP
// requests held open and a real I/O thread.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ForegroundActivity } from '../../internal/fsutil/foreground.js';
import { IoThread } from '../../internal/fsutil/io-thread.js';

/** A server whose requests are tracked and stay open until released. */
async function holdingServer(activity: ForegroundActivity) {
  const open: http.ServerResponse[] = [];
  const server = http.createServer((_req, res) => {
    activity.track(res);
    open.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const agent = new http.Agent({ keepAlive: false });
  return {
    /** Starts a request and resolves once the server holds it, with the request's completion. */
    async hold(): Promise<{ done: Promise<void> }> {
      const before = open.length;
      const done = new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/files/', method: 'PATCH', agent }, (res) => res.resume().on('end', resolve));
        req.on('error', reject);
        req.end();
      });
      while (open.length === before) await sleep(5);
      // Wrapped: an async function returning a promise would wait for it.
      return { done };
    },
    releaseAll() {
      for (const res of open.splice(0)) res.end();
    },
    async close() {
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('background work and the upload API', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'foreground-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is quiet with no request open, and settles at once', async () => {
    const activity = new ForegroundActivity();
    assert.equal(activity.quiet, true);
    await activity.settle();
  });

  /** A gated I/O thread and one tus-like request held open; everything is released and closed afterwards. */
  async function withHeldRequest(maxDeferMs: number, body: (t: { activity: ForegroundActivity; io: IoThread; release(): Promise<void> }) => Promise<void>) {
    const activity = new ForegroundActivity({ quietMs: 20, maxDeferMs });
    const server = await holdingServer(activity);
    const io = new IoThread({ gate: activity });
    let done: Promise<void> = Promise.resolve();
    try {
      ({ done } = await server.hold());
      await body({
        activity,
        io,
        async release() {
          server.releaseAll();
          await done;
        },
      });
    } finally {
      server.releaseAll();
      await done;
      await io.close();
      await server.close();
    }
  }

  it('holds report lines back while a request is open, and writes them once it has closed', async () => {
    await withHeldRequest(60_000, async ({ activity, io, release }) => {
      assert.equal(activity.quiet, false);
      const file = path.join(dir, 'held');
      let written = false;
      const write = io.append(file, 'line\n', 0o644).then(() => (written = true));
      // Far less than the 60 s the line may wait: it must still be waiting (the request is open).
      await sleep(200);
      assert.equal(written, false);
      assert.equal(existsSync(file), false);
      await release();
      await write;
      assert.equal(await readFile(file, 'utf8'), 'line\n');
    });
  });

  it('under steady load waits no longer than maxDeferMs: the work runs while the request is still open', async () => {
    await withHeldRequest(100, async ({ activity, io }) => {
      const file = path.join(dir, 'steady');
      await io.append(file, 'moved on\n', 0o644);
      assert.equal(activity.quiet, false, 'the request is still open');
      assert.equal(await readFile(file, 'utf8'), 'moved on\n');
    });
  });

  it('closing the I/O thread does not wait for a quiet moment', async () => {
    await withHeldRequest(60_000, async ({ activity, io }) => {
      const file = path.join(dir, 'at-close');
      const write = io.append(file, 'flushed at close\n', 0o644);
      await io.close();
      await write;
      assert.equal(await readFile(file, 'utf8'), 'flushed at close\n');
      assert.equal(activity.quiet, false, 'the request is still open');
    });
  });
});
