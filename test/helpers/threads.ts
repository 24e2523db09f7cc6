// Counts the worker threads a piece of code starts: thread ids are handed out in order, so the id of a probe thread
// started after it, minus the id of one started before it, is one more than the threads started in between.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

/** The id the next worker thread of this process gets (a probe thread is started, and has exited on return). */
export async function nextThreadId(): Promise<number> {
  const probe = new Worker('', { eval: true });
  const id = probe.threadId;
  await once(probe, 'exit');
  return id;
}

/** How many worker threads `fn` started (none may be started by anything else meanwhile). */
export async function threadsStartedBy(fn: () => unknown): Promise<number> {
  const before = await nextThreadId();
  await fn();
  return (await nextThreadId()) - before - 1;
}
