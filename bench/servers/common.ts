// Shared plumbing for the two comparison servers: listen on loopback, announce the port the same way our
// server does (a JSON line with msg "server listening"), stop on SIGTERM, and exit if the benchmark dies
// (stdin closes).
import { fstatSync } from 'node:fs';
import type http from 'node:http';

export function serve(server: http.Server, name: string): void {
  const host = process.env['SERVER_LISTEN_HOST'] || '127.0.0.1';
  const port = Number(process.env['SERVER_PORT'] || 0);
  // Same limits as a default node:http server except the ones that would cut a 1 GiB upload short.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  server.listen(port, host, () => {
    const addr = server.address();
    const actual = typeof addr === 'object' && addr ? addr.port : port;
    process.stdout.write(`${JSON.stringify({ level: 30, name, msg: 'server listening', port: actual, host })}\n`);
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The benchmark keeps a pipe open on our stdin; when it goes away (even by SIGKILL) we go too. Only a pipe is
  // watched: reading a terminal or /dev/zero would never end (or spin).
  let stdinIsPipe = false;
  try {
    const st = fstatSync(0);
    stdinIsPipe = st.isFIFO() || st.isSocket(); // node's spawn() gives a socketpair
  } catch {
    /* no stdin */
  }
  if (stdinIsPipe) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}

/** `--dir X` (default ./data), resolved against the working directory. */
export function dataDirArg(): string {
  const i = process.argv.indexOf('--dir');
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : 'data';
}
