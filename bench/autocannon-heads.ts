// HEADs sent by autocannon (a load generator many users reach for), as a cross-check of the load generator's own
// raw-socket HEADs (bench/loadgen.ts): same targets, same concurrency, run in the load-generator process.
//
// A HEAD response ends at its blank line (RFC 9112 §6.3, rule 1), and none of the three servers sends a
// Content-Length with it (tusd does not either). autocannon's HTTP parser is not told which responses answer a HEAD,
// so over a kept-alive connection it waits for a body until the connection closes and no HEAD ever completes
// (wrk's parser does the same). Here each client's parser is told that a response's headers end it (what Node's own
// HTTP client does for a HEAD), so connections are kept alive as by a browser or tusd's Go client.
import autocannon, { type AutocannonClient } from 'autocannon';
import { performance } from 'node:perf_hooks';

export interface AutocannonHeads {
  operations: number;
  /** From the call until the last response (autocannon itself only ends at its next 1 s tick). */
  /** Per HEAD, in ms. */
  latencies: number[];
}

export function autocannonHeads(targets: URL[], requests: number, concurrency: number): Promise<AutocannonHeads & { elapsedMs: number }> {
  const headers: Record<string, string> = { 'Tus-Resumable': '1.0.0' };
  const paths = targets.map((u) => ({ method: 'HEAD', path: u.pathname, headers }));
  let clients = 0;
  const setupClient = (client: AutocannonClient) => {
    // Each connection starts on a different upload (as the load generator's workers do), not all on the first.
    const k = (clients++ * 2) % paths.length;
    client.requestIterator.setRequests([...paths.slice(k), ...paths.slice(0, k)]);
    // The parser's callbacks are set right after setupClient returns: wrap the headers callback then.
    process.nextTick(() => {
      const key = client.parser.constructor.kOnHeadersComplete;
      const onHeaders = client.parser[key]!;
      client.parser[key] = (info) => {
        onHeaders(info);
        return true; // no body follows: the response is complete
      };
    });
  };
  const latencies: number[] = [];
  const t0 = performance.now();
  let last = t0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url: targets[0]!.origin, connections: concurrency, amount: requests, method: 'HEAD', headers, requests: paths, timeout: 10, setupClient },
      (err, result) => {
        if (err) return reject(err);
        const bad = result.errors + result.timeouts + result.non2xx;
        if (bad > 0 || result.requests.total < requests) {
          return reject(new Error(`autocannon: ${result.requests.total} of ${requests} HEADs, ${result.non2xx} not 2xx, ${result.errors} errors, ${result.timeouts} timeouts`));
        }
        resolve({ operations: result['2xx'], latencies, elapsedMs: last - t0 });
      },
    );
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      last = performance.now();
      if (status === 200) latencies.push(ms);
    });
  });
}
