// The local FileReady pipeline: event format, the file publisher, and the in-memory bus's workers, retries and
// dead-letter. These are our own in-process components (the Service Bus counterparts are tested against the broker).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { decodeFileReady, fileReady, type FileReady } from '../../internal/events/event.js';
import { defaultBackoff, FileEventPublisher, MemoryBus } from '../../internal/events/local.js';
import { loadConfig } from '../../internal/config/config.js';
import { createLogger } from '../../internal/logging/logger.js';

/** Retry timers are unref'd (they must not hold the process open); a test waiting on them keeps the loop alive. */
async function settled(bus: MemoryBus): Promise<void> {
  const keep = setInterval(() => {}, 1000);
  try {
    await bus.idle();
  } finally {
    clearInterval(keep);
  }
}

const quiet = createLogger(loadConfig({ UI_PORT: '' }), new Writable({ write: (_c, _e, cb) => cb() }));

describe('FileReady events, local mode', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'dex-events-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const event = (target = 'edav') =>
    fileReady({ uploadId: randomUUID(), path: '2026/01/02/test_x.txt', target, metadata: { z: '1', a: '2', upload_id: 'u' } });

  it('has the wire format: key order, capitalised Metadata with sorted keys, empty id and src_url', () => {
    const e = event();
    assert.deepEqual(Object.keys(e), ['id', 'type', 'retry_count', 'upload_id', 'src_url', 'path', 'deliver_target', 'Metadata']);
    assert.deepEqual(Object.keys(e.Metadata), ['a', 'upload_id', 'z']);
    assert.equal(e.id, '');
    assert.equal(e.src_url, '');
    assert.equal(e.retry_count, 0);
    assert.deepEqual(decodeFileReady(JSON.stringify(e)), e);
  });

  it('refuses a message that is not a FileReady (poison)', () => {
    for (const bad of ['nope', '{}', '{"type":"Other","upload_id":"x","deliver_target":"y"}', 'null', '[1]']) {
      assert.throws(() => decodeFileReady(bad));
    }
  });

  it('the file publisher appends one JSON line per event to <upload_id>_FileReady', async () => {
    const folder = path.join(dir, 'events');
    const pub = new FileEventPublisher(folder);
    const e = event();
    await pub.publish(e);
    await pub.publish({ ...e, deliver_target: 'ehdi' });
    const lines = (await readFile(path.join(folder, `${e.upload_id}_FileReady`), 'utf8')).trim().split('\n');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as FileReady).deliver_target), ['edav', 'ehdi']);
    await assert.rejects(pub.publish({ ...e, upload_id: '../escape' }));
  });

  it('the bus hands every event to one of LISTENER_WORKERS workers, once each', async () => {
    const bus = new MemoryBus({ workers: 3, maxRetries: 3, deadLetterFolder: path.join(dir, 'dl1'), log: quiet, backoffMs: () => 5 });
    const seen: string[] = [];
    let concurrent = 0;
    let peak = 0;
    bus.subscribe(async (e) => {
      concurrent++;
      peak = Math.max(peak, concurrent);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(e.upload_id);
      concurrent--;
    });
    const sent = Array.from({ length: 30 }, () => event());
    for (const e of sent) await bus.publish(e);
    await settled(bus);
    assert.deepEqual([...seen].sort(), sent.map((e) => e.upload_id).sort());
    assert.ok(peak > 1 && peak <= 3, `peak concurrency ${peak}`);
    bus.stop();
  });

  it('a failing event is retried with a growing retry_count and succeeds later', async () => {
    const bus = new MemoryBus({ workers: 2, maxRetries: 3, deadLetterFolder: path.join(dir, 'dl2'), log: quiet, backoffMs: () => 5 });
    const attempts: number[] = [];
    bus.subscribe(async (e) => {
      attempts.push(e.retry_count);
      if (e.retry_count < 2) throw new Error('target down');
    });
    await bus.publish(event());
    await settled(bus);
    assert.deepEqual(attempts, [0, 1, 2]);
    bus.stop();
  });

  it('after 1 + EVENT_MAX_RETRY_COUNT attempts the event is dead-lettered, and the workers keep going', async () => {
    const folder = path.join(dir, 'dl3');
    const bus = new MemoryBus({ workers: 1, maxRetries: 3, deadLetterFolder: folder, log: quiet, backoffMs: () => 5 });
    const poison = event('broken');
    const fine = event('edav');
    let poisonAttempts = 0;
    const delivered: string[] = [];
    bus.subscribe(async (e) => {
      if (e.deliver_target === 'broken') {
        poisonAttempts++;
        throw new Error('cannot deliver');
      }
      delivered.push(e.upload_id);
    });
    await bus.publish(poison);
    await bus.publish(fine);
    await settled(bus);
    assert.equal(poisonAttempts, 4);
    assert.deepEqual(delivered, [fine.upload_id]);
    const dead = (await readFile(path.join(folder, `${poison.upload_id}_FileReady`), 'utf8')).trim().split('\n');
    assert.equal(dead.length, 1);
    const rec = JSON.parse(dead[0]!) as FileReady;
    assert.equal(rec.retry_count, 3);
    assert.equal(rec.deliver_target, 'broken');
    bus.stop();
  });

  it('waits 1 s, 2 s, 4 s … at most 60 s between attempts', () => {
    assert.deepEqual([1, 2, 3, 4, 6, 7, 10].map(defaultBackoff), [1000, 2000, 4000, 8000, 32000, 60000, 60000]);
  });
});
