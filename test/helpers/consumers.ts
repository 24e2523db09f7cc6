// Stand-in FileReady consumers for the event bus suites (the delivery worker's place), and a shared event maker.
import { randomUUID } from 'node:crypto';
import { fileReady, type FileReady } from '../../internal/events/event.js';

export const event = (target = 'edav'): FileReady =>
  fileReady({ uploadId: randomUUID(), path: `2026/01/02/test.txt_${randomUUID()}`, target, metadata: { data_stream_id: 'dextesting', z: 'last', a: 'first' } });

/** A consumer that records every call and fails as `fail(event)` says. */
export function recorder(fail: (e: FileReady) => boolean = () => false) {
  const calls: FileReady[] = [];
  return {
    calls,
    consumer: async (e: FileReady) => {
      calls.push(e);
      if (fail(e)) throw new Error(`target down for ${e.upload_id}`);
    },
  };
}

/** A consumer whose calls all wait until release(): how many run at once, and at most. */
export function gatedConsumer() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const state = {
    running: 0,
    most: 0,
    done: [] as string[],
    release,
    consumer: async (e: FileReady) => {
      state.running++;
      state.most = Math.max(state.most, state.running);
      await gate;
      state.running--;
      state.done.push(e.upload_id);
    },
  };
  return state;
}
