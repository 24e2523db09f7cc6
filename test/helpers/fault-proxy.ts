// A loopback HTTP proxy in front of a storage emulator (s3rver, Azurite): it forwards every request unchanged
// (headers included, so signatures stay valid) and can be told to answer 500, to cut requests off, or to stop
// listening, so that tests see what the server does when its storage fails. It also counts requests in flight.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?uploadId=...`. */
  url: string;
  /** Request body bytes forwarded so far. */
  bytes: number;
}

/** What to do with a request: forward it, answer 500 at once, or forward it and cut it after `afterBytes`. */
export type Fault = { kind: 'forward' } | { kind: 'error'; status?: number } | { kind: 'cut'; afterBytes: number };
export type FaultRule = (req: { method: string; url: string }) => Fault | undefined;

export interface FaultProxy {
  port: number;
  endpoint: string;
  /** Requests whose answer has not finished yet. */
  inFlight(): ProxiedRequest[];
  /** Every request seen since the start, as `METHOD url`. */
  seen(): string[];
  /** Rules are asked in order for each new request; the first answer wins (no answer: forward). */
  addRule(rule: FaultRule): () => void;
  /** Stops listening and drops every open connection (the storage is then down); `resume` listens again. */
  down(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** `unref`: the proxy does not keep the test process alive (one shared by a whole test file). */
export async function startFaultProxy(target: { host: string; port: number }, opts: { unref?: boolean } = {}): Promise<FaultProxy> {
  const rules: FaultRule[] = [];
  const open = new Set<ProxiedRequest>();
  const seen: string[] = [];
  const sockets = new Set<Socket>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const entry: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', bytes: 0 };
    seen.push(`${entry.method} ${entry.url}`);
    open.add(entry);
    res.once('close', () => open.delete(entry));
    let fault: Fault = { kind: 'forward' };
    for (const rule of rules) {
      const f = rule(entry);
      if (f) {
        fault = f;
        break;
      }
    }
    if (fault.kind === 'error') {
      req.resume();
      const body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>';
      res.writeHead(fault.status ?? 500, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
      res.end(body);
      return;
    }
    const upstream = http.request(
      { host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: false },
      (up) => {
        if (opts.unref) up.socket.unref();
        res.writeHead(up.statusCode ?? 502, up.rawHeaders as unknown as http.OutgoingHttpHeaders);
        up.pipe(res);
        up.once('error', () => res.destroy());
      },
    );
    upstream.once('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { Connection: 'close' });
        res.end();
      } else res.destroy();
    });
    if (opts.unref) upstream.once('socket', (s: Socket) => s.unref());
    res.once('close', () => upstream.destroy());
    req.on('data', (chunk: Buffer) => {
      entry.bytes += chunk.length;
      if (fault.kind === 'cut' && entry.bytes >= fault.afterBytes) {
        // The connection dies mid-body, as a crashed or unplugged server would leave it.
        upstream.destroy();
        req.socket.destroy();
        return;
      }
      if (!upstream.write(chunk)) {
        req.pause();
        upstream.once('drain', () => req.resume());
      }
    });
    req.once('end', () => upstream.end());
    req.once('error', () => upstream.destroy());
  };

  const server = http.createServer(handle);
  server.keepAliveTimeout = 1000;
  if (opts.unref) server.unref();
  server.on('connection', (s: Socket) => {
    if (opts.unref) s.unref();
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port = await listen(0);
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });

  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    inFlight: () => [...open],
    seen: () => [...seen],
    addRule(rule) {
      rules.push(rule);
      return () => {
        const i = rules.indexOf(rule);
        if (i >= 0) rules.splice(i, 1);
      };
    },
    down: stop,
    async resume() {
      await listen(port);
    },
    close: stop,
  };
}
