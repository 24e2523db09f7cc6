import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The seam to OAuth (issue 13): when the upload API requires bearer tokens, the UI checks the user's token with
 * the same verifier and forwards it, in the calls the UI server makes and in tus-js-client's headers.
 */
export interface TokenVerifier {
  /** Resolves when `Authorization: Bearer <token>` is acceptable; rejects (with a message fit for the user) otherwise. */
  verifyBearer(header: string | undefined): Promise<unknown>;
}

/** The cookie the sign-in page sets: signed, HttpOnly, SameSite=Strict. */
export const TOKEN_COOKIE = 'dex_token';

/**
 * The user's token: `Authorization: Bearer` on the page request (an auth proxy in front of the UI), else the
 * sign-in cookie. `undefined` when there is none or auth is off.
 */
export function userToken(req: FastifyRequest, reply: FastifyReply, auth: TokenVerifier | undefined): string | undefined {
  if (!auth) return undefined;
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (m) return m[1];
  const cookie = req.cookies[TOKEN_COOKIE];
  if (!cookie) return undefined;
  const unsigned = reply.unsignCookie(cookie);
  return unsigned.valid && unsigned.value ? unsigned.value : undefined;
}
