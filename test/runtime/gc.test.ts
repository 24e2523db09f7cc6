// A large body streamed through the full default pipeline does not set off a mark-compact every few dozen
// milliseconds (internal/runtime/gc.ts says why it could, and how the server prevents it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type RunningServer } from '../helpers/server.js';
import { createUpload, streamPatch } from '../helpers/http.js';
import { DEXTESTING, encodeManifest } from '../helpers/dex-manifests.js';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;

/** `size` bytes of filler, produced lazily one MiB at a time. */
function filler(size: number): Readable {
  const piece = Buffer.alloc(MiB, 0x61);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return this.push(null);
      sent += piece.length;
      this.push(piece);
    },
  });
}

describe('garbage collection while a large body streams in', () => {
  let s: RunningServer;
  before(async () => {
    // The default DEX pipeline (validation, reports, events, delivery), with V8 reporting every collection.
    s = await startServer({ env: { UPLOAD_MANIFEST_VALIDATION: 'true' }, nodeArgs: ['--trace-gc'] });
  });
  after(async () => {
    await s?.cleanup();
  });

  it('a 512 MiB PATCH runs with a handful of mark-compacts at most, not one per young collection', { timeout: 300_000 }, async (t) => {
    const { url } = await createUpload(s.url, { length: SIZE, metadata: encodeManifest(DEXTESTING) });
    await sleep(500); // start-up and creation settle (their reports are written)
    const from = s.logs().length;
    assert.equal((await streamPatch(url, 0, SIZE, filler(SIZE))).status, 204);
    const lines = s.logs().slice(from).split('\n');
    const markCompacts = lines.filter((l) => l.includes('Mark-Compact')).length;
    const scavenges = lines.filter((l) => l.includes('Scavenge')).length;
    t.diagnostic(`${markCompacts} mark-compact(s) and ${scavenges} scavenge(s) during the upload`);
    assert.ok(scavenges > 0, 'V8 traced its collections (--trace-gc reached the server)');
    // With V8's incremental marking on, this upload often shows 15-20 mark-compacts, one after each scavenge.
    assert.ok(markCompacts <= 3, `${markCompacts} mark-compacts during one 512 MiB PATCH`);
  });
});
