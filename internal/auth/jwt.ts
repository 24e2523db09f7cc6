// JWT access tokens: OIDC discovery from the issuer, keys from its JWKS (both cached), verification with jose.
import { createRemoteJWKSet, decodeProtectedHeader, errors as jose, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../logging/logger.js';
import { audiencesOf, quoted } from './claims.js';
import { authErrors, AuthError } from './errors.js';
import { fetchWithDeadline, jsonObject } from './fetch.js';

/** Asymmetric signatures only: `none` and HMAC (whose key would be the public key, RFC 8725 §2.1) are refused. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface JwtVerifierOptions {
  issuer: string;
  /** When set, `aud` must contain it. */
  audience?: string;
  log: Logger;
  /** Leeway for `exp` and `nbf` against clock skew (seconds). */
  clockToleranceSec?: number;
  /** How long a discovery document is used before it is fetched again. */
  discoveryMaxAgeMs?: number;
  /** How long a JWKS is used before it is fetched again (jose's `cacheMaxAge`). */
  jwksMaxAgeMs?: number;
  /**
   * After a fetch, how long an unknown key id is refused without fetching the JWKS again (jose's `cooldownDuration`,
   * whose default is 30 s). Short, so that a key the issuer has just added is found within seconds, while a stream of
   * tokens with made-up key ids still costs the issuer at most one fetch per period.
   */
  jwksCooldownMs?: number;
  timeoutMs?: number;
}

interface Provider {
  jwksUri: string;
  keys: JWTVerifyGetKey;
  fetchedAt: number;
}

/** A failure to get the keys themselves (as opposed to a token whose key is not among them). */
class KeyFetchError extends Error {}

export class OidcJwtVerifier {
  private provider?: Provider;
  private pending?: Promise<Provider>;
  private readonly opts: Required<Omit<JwtVerifierOptions, 'audience'>> & { audience?: string };

  constructor(options: JwtVerifierOptions) {
    this.opts = {
      ...options,
      clockToleranceSec: options.clockToleranceSec ?? 30,
      discoveryMaxAgeMs: options.discoveryMaxAgeMs ?? 60 * 60_000,
      jwksMaxAgeMs: options.jwksMaxAgeMs ?? 10 * 60_000,
      jwksCooldownMs: options.jwksCooldownMs ?? 5_000,
      timeoutMs: options.timeoutMs ?? 5_000,
    };
  }

  /** The verified claims, or an AuthError (401 for the token, 500 when the issuer cannot be discovered). */
  async verify(token: string): Promise<JWTPayload> {
    const provider = await this.getProvider();
    try {
      return await this.verifyWith(provider, token);
    } catch (err) {
      // A key id that even a fresh JWKS lacks: the issuer may have moved its keys (a new jwks_uri).
      if (err instanceof jose.JWKSNoMatchingKey && Date.now() - provider.fetchedAt >= this.opts.jwksCooldownMs) {
        const current = await this.getProvider(true).catch(() => provider);
        if (current.jwksUri !== provider.jwksUri) {
          try {
            return await this.verifyWith(current, token);
          } catch (again) {
            throw this.explain(again, token);
          }
        }
      }
      throw this.explain(err, token);
    }
  }

  /** Fetches the discovery document ahead of the first request; failures are only logged. */
  async warmUp(): Promise<void> {
    await this.getProvider().catch(() => undefined);
  }

  private verifyWith(provider: Provider, token: string): Promise<JWTPayload> {
    return jwtVerify(token, provider.keys, {
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      algorithms: ASYMMETRIC_ALGORITHMS,
      clockTolerance: this.opts.clockToleranceSec,
      requiredClaims: ['exp'],
    }).then((r) => r.payload);
  }

  /** The cached provider; a stale one is refreshed, and kept in use if the issuer cannot be reached. */
  private async getProvider(force = false): Promise<Provider> {
    const current = this.provider;
    if (current && !force && Date.now() - current.fetchedAt < this.opts.discoveryMaxAgeMs) return current;
    this.pending ??= this.discover().finally(() => (this.pending = undefined));
    try {
      this.provider = await this.pending;
      return this.provider;
    } catch (err) {
      const reason = (err as Error).message;
      if (current) {
        this.opts.log.warn({ issuer: this.opts.issuer, reason }, 'OIDC discovery failed; still using the previous document');
        return current;
      }
      this.opts.log.error({ issuer: this.opts.issuer, reason }, 'OIDC discovery failed');
      throw authErrors.provider(reason);
    }
  }

  private async discover(): Promise<Provider> {
    const { issuer, timeoutMs } = this.opts;
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const res = await fetchWithDeadline(url, { headers: { accept: 'application/json' } }, timeoutMs);
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`${res.status} ${res.statusText} from ${url}`);
    }
    const doc = await jsonObject(res, 'provider discovery object');
    if (doc['issuer'] !== issuer) {
      throw new Error(`oidc: issuer did not match the issuer returned by provider, expected ${quoted(issuer)} got ${quoted(doc['issuer'])}`);
    }
    const jwksUri = doc['jwks_uri'];
    if (typeof jwksUri !== 'string' || !/^https?:\/\//i.test(jwksUri)) throw new Error('oidc: the discovery document has no http(s) jwks_uri');
    if (this.provider?.jwksUri === jwksUri) return { ...this.provider, fetchedAt: Date.now() };
    const remote = createRemoteJWKSet(new URL(jwksUri), {
      cacheMaxAge: this.opts.jwksMaxAgeMs,
      cooldownDuration: this.opts.jwksCooldownMs,
      timeoutDuration: timeoutMs,
    });
    const keys: JWTVerifyGetKey = async (header, jws) => {
      try {
        return await remote(header, jws);
      } catch (err) {
        if (err instanceof jose.JWKSNoMatchingKey || err instanceof jose.JWKSMultipleMatchingKeys) throw err;
        throw new KeyFetchError((err as Error).message);
      }
    };
    return { jwksUri, keys, fetchedAt: Date.now() };
  }

  /** jose's error as the 401 go-oidc would give (dex-api.md §3 pins the prefixes of three of them). */
  private explain(err: unknown, token: string): AuthError {
    if (err instanceof AuthError) return err;
    const claims = ((err as { payload?: JWTPayload }).payload ?? {}) as Record<string, unknown>;
    const invalid = authErrors.invalidToken;
    if (err instanceof jose.JWTExpired) {
      const exp = typeof claims['exp'] === 'number' ? new Date(claims['exp'] * 1000).toISOString() : 'none';
      return invalid(`oidc: token is expired (Token Expiry: ${exp})`);
    }
    if (err instanceof jose.JWTClaimValidationFailed) {
      switch (err.claim) {
        case 'iss':
          return invalid(`oidc: id token issued by a different provider, expected ${quoted(this.opts.issuer)} got ${quoted(claims['iss'])}`);
        case 'aud':
          return invalid(`oidc: expected audience ${quoted(this.opts.audience)} got ${quoted(audiencesOf(claims))}`);
        case 'nbf':
          return invalid(`oidc: current time ${new Date().toISOString()} before the nbf (not before) time: ${notBefore(claims)}`);
        default:
          return invalid(`oidc: ${err.message}`);
      }
    }
    if (err instanceof jose.JOSEAlgNotAllowed) {
      return invalid(`oidc: id token signed with unsupported algorithm, expected ${quoted(ASYMMETRIC_ALGORITHMS)} got ${quoted(algOf(token))}`);
    }
    if (err instanceof KeyFetchError) {
      this.opts.log.warn({ issuer: this.opts.issuer, reason: err.message }, 'the issuer keys (JWKS) could not be fetched');
      return invalid(`failed to verify signature: fetching keys: ${err.message}`);
    }
    if (err instanceof jose.JWSSignatureVerificationFailed || err instanceof jose.JWKSNoMatchingKey || err instanceof jose.JWKSMultipleMatchingKeys) {
      return invalid(`failed to verify signature: ${err.message}`);
    }
    if (err instanceof jose.JOSEError) return invalid(`oidc: malformed jwt: ${err.message}`);
    throw err;
  }
}

function notBefore(claims: Record<string, unknown>): string {
  return typeof claims['nbf'] === 'number' ? new Date(claims['nbf'] * 1000).toISOString() : quoted(claims['nbf']);
}

function algOf(token: string): unknown {
  try {
    return decodeProtectedHeader(token).alg;
  } catch {
    return undefined;
  }
}
