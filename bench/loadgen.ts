// The load generator: a separate process (forked by bench.ts) that runs one job against one server over a
// keep-alive http.Agent and reports the result over IPC. Bodies are written from one reusable random buffer,
// so a 1 GiB upload never allocates more than that buffer.
import { randomFillSync } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { autocannonHeads } from './autocannon-heads.js';

export interface Warmup {
  /** 4 KiB creation-with-upload uploads before the clock starts. */
  uploads: number;
  /** HEADs on those uploads before the clock starts. */
  heads: number;
}

export type Job =
  | {
      kind: 'uploads';
      base: string; // http://127.0.0.1:PORT
      createPath: string; // '/files/' or '/files'
      count: number;
      size: number;
      /** Bytes per request; the first request is the POST when creationWithUpload. */
      chunk: number;
      concurrency: number;
      creationWithUpload: boolean;
      warmup: Warmup;
      /** Sustained: workers keep starting uploads until this much time has passed (`count` is then ignored). */
      durationMs?: number;
    }
  | {
      kind: 'head';
      base: string;
      createPath: string;
      /** Uploads created (untimed) to be HEADed round-robin. */
      targets: number;
      requests: number;
      concurrency: number;
      warmup: Warmup;
      /**
       * Who sends the timed HEADs: this process over raw keep-alive sockets (default), autocannon over keep-alive
       * connections (`autocannon`), or this process through Node's http.Agent (`http-agent`), which opens a new
       * connection for every HEAD (see HeadConnection): what a generator built on Node's http client measures.
       */
      generator?: HeadGenerator;
    };

export type HeadGenerator = 'loadgen' | 'autocannon' | 'http-agent';

export interface JobResult {
  /** From the first timed request to the last HTTP response. */
  elapsedMs: number;
  /** When the timed part started and ended, in ms since the epoch (the clock of the servers' file times). */
  startedAtMs: number;
  endedAtMs: number;
  /** Uploads: when each timed upload got its last response, ms after startedAtMs, in completion order. */
  completionsMs: number[];
  /** Uploads completed or HEADs answered in the timed part. */
  operations: number;
  /** Body bytes sent in the timed part. */
  bytes: number;
  /** Body bytes sent in total (setup and warm-up included), for the stored-bytes check. */
  totalBytesSent: number;
  /** Per operation (one whole upload, or one HEAD). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU seconds the load generator itself used in the timed part (both share the machine's cores). */
  clientCpuS: number;
  /** Requests (whole job) that had to open a new connection instead of reusing a kept-alive one. */
  newConnections: number;
}

/** `started` is sent when the timed part begins (the benchmark reads the server's CPU counter then). */
export type LoadgenMessage = { setUp: number } | { started: true } | { ok: true; result: JobResult } | { ok: false; error: string };
/** From the benchmark: the server has finished the background work of the set-up; the timed part may start. */
export type LoadgenGo = { go: true };

const timedPartStarts = () => process.send?.({ started: true } satisfies LoadgenMessage);

let go: (() => void) | null = null;
/**
 * Untimed set-up is done (`uploads` uploads created): waits until the benchmark says the server has finished the
 * set-up's background work, so that the timed part measures the workload alone, on every server alike.
 */
function setUpDone(uploads: number): Promise<void> {
  if (!process.send) return Promise.resolve();
  return new Promise<void>((resolve) => {
    go = resolve;
    process.send!({ setUp: uploads } satisfies LoadgenMessage);
  });
}

const BUF = Buffer.allocUnsafe(1 << 20);
randomFillSync(BUF);

const b64 = (s: string) => Buffer.from(s).toString('base64');
// The dextesting/testevent1 "good" manifest, so that our server runs its default pipeline for the stream.
const METADATA = [
  ['version', '2.0'],
  ['data_stream_id', 'dextesting'],
  ['data_stream_route', 'testevent1'],
  ['sender_id', 'bench'],
  ['data_producer_id', 'bench'],
  ['jurisdiction', 'test'],
  ['received_filename', 'bench.bin'],
  ['filename', 'bench.bin'],
]
  .map(([k, v]) => `${k} ${b64(v!)}`)
  .join(',');

const stats = { newConnections: 0 };
const seenSockets = new WeakSet<net.Socket>();

/**
 * HEAD goes over raw keep-alive sockets instead of http.Agent: Node's http client closes the connection after
 * every HEAD response that carries neither Content-Length nor Transfer-Encoding (nodejs/node#28438), and none
 * of the three servers sends one, so through http.Agent the HEAD workload would measure TCP connection set-up.
 * A HEAD response never has a body, so it ends at the blank line; real tus clients keep such connections alive.
 */
class HeadConnection {
  private sock: net.Socket | null = null;
  private buf = '';
  private waiter: { resolve: (r: Resp) => void; reject: (e: Error) => void } | null = null;

  constructor(private readonly url: URL) {}

  private connect(): net.Socket {
    const sock = net.connect({ host: this.url.hostname, port: Number(this.url.port) });
    stats.newConnections++;
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.parse();
    });
    const fail = (err?: Error) => {
      // A socket we already gave up on (the server said "close") fails nobody.
      if (this.sock !== sock) return;
      this.sock = null;
      const w = this.waiter;
      this.waiter = null;
      w?.reject(err ?? new Error('HEAD: connection closed before the response'));
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
    return sock;
  }

  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0 || !this.waiter) return;
    const lines = this.buf.slice(0, end).split('\r\n');
    this.buf = this.buf.slice(end + 4);
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: http.IncomingHttpHeaders = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    if (/\bclose\b/i.test(String(headers.connection ?? ''))) {
      this.sock?.end();
      this.sock = null;
    }
    const w = this.waiter;
    this.waiter = null;
    w.resolve({ status, headers, body: '' });
  }

  head(url: URL): Promise<Resp> {
    if (!this.sock) {
      this.buf = '';
      this.sock = this.connect();
    }
    const p = new Promise<Resp>((resolve, reject) => (this.waiter = { resolve, reject }));
    this.sock.write(`HEAD ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nTus-Resumable: 1.0.0\r\n\r\n`);
    return p;
  }

  close(): void {
    this.sock?.destroy();
    this.sock = null;
  }
}

interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request; `bodySize` bytes are streamed from BUF with backpressure. */
function send(agent: http.Agent, url: URL, method: string, headers: http.OutgoingHttpHeaders, bodySize: number): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const h: http.OutgoingHttpHeaders = { 'Tus-Resumable': '1.0.0', ...headers };
    if (bodySize > 0) {
      h['Content-Length'] = String(bodySize);
      h['Content-Type'] = 'application/offset+octet-stream';
    }
    const req = http.request(url, { method, agent, headers: h });
    req.once('socket', (sock: net.Socket) => {
      if (!seenSockets.has(sock)) {
        seenSockets.add(sock);
        stats.newConnections++;
      }
    });
    let responded = false;
    req.on('error', reject);
    req.on('response', (res) => {
      responded = true;
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => {
        if (body.length < 2000) body += d;
      });
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    if (bodySize <= 0) {
      req.end();
      return;
    }
    let left = bodySize;
    const pump = () => {
      // Stop writing if the server answered early (an error): the status check reports it.
      while (left > 0 && !responded && !req.destroyed) {
        const n = Math.min(left, BUF.length);
        left -= n;
        const chunk = n === BUF.length ? BUF : BUF.subarray(0, n);
        if (left === 0) {
          req.end(chunk);
          return;
        }
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

function expect(r: Resp, status: number, what: string): void {
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status} ${r.body.slice(0, 300)}`);
}

/** Runs fn(0..total-1) with `concurrency` workers; `w` is the worker's index. A worker whose fn says 'stop' ends. */
async function pool(total: number, concurrency: number, fn: (i: number, w: number) => Promise<void | 'stop' | undefined>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, total) }, async (_, w) => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      if ((await fn(i, w)) === 'stop') return;
    }
  });
  await Promise.all(workers);
}

class Client {
  readonly agent: http.Agent;
  bytesSent = 0;
  constructor(
    readonly base: string,
    readonly createPath: string,
    concurrency: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  }

  /** Creates an upload of `size` bytes (sending `first` of them with the POST); returns its URL. */
  async create(size: number, first: number): Promise<URL> {
    const headers: http.OutgoingHttpHeaders = { 'Upload-Length': String(size), 'Upload-Metadata': METADATA };
    const r = await send(this.agent, new URL(this.createPath, this.base), 'POST', headers, first);
    this.bytesSent += first;
    expect(r, 201, 'POST');
    const loc = r.headers.location;
    if (!loc) throw new Error('POST: no Location');
    if (first > 0 && r.headers['upload-offset'] !== String(first)) throw new Error(`POST: Upload-Offset ${r.headers['upload-offset']}, expected ${first}`);
    return new URL(loc, this.base);
  }

  async patch(url: URL, offset: number, n: number): Promise<void> {
    const r = await send(this.agent, url, 'PATCH', { 'Upload-Offset': String(offset) }, n);
    this.bytesSent += n;
    expect(r, 204, 'PATCH');
    if (r.headers['upload-offset'] !== String(offset + n)) throw new Error(`PATCH: Upload-Offset ${r.headers['upload-offset']}, expected ${offset + n}`);
  }

  private readonly headConns: HeadConnection[] = [];

  /** HEAD on worker `w`'s own kept-alive connection. */
  async head(url: URL, offset: number, w: number): Promise<void> {
    const conn = (this.headConns[w] ??= new HeadConnection(url));
    const r = await conn.head(url);
    expect(r, 200, 'HEAD');
    if (r.headers['upload-offset'] !== String(offset)) throw new Error(`HEAD: Upload-Offset ${r.headers['upload-offset']}, expected ${offset}`);
  }

  /** HEAD through the keep-alive http.Agent, which closes the connection after the response (see HeadConnection). */
  async headViaAgent(url: URL, offset: number): Promise<void> {
    const r = await send(this.agent, url, 'HEAD', {}, 0);
    expect(r, 200, 'HEAD');
    if (r.headers['upload-offset'] !== String(offset)) throw new Error(`HEAD: Upload-Offset ${r.headers['upload-offset']}, expected ${offset}`);
  }

  async upload(size: number, chunk: number, creationWithUpload: boolean): Promise<void> {
    const first = creationWithUpload ? Math.min(size, chunk) : 0;
    const url = await this.create(size, first);
    for (let offset = first; offset < size; ) {
      const n = Math.min(chunk, size - offset);
      await this.patch(url, offset, n);
      offset += n;
    }
  }

  close(): void {
    this.agent.destroy();
    for (const c of this.headConns) c?.close();
  }

  /** Untimed: small uploads (half-finished, so HEAD reports a partial offset) and HEADs on them. */
  async warmup(w: Warmup, concurrency: number): Promise<URL[]> {
    const urls: URL[] = [];
    await pool(w.uploads, concurrency, async () => {
      urls.push(await this.create(8192, 4096));
    });
    if (urls.length > 0) await pool(w.heads, concurrency, (i, worker) => this.head(urls[i % urls.length]!, 4096, worker));
    return urls;
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Epoch milliseconds of a performance.now() reading (sub-millisecond, comparable with file modification times). */
const epochMs = (t: number) => performance.timeOrigin + t;

export async function runJob(job: Job): Promise<JobResult> {
  stats.newConnections = 0;
  const client = new Client(job.base, job.createPath, job.concurrency);
  try {
    const latencies: number[] = [];
    const completionsMs: number[] = [];
    let bytes = 0;
    let operations = 0;
    let t0: number;
    let t1: number;
    let cpu0 = process.cpuUsage();
    if (job.kind === 'uploads') {
      await client.warmup(job.warmup, Math.min(32, Math.max(job.concurrency, 8)));
      await setUpDone(job.warmup.uploads);
      timedPartStarts();
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      // Sustained: no upload starts once the duration has passed; the ones under way finish.
      const deadline = job.durationMs === undefined ? Infinity : t0 + job.durationMs;
      const total = job.durationMs === undefined ? job.count : Number.MAX_SAFE_INTEGER;
      await pool(total, job.concurrency, async () => {
        const s = performance.now();
        if (s >= deadline) return 'stop';
        await client.upload(job.size, job.chunk, job.creationWithUpload);
        const e = performance.now();
        latencies.push(e - s);
        completionsMs.push(e - t0);
        bytes += job.size;
        operations++;
        return undefined;
      });
      t1 = performance.now();
    } else {
      await client.warmup(job.warmup, job.concurrency);
      const targets: URL[] = [];
      await pool(job.targets, job.concurrency, async () => {
        targets.push(await client.create(8192, 4096));
      });
      const generator = job.generator ?? 'loadgen';
      if (generator === 'autocannon') await autocannonHeads(targets, Math.min(job.requests, 2000), job.concurrency); // its own warm-up
      await setUpDone(job.warmup.uploads + job.targets);
      timedPartStarts();
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      if (generator === 'autocannon') {
        const r = await autocannonHeads(targets, job.requests, job.concurrency);
        t1 = t0 + r.elapsedMs;
        operations = r.operations;
        latencies.push(...r.latencies);
      } else {
        await pool(job.requests, job.concurrency, async (i, w) => {
          const s = performance.now();
          const url = targets[i % targets.length]!;
          await (generator === 'http-agent' ? client.headViaAgent(url, 4096) : client.head(url, 4096, w));
          latencies.push(performance.now() - s);
          operations++;
          return undefined;
        });
        t1 = performance.now();
      }
    }
    const cpu = process.cpuUsage(cpu0);
    latencies.sort((a, b) => a - b);
    return {
      elapsedMs: t1 - t0,
      startedAtMs: epochMs(t0),
      endedAtMs: epochMs(t1),
      completionsMs,
      operations,
      bytes,
      totalBytesSent: client.bytesSent,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? 0,
      clientCpuS: (cpu.user + cpu.system) / 1e6,
      newConnections: stats.newConnections,
    };
  } finally {
    client.close();
  }
}

// Run as a forked child: jobs in, results out, one at a time, until the benchmark disconnects.
if (process.send) {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (job: Job | LoadgenGo) => {
    if ('go' in job) {
      go?.();
      go = null;
      return;
    }
    const reply = (m: LoadgenMessage) => process.send!(m);
    runJob(job).then(
      (result) => reply({ ok: true, result }),
      (err: unknown) => reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
}
