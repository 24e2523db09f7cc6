// The practical limit of this machine: a bare node:http server that pipes each request body into a file with
// stream.pipeline. No protocol logic beyond what lets the same load generator run unchanged:
//   POST /files        → body (possibly empty) piped into a new file; 201, Location /files/<id>, Upload-Offset
//   PATCH /files/<id>  → body appended to the file; 204, Upload-Offset
//   HEAD /files/<id>   → 200, Upload-Offset / Upload-Length from memory
// No validation, no info files, no locking, no checksums.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { dataDirArg, serve } from './common.js';

const directory = path.resolve(dataDirArg());
mkdirSync(directory, { recursive: true });

interface Upload {
  offset: number;
  length: string;
}
const uploads = new Map<string, Upload>();
const PREFIX = '/files/';

async function store(req: http.IncomingMessage, id: string, up: Upload, flags: 'w' | 'a'): Promise<void> {
  const out = createWriteStream(path.join(directory, id), { flags });
  await pipeline(req, out);
  up.offset += out.bytesWritten;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  res.setHeader('Tus-Resumable', '1.0.0');
  if (req.method === 'POST' && (url === '/files' || url === PREFIX)) {
    const id = randomUUID();
    const up: Upload = { offset: 0, length: String(req.headers['upload-length'] ?? '') };
    uploads.set(id, up);
    await store(req, id, up, 'w');
    res.writeHead(201, { Location: PREFIX + id, 'Upload-Offset': String(up.offset), 'Content-Length': '0' }).end();
    return;
  }
  const up = url.startsWith(PREFIX) ? uploads.get(url.slice(PREFIX.length)) : undefined;
  if (!up) {
    req.resume();
    res.writeHead(404, { 'Content-Length': '0' }).end();
    return;
  }
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'Upload-Offset': String(up.offset), 'Upload-Length': up.length, 'Cache-Control': 'no-store' }).end();
    return;
  }
  if (req.method === 'PATCH') {
    await store(req, url.slice(PREFIX.length), up, 'a');
    res.writeHead(204, { 'Upload-Offset': String(up.offset) }).end();
    return;
  }
  req.resume();
  res.writeHead(405, { 'Content-Length': '0' }).end();
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500, { 'Content-Length': '0' }).end();
    else res.destroy();
  });
});
serve(server, 'baseline');
