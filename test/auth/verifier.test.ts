// The bearer-token verifier (internal/auth) against a real OIDC issuer on loopback: exact answers of dex-api.md §3
// with decisions.md's fixes, caching of discovery, JWKS and introspection, key rotation, and messages without tokens.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { loadConfig } from '../../internal/config/config.js';
import { createLogger } from '../../internal/logging/logger.js';
import { AuthError } from '../../internal/auth/errors.js';
import { BearerVerifier, type AuthSettings, type AuthTuning } from '../../internal/auth/verifier.js';
import { claimsOf, nowSeconds, startIssuer, tamperedToken, unsignedToken, type SigningKey, type TestIssuer } from '../helpers/oidc-issuer.js';

const AUDIENCE = 'dex-upload';
const SCOPES = 'dex:upload dex:info';

describe('auth: BearerVerifier', () => {
  let issuer: TestIssuer;
  let logs = '';
  const tokensSeen: string[] = [];
  const log = createLogger(loadConfig({ LOGGER_DEBUG_ON: 'true' }), new Writable({ write: (c, _e, cb) => ((logs += c.toString()), cb()) }));

  const verifier = (settings: Partial<AuthSettings> = {}, tuning: AuthTuning = {}) =>
    new BearerVerifier({ issuerUrl: issuer.url, introspectionUrl: issuer.introspectionUrl, requiredScopes: ['dex:upload'], audience: AUDIENCE, ...settings }, log, tuning);

  /** The AuthError a header gets; the message must never contain the token. */
  async function refusal(v: BearerVerifier, header: string | undefined): Promise<AuthError> {
    const token = header?.replace(/^\S+ +/, '') ?? '';
    if (token.length > 8) tokensSeen.push(token);
    const err = await v.verifyBearer(header).then(
      () => assert.fail(`accepted: ${header}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AuthError, String(err));
    if (token.length > 8) assert.ok(!err.message.includes(token), `message contains the token: ${err.message}`);
    return err;
  }

  async function assertRefused(v: BearerVerifier, header: string | undefined, status: number, message: string | RegExp, challenge?: string): Promise<void> {
    const err = await refusal(v, header);
    assert.equal(err.status, status, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    if (challenge !== undefined) assert.equal(err.challenge, challenge);
  }

  const bearer = (t: string) => `Bearer ${t}`;

  before(async () => {
    issuer = await startIssuer({ audience: AUDIENCE, scope: SCOPES });
  });
  after(async () => {
    await issuer.close();
    for (const t of tokensSeen) assert.ok(!logs.includes(t), 'a token reached the log');
  });

  describe('the Authorization header', () => {
    it('missing or empty → 401 "Authorization header missing" with a bare Bearer challenge', async () => {
      const v = verifier();
      await assertRefused(v, undefined, 401, 'Authorization header missing', 'Bearer');
      await assertRefused(v, '', 401, 'Authorization header missing', 'Bearer');
    });

    it('short, wrong scheme, empty token or junk after the token → 401 "Authorization header format is invalid"', async () => {
      const v = verifier();
      const token = await issuer.token();
      for (const h of ['Bearer', 'Bearer ', 'Bearer    ', 'Basic dXNlcjpwYXNz', `Token ${token}`, `Bearer${token}`, `Bearer ${token} extra`, `Bearer ${token},x`, 'Bearer a"b']) {
        await assertRefused(v, h, 401, 'Authorization header format is invalid', 'Bearer error="invalid_request"');
      }
    });

    it('the scheme is case-insensitive (RFC 7235) and extra spaces are allowed', async () => {
      const v = verifier();
      const token = await issuer.token();
      for (const h of [`bearer ${token}`, `BEARER ${token}`, `Bearer   ${token}`, `Bearer ${token} `]) {
        assert.equal((await v.verifyBearer(h)).kind, 'jwt', h);
      }
    });
  });

  describe('JWTs', () => {
    it('a valid token with the required scopes is accepted, whatever asymmetric algorithm signed it (RS256, ES256, EdDSA)', async () => {
      const v = verifier();
      for (const key of issuer.keys) {
        const r = await v.verifyBearer(bearer(await issuer.token({}, { key })));
        assert.equal(r.kind, 'jwt', key.alg);
        assert.equal(r.subject, 'user-1');
        assert.deepEqual(r.scopes, ['dex:upload', 'dex:info']);
      }
    });

    it('alg "none" → 401, without fetching keys', async () => {
      const v = verifier();
      const claims = claimsOf(await issuer.token());
      const before = issuer.counts.jwks;
      await assertRefused(v, bearer(unsignedToken(claims)), 401, /^Failed to verify token: oidc: id token signed with unsupported algorithm, expected \[.*\] got "none"$/, 'Bearer error="invalid_token"');
      assert.equal(issuer.counts.jwks, before);
    });

    it('HS256 signed with the issuer\'s public key (key confusion) → 401', async () => {
      const v = verifier();
      const secret = new TextEncoder().encode(await issuer.publicPem());
      const claims = claimsOf(await issuer.token());
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: issuer.keys[0]!.kid, typ: 'JWT' }).sign(secret);
      await assertRefused(v, bearer(forged), 401, /^Failed to verify token: oidc: id token signed with unsupported algorithm, .* got "HS256"$/);
      // A JWK-shaped secret (the modulus) fares no better.
      const forged2 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(String(issuer.keys[0]!.publicJwk.n)));
      await assertRefused(v, bearer(forged2), 401, /got "HS512"$/);
    });

    it('a tampered payload (scopes raised, subject changed) → 401 "failed to verify signature"', async () => {
      const v = verifier({ requiredScopes: ['dex:admin'] });
      const token = await issuer.token({ scope: 'dex:upload' });
      const forged = tamperedToken(token, { ...claimsOf(token), scope: 'dex:admin', sub: 'admin' });
      await assertRefused(v, bearer(forged), 401, /^Failed to verify token: failed to verify signature: /);
      // A signature cut off or altered is the same.
      await assertRefused(v, bearer(`${token.slice(0, -4)}AAAA`), 401, /^Failed to verify token: failed to verify signature: /);
    });

    it('expired → 401 "oidc: token is expired"; within the clock tolerance → accepted', async () => {
      const v = verifier();
      const exp = nowSeconds() - 3600;
      await assertRefused(v, bearer(await issuer.token({ exp, iat: exp - 60 })), 401, `Failed to verify token: oidc: token is expired (Token Expiry: ${new Date(exp * 1000).toISOString()})`);
      assert.equal((await v.verifyBearer(bearer(await issuer.token({ exp: nowSeconds() - 5 })))).kind, 'jwt');
    });

    it('without exp → 401', async () => {
      await assertRefused(verifier(), bearer(await issuer.token({ exp: undefined })), 401, /^Failed to verify token: oidc: missing required "exp" claim$/);
    });

    it('not yet valid (nbf in an hour) → 401; nbf a few seconds ahead (clock skew) → accepted', async () => {
      const v = verifier();
      await assertRefused(v, bearer(await issuer.token({ nbf: nowSeconds() + 3600 })), 401, /^Failed to verify token: oidc: current time \S+ before the nbf \(not before\) time: \S+$/);
      assert.equal((await v.verifyBearer(bearer(await issuer.token({ nbf: nowSeconds() + 5 })))).kind, 'jwt');
    });

    it('another issuer, or none → 401 "oidc: id token issued by a different provider"', async () => {
      const v = verifier();
      await assertRefused(v, bearer(await issuer.token({ iss: 'https://evil.example' })), 401, `Failed to verify token: oidc: id token issued by a different provider, expected "${issuer.url}" got "https://evil.example"`);
      await assertRefused(v, bearer(await issuer.token({ iss: `${issuer.url}/` })), 401, /^Failed to verify token: oidc: id token issued by a different provider/);
      await assertRefused(v, bearer(await issuer.token({ iss: undefined })), 401, /^Failed to verify token: oidc: id token issued by a different provider, expected ".*" got undefined$/);
    });

    it('with OAUTH_AUDIENCE: another audience or none → 401; an array containing it → accepted; without: any audience', async () => {
      const v = verifier();
      await assertRefused(v, bearer(await issuer.token({ aud: 'other-api' })), 401, `Failed to verify token: oidc: expected audience "${AUDIENCE}" got ["other-api"]`);
      await assertRefused(v, bearer(await issuer.token({ aud: undefined })), 401, `Failed to verify token: oidc: expected audience "${AUDIENCE}" got []`);
      assert.equal((await v.verifyBearer(bearer(await issuer.token({ aud: ['other-api', AUDIENCE] })))).kind, 'jwt');
      assert.equal((await verifier({ audience: undefined }).verifyBearer(bearer(await issuer.token({ aud: 'other-api' })))).kind, 'jwt');
    });

    it('an unknown key id → 401 "failed to verify signature", after one fresh look at the JWKS', async () => {
      const v = verifier({}, { jwksCooldownMs: 0 });
      await v.verifyBearer(bearer(await issuer.token()));
      const stranger = await issuer.newKey('RS256');
      const before = issuer.counts.jwks;
      await assertRefused(v, bearer(await issuer.token({}, { key: stranger })), 401, /^Failed to verify token: failed to verify signature: no applicable key found in the JSON Web Key Set$/);
      assert.ok(issuer.counts.jwks > before, 'the JWKS was fetched again on the key-id miss');
      // A published kid with a key that did not sign it is a signature failure too.
      const impostor = await issuer.token({}, { key: { ...stranger, kid: issuer.keys[0]!.kid } });
      await assertRefused(v, bearer(impostor), 401, /^Failed to verify token: failed to verify signature: /);
    });

    it('malformed JWTs (three parts that are not a JWS) → 401 "oidc: malformed jwt"', async () => {
      const v = verifier();
      const good = await issuer.token();
      const [h, p] = good.split('.');
      for (const t of ['a.b.c', `${h}.${p}.`, `${h}.${Buffer.from('not json').toString('base64url')}.${good.split('.')[2]}`, `${Buffer.from('{"alg":"RS256"').toString('base64url')}.${p}.x`]) {
        await assertRefused(v, bearer(t), 401, /^Failed to verify token: (oidc: malformed jwt|failed to verify signature): /);
      }
    });

    it('scopes: space-separated `scope`, `scp` as an array or a string; a `scope` of another type → 401 "Failed to parse token claims"', async () => {
      const v = verifier();
      assert.deepEqual((await v.verifyBearer(bearer(await issuer.token({ scope: undefined, scp: ['dex:upload', 'x'] })))).scopes, ['dex:upload', 'x']);
      assert.deepEqual((await v.verifyBearer(bearer(await issuer.token({ scope: undefined, scp: 'x dex:upload' })))).scopes, ['x', 'dex:upload']);
      await assertRefused(v, bearer(await issuer.token({ scope: 42 })), 401, 'Failed to parse token claims');
      await assertRefused(v, bearer(await issuer.token({ scope: ['dex:upload'] })), 401, 'Failed to parse token claims');
      await assertRefused(v, bearer(await issuer.token({ scope: undefined, scp: [1, 2] })), 401, 'Failed to parse token claims');
    });

    it('missing scopes → 403 "One or more required scopes not found" (the original\'s cases)', async () => {
      const forbidden = (v: BearerVerifier, h: string) => assertRefused(v, h, 403, 'One or more required scopes not found', 'Bearer error="insufficient_scope"');
      const has = 'read:scope1 read:custom1 write:scope1 write:custom1';
      await forbidden(verifier({ requiredScopes: ['read:scope1'] }), bearer(await issuer.token({ scope: undefined })));
      await forbidden(verifier({ requiredScopes: ['read:scope1', 'write:scope1', 'read:scope2'] }), bearer(await issuer.token({ scope: has })));
      await forbidden(verifier(), bearer(await issuer.token({ scope: 'dex:uploads dex:info' })));
      assert.equal((await verifier({ requiredScopes: ['read:scope1', 'write:scope1'] }).verifyBearer(bearer(await issuer.token({ scope: has })))).kind, 'jwt');
      assert.equal((await verifier({ requiredScopes: [] }).verifyBearer(bearer(await issuer.token({ scope: has })))).kind, 'jwt');
      assert.equal((await verifier({ requiredScopes: [] }).verifyBearer(bearer(await issuer.token({ scope: undefined })))).kind, 'jwt');
    });
  });

  describe('discovery and keys', () => {
    it('discovery and the JWKS are fetched once for many requests, concurrent first requests included', async () => {
      const v = verifier();
      const d0 = issuer.counts.discovery;
      const j0 = issuer.counts.jwks;
      const tokens = await Promise.all(Array.from({ length: 20 }, () => issuer.token()));
      await Promise.all(tokens.map((t) => v.verifyBearer(bearer(t))));
      for (const t of tokens) await v.verifyBearer(bearer(t));
      assert.equal(issuer.counts.discovery - d0, 1);
      assert.equal(issuer.counts.jwks - j0, 1);
    });

    it('discovery down, or a document naming another issuer → 500 "Failed to get provider"; works again once it is back', async () => {
      const token = bearer(await issuer.token());
      try {
        issuer.modes.discovery = 'reset';
        await assertRefused(verifier(), token, 500, /^Failed to get provider: GET ".*\/.well-known\/openid-configuration": fetch failed/);
        issuer.modes.discovery = 'error';
        await assertRefused(verifier(), token, 500, /^Failed to get provider: 500 Internal Server Error from /);
        issuer.modes.discovery = 'up';
        issuer.discoveryIssuer = 'https://elsewhere.example';
        const v = verifier();
        await assertRefused(v, token, 500, `Failed to get provider: oidc: issuer did not match the issuer returned by provider, expected "${issuer.url}" got "https://elsewhere.example"`);
        issuer.discoveryIssuer = undefined;
        assert.equal((await v.verifyBearer(token)).kind, 'jwt', 'a failed discovery is not cached');
      } finally {
        issuer.modes.discovery = 'up';
        issuer.discoveryIssuer = undefined;
      }
    });

    it('the JWKS unreachable → 401 "failed to verify signature: fetching keys" (fail closed)', async () => {
      try {
        issuer.modes.jwks = 'reset';
        await assertRefused(verifier(), bearer(await issuer.token()), 401, /^Failed to verify token: failed to verify signature: fetching keys: /);
        issuer.modes.jwks = 'error';
        await assertRefused(verifier(), bearer(await issuer.token()), 401, /^Failed to verify token: failed to verify signature: fetching keys: /);
      } finally {
        issuer.modes.jwks = 'up';
      }
    });

    /** Runs `fn` after `v` has verified a token of the current key and the issuer has rotated; then restores the issuer. */
    async function afterRotation(v: BearerVerifier, fn: (fresh: SigningKey, oldToken: string) => Promise<void>): Promise<void> {
      const { keys, jwksPath } = issuer;
      try {
        const oldToken = bearer(await issuer.token());
        await v.verifyBearer(oldToken);
        await fn(await issuer.rotate(), oldToken);
      } finally {
        issuer.keys = keys;
        issuer.jwksPath = jwksPath;
      }
    }

    it('keys rotated: tokens of the new key are accepted without a new verifier, tokens of the removed key refused', async () => {
      const v = verifier({}, { jwksCooldownMs: 0 });
      await afterRotation(v, async (fresh, oldToken) => {
        assert.equal((await v.verifyBearer(bearer(await issuer.token({}, { key: fresh })))).kind, 'jwt');
        await assertRefused(v, oldToken, 401, /^Failed to verify token: failed to verify signature: no applicable key found/);
      });
    });

    it('with jose\'s cooldown: a rotated key is found on the first look at the JWKS after the cooldown (5 s by default)', async () => {
      const v = verifier({}, { jwksCooldownMs: 1_000 });
      await afterRotation(v, async (fresh) => {
        const token = bearer(await issuer.token({}, { key: fresh }));
        // Refused while cooling down (or already accepted if the machine is slow); accepted soon after, never restarted.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const r = await v.verifyBearer(token).catch((e: AuthError) => e);
          if (!(r instanceof AuthError)) break;
          assert.match(r.message, /no applicable key found/);
          assert.ok(Date.now() < deadline, 'the new key was never picked up');
          await new Promise((res) => setTimeout(res, 200));
        }
      });
    });

    it('a kid miss also re-reads discovery: a JWKS moved to a new jwks_uri is followed', async () => {
      const v = verifier({}, { jwksCooldownMs: 0 });
      await afterRotation(v, async (fresh) => {
        issuer.jwksPath = '/jwks/v2';
        const d0 = issuer.counts.discovery;
        assert.equal((await v.verifyBearer(bearer(await issuer.token({}, { key: fresh })))).kind, 'jwt');
        assert.equal(issuer.counts.discovery - d0, 1);
      });
    });
  });

  describe('opaque tokens (RFC 7662)', () => {
    const active = (extra: Record<string, unknown> = {}) => ({ active: true, scope: SCOPES, aud: AUDIENCE, sub: 'user-2', exp: nowSeconds() + 3600, ...extra });

    it('active with the scopes → accepted, with the introspection answer as claims', async () => {
      const r = await verifier().verifyBearer(bearer(issuer.opaque(active())));
      assert.equal(r.kind, 'opaque');
      assert.equal(r.subject, 'user-2');
      assert.deepEqual(r.scopes, ['dex:upload', 'dex:info']);
    });

    it('inactive, unknown, expired, not yet valid, other audience → 401; missing scopes → 403', async () => {
      const v = verifier();
      await assertRefused(v, bearer(issuer.opaque({ active: false })), 401, 'Failed to verify token: token is not active', 'Bearer error="invalid_token"');
      await assertRefused(v, bearer('never-issued-token'), 401, 'Failed to verify token: token is not active');
      await assertRefused(v, bearer(issuer.opaque(active({ exp: nowSeconds() - 3600 }))), 401, 'Failed to verify token: token is expired');
      await assertRefused(v, bearer(issuer.opaque(active({ nbf: nowSeconds() + 3600 }))), 401, 'Failed to verify token: token is not valid yet');
      await assertRefused(v, bearer(issuer.opaque(active({ aud: 'other' }))), 401, `Failed to verify token: token audience does not include "${AUDIENCE}"`);
      await assertRefused(v, bearer(issuer.opaque(active({ aud: undefined }))), 401, `Failed to verify token: token audience does not include "${AUDIENCE}"`);
      await assertRefused(v, bearer(issuer.opaque(active({ scope: 'dex:info' }))), 403, 'One or more required scopes not found');
    });

    it('endpoint down, failing, refusing our client credentials, or no endpoint configured → 401 (fail closed)', async () => {
      const token = bearer(issuer.opaque(active()));
      try {
        for (const mode of ['reset', 'error'] as const) {
          issuer.modes.introspection = mode;
          await assertRefused(verifier(), token, 401, 'Failed to verify token: token introspection failed');
        }
      } finally {
        issuer.modes.introspection = 'up';
      }
      const wrongSecret = issuer.introspectionUrl.replace(issuer.clientSecret, 'wrong');
      await assertRefused(verifier({ introspectionUrl: wrongSecret }), token, 401, 'Failed to verify token: token introspection failed');
      await assertRefused(verifier({ introspectionUrl: undefined }), token, 401, 'Failed to verify token: the token is not a JWT and no introspection endpoint is configured');
      assert.ok(!logs.includes(issuer.clientSecret), 'the client secret reached the log');
      assert.match(logs, /token introspection failed/);
    });

    it('answers are cached briefly (also while the endpoint is down), concurrent asks share one request; cache off → asked every time', async () => {
      const v = verifier();
      const token = bearer(issuer.opaque(active()));
      const i0 = issuer.counts.introspection;
      await Promise.all(Array.from({ length: 10 }, () => v.verifyBearer(token)));
      assert.equal(issuer.counts.introspection - i0, 1);
      try {
        issuer.modes.introspection = 'reset';
        assert.equal((await v.verifyBearer(token)).kind, 'opaque', 'served from the cache');
      } finally {
        issuer.modes.introspection = 'up';
      }
      const uncached = verifier({}, { introspectionCacheMs: 0 });
      const i1 = issuer.counts.introspection;
      await uncached.verifyBearer(token);
      await uncached.verifyBearer(token);
      assert.equal(issuer.counts.introspection - i1, 2);
    });

    it('a token that is not a JWT is never verified as one, and a JWE-shaped one (five parts) goes to introspection', async () => {
      const v = verifier();
      const i0 = issuer.counts.introspection;
      await assertRefused(v, bearer('a.b.c.d.e'), 401, 'Failed to verify token: token is not active');
      assert.equal(issuer.counts.introspection - i0, 1);
    });
  });
});
