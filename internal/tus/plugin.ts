import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UPLOAD_ID, type TusCore } from './core.js';
import { applyCors } from './cors.js';
import { answerCutBodiesInTusFormat } from './cut-body.js';
import { errors, TusError } from './errors.js';
import { TUS_VERSION, isUnderBasePath, single } from './headers.js';
import { closeAfterResponse } from './respond.js';
import { StorageUnavailableError } from '../storage/store.js';
import { handleDelete } from './handlers/delete.js';
import { handleGet } from './handlers/get.js';
import { handleHead } from './handlers/head.js';
import { handleOptions } from './handlers/options.js';
import { handlePatch } from './handlers/patch.js';
import { handlePost } from './handlers/post.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export interface TusPluginOptions {
  core: TusCore;
}

/** The tus 1.0.0 endpoint at the base path (with and without its trailing slash). */
export async function tusPlugin(app: FastifyInstance, { core }: TusPluginOptions): Promise<void> {
  const base = core.opts.basePath;
  const baseNoSlash = base.slice(0, -1);

  // Bodies are streamed by the handlers themselves, straight from the socket to the store.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  app.setErrorHandler((err, req, reply) => sendError(core, req, reply, err));
  answerCutBodiesInTusFormat(app.server, base);

  const handler = (req: FastifyRequest, reply: FastifyReply) => dispatch(core, req, reply, base);
  if (baseNoSlash !== '') app.route({ method: METHODS, url: baseNoSlash, handler });
  app.route({ method: METHODS, url: `${base}*`, handler });
  // With base path `/`, `/*` already matches `/` (and GET `/` stays the DEX root document).
}

/** Answers a request to the tus base path made with a method Fastify has no route for (e.g. TRACE). */
export function tusMethodNotAllowed(core: TusCore, req: FastifyRequest, reply: FastifyReply): boolean {
  const base = core.opts.basePath;
  if (!isUnderBasePath(req.url, base)) return false;
  const onCollection = req.url.split('?')[0]!.length <= base.length;
  sendError(core, req, reply, errors.methodNotAllowed(onCollection ? 'POST' : allowForUpload(core)));
  return true;
}

/** A URL Fastify cannot decode (e.g. a broken `%`) under the tus base path names no upload: tus 404, not a JSON 400. */
export function tusBadUrl(core: TusCore, req: FastifyRequest, reply: FastifyReply): boolean {
  if (!isUnderBasePath(req.url, core.opts.basePath)) return false;
  sendError(core, req, reply, errors.notFound());
  return true;
}

/** Headers for an answer given before the tus handler runs (the auth check), so that tus clients and browsers read it. */
export function tusRefusalHeaders(core: TusCore, req: FastifyRequest, reply: FastifyReply): void {
  reply.header('Tus-Resumable', TUS_VERSION);
  try {
    applyCors(req, reply, core.opts.corsAllowOrigin);
  } catch {
    // An origin that is not allowed gets no CORS headers; the refusal stands.
  }
}

function allowForUpload(core: TusCore): string {
  return core.opts.disableDownload ? 'HEAD, PATCH, DELETE' : 'GET, HEAD, PATCH, DELETE';
}

async function dispatch(core: TusCore, req: FastifyRequest, reply: FastifyReply, base: string): Promise<void> {
  reply.header('Tus-Resumable', TUS_VERSION);
  reply.header('X-Content-Type-Options', 'nosniff');
  applyCors(req, reply, core.opts.corsAllowOrigin);

  let method = req.method;
  const override = single(req.headers['x-http-method-override']);
  if (method === 'POST' && override) method = override.trim().toUpperCase();
  core.stats.request(method);

  if (method === 'OPTIONS') return handleOptions(core, reply);
  const tusResumable = single(req.headers['tus-resumable']);
  if (method !== 'GET' && !(method === 'HEAD' && tusResumable === undefined) && tusResumable !== TUS_VERSION) {
    throw errors.unsupportedVersion();
  }

  const path = req.url.split('?')[0]!;
  const rest = path.length <= base.length ? '' : path.slice(base.length);
  if (rest === '') {
    if (method === 'POST') return handlePost(core, req, reply);
    throw errors.methodNotAllowed('POST');
  }
  const id = parseId(rest);
  switch (method) {
    case 'HEAD':
      return handleHead(core, req, reply, id);
    case 'PATCH':
      return handlePatch(core, req, reply, id);
    case 'DELETE':
      return handleDelete(core, req, reply, id);
    case 'GET':
      if (core.opts.disableDownload) throw errors.methodNotAllowed(allowForUpload(core));
      return handleGet(core, req, reply, id);
    default:
      throw errors.methodNotAllowed(allowForUpload(core));
  }
}

/** The last path segment, URL-decoded; only our own id shape can name an upload (no `/`, `..`, NUL...). */
function parseId(rest: string): string {
  const segment = rest.endsWith('/') ? rest.slice(0, -1) : rest;
  let id: string;
  try {
    id = decodeURIComponent(segment);
  } catch {
    throw errors.notFound();
  }
  if (!UPLOAD_ID.test(id)) throw errors.notFound();
  return id;
}

function sendError(core: TusCore, req: FastifyRequest, reply: FastifyReply, err: unknown): void {
  let tusErr: TusError;
  if (err instanceof TusError) tusErr = err;
  // Fastify refuses a syntactically invalid Content-Type before our handler runs: same answer as ours.
  else if ((err as { code?: string }).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') tusErr = errors.invalidContentType();
  else if (err instanceof StorageUnavailableError) {
    core.log.error({ err, url: req.url, method: req.method }, 'upload storage unavailable');
    tusErr = errors.storageUnavailable();
  } else {
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      tusErr = new TusError(status, 'ERR_BAD_REQUEST', (err as Error).message);
    } else {
      core.log.error({ err, url: req.url, method: req.method }, 'tus request failed');
      tusErr = errors.internal();
    }
  }
  core.stats.error(tusErr.status, tusErr.code);
  if (tusErr.status >= 500) core.log.warn({ code: tusErr.code, url: req.url, method: req.method }, tusErr.message);
  // A body left unread (the store failed mid-PATCH) is drained for a moment, then its connection is closed.
  if (!req.raw.complete) closeAfterResponse(reply);
  reply.removeHeader('Upload-Offset');
  reply.header('Tus-Resumable', TUS_VERSION);
  reply.header('X-Content-Type-Options', 'nosniff');
  reply.code(tusErr.status).headers(tusErr.headers).header('Content-Type', 'text/plain; charset=utf-8');
  if (req.method === 'HEAD') reply.send();
  else reply.send(`${tusErr.code}: ${tusErr.message}\n`);
}
