import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FieldConfig } from '../manifest/config.js';
import { validateManifest, type Manifest } from '../manifest/validate.js';
import { UPLOAD_ID } from '../tus/core.js';
import { errorBody } from './pages/errors.js';
import { landingBody } from './pages/landing.js';
import { loginBody } from './pages/login.js';
import { fieldErrorText, manifestBody } from './pages/manifest.js';
import { detailsFragment, statusBody } from './pages/status.js';
import type { UiContext } from './server.js';
import { ConfigNotFoundError, FIXED_FIELDS, listDataStreams, streamFields, type DataStream } from './streams.js';
import { TOKEN_COOKIE, userToken } from './token.js';

type Query = Record<string, string | string[] | undefined>;
const first = (v: string | string[] | undefined): string => (Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));

/** `?stream=<id>/<route>` (the landing page's choice) or `?data_stream_id=&data_stream_route=` (the original's). */
function streamOf(q: Query): DataStream {
  const combined = first(q['stream']);
  if (combined) {
    const at = combined.indexOf('/');
    return at < 0 ? { id: combined, route: '' } : { id: combined.slice(0, at), route: combined.slice(at + 1) };
  }
  return { id: first(q['data_stream_id']), route: first(q['data_stream_route']) };
}

/** A path of this UI to go back to after signing in (never another site). */
const safeNext = (next: string) => (/^\/(?![/\\])/.test(next) ? next : '/');

export async function uiRoutes(app: FastifyInstance, { ctx }: { ctx: UiContext }): Promise<void> {
  const { configs, api } = ctx;
  const tusPath = ctx.config.tus.basePath;

  /** With OAuth on, a page needs a token the API's verifier accepts; otherwise the user is sent to sign in. */
  const token = async (req: FastifyRequest, reply: FastifyReply): Promise<string | undefined | false> => {
    if (!ctx.auth) return undefined;
    const t = userToken(req, reply, ctx.auth);
    if (t) {
      try {
        await ctx.auth.verifyBearer(`Bearer ${t}`);
        return t;
      } catch {
        /* expired or refused: sign in again */
      }
    }
    void reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
    return false;
  };

  const renderForm = (reply: FastifyReply, status: number, stream: DataStream, fields: FieldConfig[], extra: Partial<Parameters<typeof manifestBody>[0]> = {}) =>
    ctx.render(
      reply,
      status,
      extra.errors?.size || extra.otherErrors?.length ? 'Error: Manifest' : 'Manifest',
      manifestBody({ stream, fields, csrfToken: reply.generateCsrf(), ...extra }),
      { newUploadLink: true },
    );

  /** The stream's fields, or the 404 page with the loader's text (as the original shows it). */
  const fieldsOr404 = async (reply: FastifyReply, stream: DataStream): Promise<FieldConfig[] | undefined> => {
    try {
      return await streamFields(configs, stream);
    } catch (err) {
      if (!(err instanceof ConfigNotFoundError)) throw err;
      ctx.render(
        reply,
        404,
        'Data stream not found',
        errorBody('Data stream not found', `There is no manifest config for data stream "${stream.id}" and route "${stream.route}".`, [
          err.message,
          'validation failure',
          'manifest validation config file not found',
        ]),
        { newUploadLink: true },
      );
      return undefined;
    }
  };

  app.get('/', async (req, reply) => {
    if ((await token(req, reply)) === false) return reply;
    const streams = ctx.lister ? await listDataStreams(ctx.lister, configs, ctx.log) : undefined;
    return ctx.render(reply, 200, 'DEX Upload', landingBody(streams));
  });

  app.get('/manifest', async (req, reply) => {
    if ((await token(req, reply)) === false) return reply;
    const stream = streamOf(req.query as Query);
    const fields = await fieldsOr404(reply, stream);
    if (!fields) return reply;
    return renderForm(reply, 200, stream, fields);
  });

  app.post('/upload', async (req, reply) => {
    const t = await token(req, reply);
    if (t === false) return reply;
    const body = (req.body ?? {}) as Query;
    const stream = { id: first(body['data_stream_id']), route: first(body['data_stream_route']) };
    const fields = await fieldsOr404(reply, stream);
    if (!fields) return reply;
    // The manifest: version 2.0, the stream, and the config's fields the sender filled in (an empty box is a
    // field not given, so a required one is reported missing). Other form keys are not part of it.
    const values: Record<string, string> = {};
    const manifest: Manifest = { version: '2.0', data_stream_id: stream.id, data_stream_route: stream.route };
    for (const f of fields) {
      if (FIXED_FIELDS.includes(f.field_name)) continue;
      const v = first(body[f.field_name]).trim();
      values[f.field_name] = v;
      if (v !== '') manifest[f.field_name] = v;
    }
    const verdict = await validateManifest(manifest, configs);
    if (verdict.errors.length > 0) {
      const errors = new Map((verdict.fieldErrors ?? []).map((e) => [e.field, fieldErrorText(e.field, e.kind)]));
      const otherErrors = errors.size === 0 ? verdict.errors : [];
      return renderForm(reply, 400, stream, fields, { values, errors, otherErrors });
    }
    const created = await api.create(manifest, t);
    if (created.ok) return reply.redirect(`/status/${created.id}`, 303);
    if (created.validationErrors) {
      return renderForm(reply, 400, stream, fields, { values, otherErrors: created.validationErrors.filter((e) => e !== 'validation failure') });
    }
    req.log.warn({ status: created.status, message: created.message }, 'sender UI: the upload API refused the creation');
    return ctx.render(reply, created.status, 'Upload not created', errorBody('The upload could not be created', `The upload API answered ${created.status}: ${created.message}`), {
      newUploadLink: true,
    });
  });
  // The original's router: /upload takes POST only.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/upload',
    handler: (_req, reply) => ctx.render(reply.header('Allow', 'POST'), 405, 'Method not allowed', errorBody('Method not allowed', 'Start from the first page.')),
  });

  /** The upload's /info, or the page that says why there is none. */
  const infoOr = async (req: FastifyRequest, reply: FastifyReply, fragment: boolean) => {
    const t = await token(req, reply);
    if (t === false) return undefined;
    const { id } = req.params as { id: string };
    const result = UPLOAD_ID.test(id) ? await api.info(id, t) : ({ ok: false, status: 404, message: '' } as const);
    if (result.ok) return { id, info: result.info, token: t };
    if (fragment) {
      reply.code(result.status).type('text/plain; charset=utf-8').send(`${result.message || 'upload not found'}\n`);
    } else if (result.status === 404) {
      ctx.render(reply, 404, 'Upload not found', errorBody('Upload not found', `There is no upload with the ID ${id}.`), { newUploadLink: true });
    } else {
      ctx.render(reply, result.status, 'Upload status unavailable', errorBody('The upload status is not available', `The upload API answered ${result.status}: ${result.message}`), {
        newUploadLink: true,
      });
    }
    return undefined;
  };

  app.get('/status/:id', async (req, reply) => {
    const found = await infoOr(req, reply, false);
    if (!found) return reply;
    const uploadUrl = `${ctx.publicApiBase(req)}${tusPath}${found.id}`;
    return ctx.render(
      reply,
      200,
      'DEX Upload',
      statusBody({ id: found.id, info: found.info, uploadUrl, detailsUrl: `/status/${found.id}/details`, token: found.token }),
      { newUploadLink: true, scripts: [{ src: ctx.assets.tus }, { src: ctx.assets.status, module: true }] },
    );
  });

  app.get('/status/:id/details', async (req, reply) => {
    const found = await infoOr(req, reply, true);
    if (!found) return reply;
    return reply.type('text/html; charset=utf-8').send(detailsFragment(found.id, found.info).value);
  });

  if (ctx.auth) {
    const auth = ctx.auth;
    app.get('/login', async (req, reply) => {
      const next = safeNext(first((req.query as Query)['next']));
      return ctx.render(reply, 200, 'Sign in', loginBody({ csrfToken: reply.generateCsrf(), next }));
    });
    app.post('/login', async (req, reply) => {
      const body = (req.body ?? {}) as Query;
      const next = safeNext(first(body['next']));
      const t = first(body['token']).trim().replace(/^Bearer\s+/i, '');
      try {
        if (!t) throw new Error('Enter your access token.');
        await auth.verifyBearer(`Bearer ${t}`);
      } catch (err) {
        const error = t ? `The token was refused: ${(err as Error).message}` : (err as Error).message;
        return ctx.render(reply, 401, 'Error: Sign in', loginBody({ csrfToken: reply.generateCsrf(), next, error }));
      }
      reply.setCookie(TOKEN_COOKIE, t, { path: '/', httpOnly: true, sameSite: 'strict', signed: true, secure: 'auto' });
      return reply.redirect(next, 303);
    });
  }
}
