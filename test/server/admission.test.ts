// New uploads wait while the pipeline's backlog is high (internal/server/admission.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Admission } from '../../internal/server/admission.js';

const settledWithin = async (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), sleep(ms).then(() => false)]);

describe('admission of new uploads', () => {
  it('lets creations go at once while the backlog is below the limit', () => {
    const a = new Admission({ backlog: () => 999, limit: 1000 });
    assert.equal(a.admit(), undefined);
    assert.equal(a.waited, 0);
  });

  it('holds creations from the limit on, and lets them all go once the backlog is down to the resume mark', async () => {
    let backlog = 1000;
    const a = new Admission({ backlog: () => backlog, limit: 1000, resume: 500, maxWaitMs: 60_000, pollMs: 5 });
    const first = a.admit();
    const second = a.admit();
    assert.ok(first && second);
    assert.equal(await settledWithin(first, 50), false);
    backlog = 700; // below the limit, above the resume mark: still held
    assert.equal(await settledWithin(first, 50), false);
    // A creation that comes while others wait waits too, even below the limit (no overtaking).
    const third = a.admit();
    assert.ok(third);
    backlog = 500;
    assert.equal(await settledWithin(Promise.all([first, second, third]).then(() => undefined), 5000), true);
    assert.equal(a.waited, 3);
    assert.equal(a.admit(), undefined);
  });

  it('never holds a creation longer than maxWaitMs (a stuck pipeline does not stop uploads)', async () => {
    const a = new Admission({ backlog: () => 10_000, limit: 1000, maxWaitMs: 100, pollMs: 5 });
    const p = a.admit();
    assert.ok(p);
    assert.equal(await settledWithin(p, 5000), true);
    a.close();
  });

  it('close() lets waiting creations go and admits every later one', async () => {
    const a = new Admission({ backlog: () => 10_000, limit: 1000, maxWaitMs: 60_000 });
    const p = a.admit();
    assert.ok(p);
    a.close();
    assert.equal(await settledWithin(p, 5000), true);
    assert.equal(a.admit(), undefined);
  });
});
