// The little of autocannon's programmatic API that bench/autocannon-heads.ts uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';
  interface AutocannonRequest {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
  }
  interface AutocannonClient {
    parser: Record<number, (info: unknown) => unknown> & { constructor: { kOnHeadersComplete: number } };
    requestIterator: { setRequests(requests: AutocannonRequest[]): void };
  }
  interface AutocannonOptions {
    url: string;
    connections?: number;
    amount?: number;
    duration?: number;
    method?: string;
    headers?: Record<string, string>;
    requests?: AutocannonRequest[];
    timeout?: number;
    setupClient?: (client: AutocannonClient) => void;
  }
  interface AutocannonResult {
    requests: { total: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    '2xx': number;
  }
  interface Instance extends EventEmitter {
    stop(): void;
  }
  function autocannon(opts: AutocannonOptions, cb: (err: Error | null, result: AutocannonResult) => void): Instance;
  export default autocannon;
  export type { AutocannonClient, AutocannonOptions, AutocannonResult };
}
