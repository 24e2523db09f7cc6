// The auth check as a Fastify onRequest hook, applied by wrapping the plugins whose routes it guards.
import type { FastifyInstance, FastifyPluginOptions, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { closeAfterResponse } from '../tus/respond.js';
import { AuthError } from './errors.js';
import type { BearerVerifier } from './verifier.js';

export interface AuthHookOptions {
  /** Let OPTIONS through without a token (CORS preflight and tus discovery, which reveal nothing). */
  allowOptions: boolean;
  /** Adds the headers a client of these routes needs to read a refusal (CORS, Tus-Resumable). */
  decorateRefusal?: (req: FastifyRequest, reply: FastifyReply) => void;
}

/** Refuses a request whose bearer token does not pass `verifier`, before any handler (or body) is touched. */
export function authHook(verifier: BearerVerifier, opts: AuthHookOptions): onRequestHookHandler {
  return async (req, reply) => {
    if (opts.allowOptions && req.method === 'OPTIONS') return;
    try {
      await verifier.verifyBearer(req.headers.authorization);
    } catch (err) {
      const refusal = err as AuthError;
      req.log.debug({ status: refusal.status, reason: refusal.message }, 'request refused by the auth check');
      sendRefusal(req, reply, refusal, opts);
      return reply;
    }
  };
}

type Plugin<O> = (app: FastifyInstance, opts: O) => Promise<void>;

/** `plugin` with the hook on every one of its routes (and on nothing outside it); `plugin` itself when auth is off. */
export function guarded<O extends FastifyPluginOptions>(plugin: Plugin<O>, hook: onRequestHookHandler | undefined): Plugin<O> {
  if (!hook) return plugin;
  return async (app, opts) => {
    app.addHook('onRequest', hook);
    await app.register(plugin, opts);
  };
}

/** The refusal as `http.Error` writes it (dex-api.md §3), with the Bearer challenge of RFC 6750 on 401 and 403. */
export function sendRefusal(req: FastifyRequest, reply: FastifyReply, err: AuthError, opts: Pick<AuthHookOptions, 'decorateRefusal'> = {}): void {
  opts.decorateRefusal?.(req, reply);
  reply.code(err.status).header('Content-Type', 'text/plain; charset=utf-8').header('X-Content-Type-Options', 'nosniff');
  if (err.challenge) reply.header('WWW-Authenticate', err.challenge);
  // A refused upload body is never read: drain it briefly so the client sees the answer, then close.
  if (hasBody(req)) closeAfterResponse(reply);
  if (req.method === 'HEAD') reply.send();
  else reply.send(`${err.message}\n`);
}

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
