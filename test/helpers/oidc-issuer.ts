// A real OIDC issuer on loopback for the auth suites: discovery document, JWKS, RFC 7662 introspection (client
// credentials required), token signing with jose, key rotation, and switches that take each endpoint down.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

/** How an endpoint answers: normally, with a 500, or by resetting the connection (a dead endpoint). */
export type EndpointMode = 'up' | 'error' | 'reset';

export interface IssuerOptions {
  /** Default `aud` of issued tokens. */
  audience?: string;
  /** Default `scope` of issued tokens. */
  scope?: string;
}

export interface TestIssuer {
  /** The issuer identifier (`iss`), also where discovery lives. */
  url: string;
  /** The introspection endpoint with the client credentials in it (`http://client:secret@host/introspect`). */
  introspectionUrl: string;
  clientSecret: string;
  /** Requests received, per endpoint. */
  counts: { discovery: number; jwks: number; introspection: number };
  /** The keys the JWKS publishes; `keys[0]` signs by default. */
  keys: SigningKey[];
  modes: { discovery: EndpointMode; jwks: EndpointMode; introspection: EndpointMode };
  /** Overrides the `issuer` of the discovery document (a mismatch test). */
  discoveryIssuer?: string;
  /** Where discovery says the JWKS is (`/jwks` at first; any path under `/jwks` serves it). */
  jwksPath: string;
  /** A signed JWT with valid defaults (iss, aud, sub, iat, exp in 1 h, scope); a claim set to undefined is left out. */
  token(claims?: Record<string, unknown>, opts?: { key?: SigningKey; header?: Record<string, unknown> }): Promise<string>;
  /** A key pair that is not published (yet). */
  newKey(alg?: string): Promise<SigningKey>;
  /** A new RS256 key replaces the published ones: the JWKS then holds only it. */
  rotate(): Promise<SigningKey>;
  /** The public key as PEM text (the secret of an HS256 key-confusion attack). */
  publicPem(key?: SigningKey): Promise<string>;
  /** Registers an opaque token whose introspection answer is `answer` (RFC 7662 §2.2). */
  opaque(answer: Record<string, unknown>): string;
  close(): Promise<void>;
}

const now = () => Math.floor(Date.now() / 1000);

export async function startIssuer(options: IssuerOptions = {}): Promise<TestIssuer> {
  const clientId = 'dex-upload-server';
  const clientSecret = `secret-${randomBytes(12).toString('hex')}`;
  const opaque = new Map<string, Record<string, unknown>>();
  const newKey = async (alg = 'RS256'): Promise<SigningKey> => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
    return { kid, alg, privateKey, publicKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const send = (mode: EndpointMode, status: number, body: unknown) => {
      if (mode === 'reset') return req.socket.destroy();
      if (mode === 'error') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('issuer failure');
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
      issuer.counts.discovery++;
      return send(issuer.modes.discovery, 200, {
        issuer: issuer.discoveryIssuer ?? issuer.url,
        jwks_uri: `${issuer.url}${issuer.jwksPath}`,
        introspection_endpoint: `${issuer.url}/introspect`,
        id_token_signing_alg_values_supported: ['RS256', 'ES256', 'EdDSA'],
      });
    }
    if (req.method === 'GET' && path.startsWith('/jwks')) {
      issuer.counts.jwks++;
      return send(issuer.modes.jwks, 200, { keys: path === issuer.jwksPath ? issuer.keys.map((k) => k.publicJwk) : [] });
    }
    if (req.method === 'POST' && path === '/introspect') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        issuer.counts.introspection++;
        const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
        if (req.headers.authorization !== expected) return send(issuer.modes.introspection, 401, { error: 'invalid_client' });
        const token = new URLSearchParams(body).get('token') ?? '';
        send(issuer.modes.introspection, 200, opaque.get(token) ?? { active: false });
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const issuer: TestIssuer = {
    url,
    introspectionUrl: `http://${clientId}:${clientSecret}@127.0.0.1:${(server.address() as AddressInfo).port}/introspect`,
    clientSecret,
    counts: { discovery: 0, jwks: 0, introspection: 0 },
    keys: [await newKey('RS256'), await newKey('ES256'), await newKey('EdDSA')],
    modes: { discovery: 'up', jwks: 'up', introspection: 'up' },
    jwksPath: '/jwks',
    async token(claims = {}, opts = {}) {
      const key = opts.key ?? issuer.keys[0]!;
      const all: Record<string, unknown> = { iss: url, aud: options.audience, sub: 'user-1', iat: now(), exp: now() + 3600, scope: options.scope, ...claims };
      const payload = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined));
      return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...opts.header }).sign(key.privateKey);
    },
    newKey,
    async rotate() {
      const key = await newKey('RS256');
      issuer.keys = [key];
      return key;
    },
    async publicPem(key = issuer.keys[0]!) {
      return exportSPKI(key.publicKey);
    },
    opaque(answer) {
      const token = `opaque-${randomBytes(24).toString('base64url')}`;
      opaque.set(token, answer);
      return token;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return issuer;
}

/** `header.payload.` with `alg: none` (RFC 7519 §6), carrying `claims`. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

/** The token with its payload replaced by `claims`, the original signature kept. */
export function tamperedToken(token: string, claims: Record<string, unknown>): string {
  const [header, , signature] = token.split('.');
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
}

/** The claims of a JWT, unverified (to build tampered copies). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

export const nowSeconds = now;
