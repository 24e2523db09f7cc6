// Raw HTTP requests (node:http, no agent), so headers, bodies, slow bodies and aborts are exact.
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { withManifest } from './manifest-mode.js';

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method: string;
  url: string; // absolute
  headers?: OutgoingHttpHeaders;
  /** Sent as one piece with Content-Length unless `chunked`. */
  body?: string | Buffer;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
  timeoutMs?: number;
}

export function request(opts: RequestOptions): Promise<Response> {
  return new Promise((resolve, reject) => {
    const headers: OutgoingHttpHeaders = { ...opts.headers };
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    if (body && !opts.chunked && headers['content-length'] === undefined && headers['Content-Length'] === undefined) {
      headers['Content-Length'] = String(body.length);
    }
    const req = http.request(opts.url, { method: opts.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`request timed out: ${opts.method} ${opts.url}`)));
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

export const TR = { 'Tus-Resumable': '1.0.0' } as const;
export const OOS = { 'Content-Type': 'application/offset+octet-stream' } as const;

export const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Creates an upload; returns its absolute URL and id. */
export async function createUpload(
  base: string,
  opts: { length?: number; defer?: boolean; metadata?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; path?: string } = {},
): Promise<{ url: string; id: string; res: Response }> {
  const headers: OutgoingHttpHeaders = { ...TR, ...opts.headers };
  if (opts.defer) headers['Upload-Defer-Length'] = '1';
  else if (opts.length !== undefined) headers['Upload-Length'] = String(opts.length);
  if (opts.metadata !== undefined) headers['Upload-Metadata'] = opts.metadata;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/offset+octet-stream';
  const res = await request({ method: 'POST', url: `${base}${opts.path ?? '/files/'}`, headers: withManifest(headers), body: opts.body });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.body}`);
  const url = String(res.headers.location);
  return { url, id: url.split('/').pop()!, res };
}

export function patch(url: string, offset: number, body: string | Buffer, headers: OutgoingHttpHeaders = {}): Promise<Response> {
  return request({ method: 'PATCH', url, headers: { ...TR, ...OOS, 'Upload-Offset': String(offset), ...headers }, body });
}

export function head(url: string, headers: OutgoingHttpHeaders = TR): Promise<Response> {
  return request({ method: 'HEAD', url, headers });
}

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The upload id at the end of an upload URL (asserted to be a lower-case UUID v4). */
export function idOf(uploadUrl: string | null): string {
  if (!uploadUrl) throw new Error('the upload has no URL');
  const id = new URL(uploadUrl).pathname.split('/').pop()!;
  if (!UUID_V4.test(id)) throw new Error(`not an upload id: ${id}`);
  return id;
}

/** Decodes an Upload-Metadata header into [key, value] pairs, in order. */
export function decodeMetadata(header: string | string[] | undefined): [string, string][] {
  if (header === undefined || header === '') return [];
  return String(header)
    .split(',')
    .map((pair) => {
      const [k, v] = pair.trim().split(' ');
      return [k!, v === undefined ? '' : Buffer.from(v, 'base64').toString('utf8')] as [string, string];
    });
}

/** One PATCH of `length` bytes streamed from `body` (large uploads, never held in memory). */
export function streamPatch(url: string, offset: number, length: number, body: Readable): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TR, ...OOS, 'Upload-Offset': String(offset), 'Content-Length': String(length) },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error('PATCH idle for 120 s')));
    req.on('error', reject);
    pipeline(body, req).catch(reject);
  });
}
