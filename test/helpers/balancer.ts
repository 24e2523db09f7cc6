// A small HTTP load balancer on loopback for the multi-instance tests (and the bench): every request goes to the
// backend `choose` picks, streamed both ways, with the client's Host header kept (so Location names the balancer,
// as behind nginx with `proxy_set_header Host $host`). It records which backend served each request.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';

export interface Routed {
  method: string;
  path: string;
  backend: number;
  status?: number;
}

export interface Balancer {
  url: string;
  /** Every request, in arrival order, with the backend index that served it. */
  log: Routed[];
  close(): Promise<void>;
}

export type Chooser = (req: http.IncomingMessage, count: number) => number;

export const roundRobin = (): Chooser => {
  let next = 0;
  return (_req, count) => next++ % count;
};
export const random = (): Chooser => (_req, count) => Math.floor(Math.random() * count);

export async function startBalancer(backends: () => Array<{ port: number }>, choose: Chooser): Promise<Balancer> {
  const log: Routed[] = [];
  const server = http.createServer((req, res) => {
    const list = backends();
    const backend = choose(req, list.length);
    const entry: Routed = { method: req.method ?? '', path: req.url ?? '', backend };
    log.push(entry);
    const up = http.request(
      { host: '127.0.0.1', port: list[backend]!.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (r) => {
        entry.status = r.statusCode;
        res.writeHead(r.statusCode ?? 502, r.headers);
        pipeline(r, res).catch(() => res.destroy());
      },
    );
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    // A backend that answers early (an interrupted PATCH) stops reading: the rest of the client's body is dropped.
    pipeline(req, up).catch(() => undefined);
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
