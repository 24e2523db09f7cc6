// ReportPublisher.recorded() / RetryQueue.settled(): "every report published so far is in the file sink", which the
// broker subscribers wait for before they delete or complete a message. Later reports never hold it up (so it works
// under constant load), a report retried after a partial batch failure does, and only the first sink (the durable
// record) counts. The sinks are stubs of our own ReportSink interface, so they can fail and hang on cue.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReportPublisher } from '../../internal/reports/publisher.js';
import { buildReport, type Report } from '../../internal/reports/report.js';
import type { ReportSink } from '../../internal/reports/sinks.js';
import { RetryQueue } from '../../internal/retry/retry-queue.js';
import { captureLogger } from '../helpers/delivery.js';

const uid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const report = (n: number): Report => buildReport({ stage: 'upload-started', uploadId: uid(n), manifest: null, version: '0_test', content: { n } });

/** A sink whose writes wait until released, one by one, in order. */
class HeldSink implements ReportSink {
  readonly written: Report[] = [];
  private readonly releases: Array<() => void> = [];
  constructor(readonly name: string) {}
  async publish(r: Report): Promise<void> {
    await new Promise<void>((resolve) => this.releases.push(resolve));
    this.written.push(r);
  }
  /** Lets the waiting write through; resolves once it is written. */
  async releaseOne(): Promise<void> {
    while (this.releases.length === 0) await new Promise((r) => setImmediate(r));
    const n = this.written.length;
    this.releases.shift()!();
    while (this.written.length === n) await new Promise((r) => setImmediate(r));
  }
}

/** Tracks whether a promise has settled, without awaiting it. */
function watch(p: Promise<void>) {
  const state = { done: false, failed: null as Error | null };
  p.then(
    () => (state.done = true),
    (err: Error) => (state.failed = err),
  );
  return state;
}
const turn = () => new Promise((r) => setImmediate(r));

describe('ReportPublisher.recorded()', () => {
  it('resolves at once when nothing is waiting', async () => {
    const pub = new ReportPublisher([new HeldSink('file')], captureLogger().log);
    await pub.recorded();
  });

  it('resolves once the reports published before it are written, whatever is published after', async () => {
    const sink = new HeldSink('file');
    const pub = new ReportPublisher([sink], captureLogger().log);
    pub.publish(report(1));
    pub.publish(report(2));
    const w = watch(pub.recorded());
    pub.publish(report(3)); // later: must not hold it up
    await sink.releaseOne();
    await turn();
    assert.equal(w.done, false, 'report 2 is not written yet');
    await sink.releaseOne();
    await turn();
    assert.equal(w.done, true);
    assert.equal(sink.written.length, 2, 'report 3 still waits');
    await sink.releaseOne();
    await pub.drain();
  });

  it('only the first sink counts: a broker sink that is down does not hold it up', async () => {
    const file = new HeldSink('file');
    const broker: ReportSink = { name: 'broker', publish: () => Promise.reject(new Error('down')) };
    const pub = new ReportPublisher([file, broker], captureLogger().log);
    pub.publish(report(1));
    const w = watch(pub.recorded());
    await file.releaseOne();
    await turn();
    assert.equal(w.done, true);
  });

  it('a report whose batch write failed is retried first, and holds recorded() until it is written', async () => {
    let failOnce = true;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const written: number[] = [];
    const sink: ReportSink = {
      name: 'file',
      publish: () => Promise.reject(new Error('batch sink')),
      async publishBatch(rs) {
        // The first batch (report 0 alone) waits, so that 1, 2 and 3 make the next one together.
        if (rs[0]!.content['n'] === 0) await gate;
        // Report 1 fails the first time; the others of the batch are written.
        const failed = failOnce ? rs.filter((r) => r.content['n'] === 1) : [];
        if (failed.length) failOnce = false;
        for (const r of rs) if (!failed.includes(r)) written.push(r.content['n'] as number);
        return { failed, error: failed.length ? new Error('disk hiccup') : undefined };
      },
    };
    const logs = captureLogger();
    const pub = new ReportPublisher([sink], logs.log);
    for (const n of [0, 1, 2, 3]) pub.publish(report(n));
    const w = watch(pub.recorded());
    release();
    while (written.length < 3) await turn();
    assert.deepEqual(written, [0, 2, 3]);
    assert.equal(w.done, false, 'report 1 is not written: not recorded yet');
    // The retry (after the 1 s back-off) writes it.
    const keep = setInterval(() => {}, 1000);
    try {
      await pub.recorded();
    } finally {
      clearInterval(keep);
    }
    assert.deepEqual(written, [0, 2, 3, 1]);
    assert.equal(w.done, true);
  });
});

describe('RetryQueue.settled()', () => {
  it('rejects its waiters when the queue is stopped first, and after', async () => {
    const q = new RetryQueue<number>({
      handle: () => new Promise(() => {}), // never written
      log: captureLogger().log,
      labels: {},
      describe: (n) => ({ n }),
      messages: { dropped: 'dropped', retrying: 'retrying' },
    });
    q.push(1);
    const w = watch(q.settled());
    q.stop();
    await turn();
    assert.match(String(w.failed), /stopped/);
    await assert.rejects(q.settled(), /stopped/);
  });

  it('an item dropped from a full backlog (logged and counted) counts as gone: waiters are not stuck on it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const written: number[] = [];
    const q = new RetryQueue<number>({
      handle: async (n) => {
        if (n === 1) await gate;
        written.push(n);
      },
      log: captureLogger().log,
      labels: {},
      describe: (n) => ({ n }),
      messages: { dropped: 'dropped', retrying: 'retrying' },
      maxPending: 2,
    });
    q.push(1); // in flight, held
    q.push(2);
    const w = watch(q.settled());
    q.push(3); // the backlog is full: 2 is dropped (1 is in flight and never the one dropped)
    await turn();
    assert.equal(q.dropped, 1);
    assert.equal(w.done, false, 'item 1 is still being written');
    release();
    await q.idle();
    assert.deepEqual(written, [1, 3]);
    assert.equal(w.done, true);
  });
});
