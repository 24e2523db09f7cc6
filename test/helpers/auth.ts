// The server with OAuth on against a test issuer, and the requests the auth suites make.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import { request, TR, type Response } from './http.js';
import { MANIFEST_PAIRS } from './manifest-mode.js';
import { startServer, type RunningServer } from './server.js';
import type { TestIssuer } from './oidc-issuer.js';

export const AUDIENCE = 'dex-upload';
export const REQUIRED_SCOPE = 'dex:upload';

/** The real server with OAuth on (issuer, introspection with client credentials, a required scope, an audience). */
export function startAuthServer(issuer: TestIssuer, env: Record<string, string> = {}): Promise<RunningServer> {
  return startServer({
    env: {
      OAUTH_AUTH_ENABLED: 'true',
      OAUTH_ISSUER_URL: issuer.url,
      OAUTH_INTROSPECTION_URL: issuer.introspectionUrl,
      OAUTH_REQUIRED_SCOPES: REQUIRED_SCOPE,
      OAUTH_AUDIENCE: AUDIENCE,
      // Every request is logged at debug: the suites check that no token reaches the log even then.
      LOGGER_DEBUG_ON: 'true',
      UPLOAD_MANIFEST_VALIDATION: 'true',
      ...env,
    },
  });
}

export const withAuth = (token: string | undefined, headers: OutgoingHttpHeaders = {}): OutgoingHttpHeaders =>
  token === undefined ? headers : { ...headers, Authorization: `Bearer ${token}` };

/** A creation-with-upload of `hello` carrying a valid manifest (what a refused request must not store). */
export function createWithBody(base: string, headers: OutgoingHttpHeaders): Promise<Response> {
  return request({
    method: 'POST',
    url: `${base}/files/`,
    headers: { ...TR, 'Upload-Length': '5', 'Upload-Metadata': MANIFEST_PAIRS, 'Content-Type': 'application/offset+octet-stream', ...headers },
    body: 'hello',
  });
}

/** Every file (not folder) under `dir`, relative, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}
