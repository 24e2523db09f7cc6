// The bearer-token check of dex-api.md §3 with decisions.md's fixes, usable by any listener: the upload API's hook
// (plugin.ts) and the sender UI, which checks the user's token before forwarding it to the API.
import type { Logger } from '../logging/logger.js';
import { audiencesOf, requireScopes, scopesOf } from './claims.js';
import { AuthError, authErrors } from './errors.js';
import { Introspector, IntrospectionUnavailable } from './introspection.js';
import { OidcJwtVerifier } from './jwt.js';

export interface AuthSettings {
  issuerUrl?: string;
  introspectionUrl?: string;
  requiredScopes: string[];
  audience?: string;
}

/** Timings, for tests; the defaults are what the server uses. */
export interface AuthTuning {
  clockToleranceSec?: number;
  jwksCooldownMs?: number;
  introspectionCacheMs?: number;
  timeoutMs?: number;
}

export interface VerifiedToken {
  kind: 'jwt' | 'opaque';
  /** The JWT's claims, or the introspection answer. */
  claims: Record<string, unknown>;
  scopes: string[];
  subject?: string;
}

// RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export class BearerVerifier {
  private readonly jwt: OidcJwtVerifier;
  private readonly introspector?: Introspector;
  private readonly clockToleranceSec: number;

  constructor(
    private readonly settings: AuthSettings,
    private readonly log: Logger,
    tuning: AuthTuning = {},
  ) {
    if (!settings.issuerUrl) throw new Error('BearerVerifier: an issuer URL is required');
    this.clockToleranceSec = tuning.clockToleranceSec ?? 30;
    this.jwt = new OidcJwtVerifier({
      issuer: settings.issuerUrl,
      audience: settings.audience,
      log,
      clockToleranceSec: this.clockToleranceSec,
      jwksCooldownMs: tuning.jwksCooldownMs,
      timeoutMs: tuning.timeoutMs,
    });
    if (settings.introspectionUrl) {
      this.introspector = new Introspector({ url: settings.introspectionUrl, log, cacheMs: tuning.introspectionCacheMs, timeoutMs: tuning.timeoutMs });
    }
  }

  /**
   * Checks an `Authorization` header value. Resolves with the token's claims and scopes; rejects with an AuthError
   * whose `status` (401, 403, 500), `message` (the body, without newline) and `challenge` (`WWW-Authenticate`) are
   * the answer to give. Never rejects with anything else, and no message ever contains the token.
   */
  async verifyBearer(header: string | undefined): Promise<VerifiedToken> {
    if (header === undefined || header === '') throw authErrors.missingHeader();
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) throw authErrors.badFormat();
    try {
      const verified = token.split('.').length === 3 ? await this.checkJwt(token) : await this.checkOpaque(token);
      requireScopes(verified.scopes, this.settings.requiredScopes);
      return verified;
    } catch (err) {
      if (err instanceof AuthError) throw err;
      this.log.error({ reason: String((err as Error)?.message ?? err).split(token).join('[token]') }, 'unexpected error in the auth check');
      throw authErrors.unknown();
    }
  }

  /** Fetches the issuer's discovery document ahead of the first request (failures are logged, not thrown). */
  warmUp(): Promise<void> {
    return this.jwt.warmUp();
  }

  private async checkJwt(token: string): Promise<VerifiedToken> {
    const claims = (await this.jwt.verify(token)) as Record<string, unknown>;
    return { kind: 'jwt', claims, scopes: scopesOf(claims), subject: typeof claims['sub'] === 'string' ? claims['sub'] : undefined };
  }

  /** RFC 7662; the answer's own `exp`, `nbf` and `aud` are checked too, whatever the endpoint says about them. */
  private async checkOpaque(token: string): Promise<VerifiedToken> {
    const invalid = authErrors.invalidToken;
    if (!this.introspector) throw invalid('the token is not a JWT and no introspection endpoint is configured');
    let answer: Record<string, unknown>;
    try {
      answer = await this.introspector.introspect(token);
    } catch (err) {
      if (err instanceof IntrospectionUnavailable) throw invalid('token introspection failed');
      throw err;
    }
    if (answer['active'] !== true) throw invalid('token is not active');
    const now = Date.now() / 1000;
    const exp = answer['exp'];
    if (typeof exp === 'number' && exp + this.clockToleranceSec <= now) throw invalid('token is expired');
    const nbf = answer['nbf'];
    if (typeof nbf === 'number' && nbf - this.clockToleranceSec > now) throw invalid('token is not valid yet');
    const audience = this.settings.audience;
    if (audience !== undefined && !audiencesOf(answer).includes(audience)) throw invalid(`token audience does not include "${audience}"`);
    return { kind: 'opaque', claims: answer, scopes: scopesOf(answer), subject: typeof answer['sub'] === 'string' ? answer['sub'] : undefined };
  }
}

/** The verifier for OAUTH_* settings, or undefined when auth is off; fetches the discovery document in the background. */
export function startAuth(settings: AuthSettings & { enabled: boolean }, log: Logger): BearerVerifier | undefined {
  if (!settings.enabled) return undefined;
  const verifier = new BearerVerifier(settings, log);
  log.info(
    { issuer: settings.issuerUrl, introspection: settings.introspectionUrl !== undefined, requiredScopes: settings.requiredScopes, audience: settings.audience },
    'OAuth on: the tus routes and /info need a bearer token',
  );
  void verifier.warmUp();
  return verifier;
}
