// The answers of the auth check (dex-api.md §3 with decisions.md's fixes): status, exact message, challenge.

/** RFC 6750 §3.1 error codes, sent in the `WWW-Authenticate: Bearer` challenge. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/** A refused request. `message` is the response body without its trailing newline; it never contains the token. */
export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403 | 500,
    message: string,
    /** Absent for a request that carried no credentials at all (RFC 6750 §3.1) and for 500s. */
    readonly bearerError?: BearerErrorCode,
  ) {
    super(message);
    this.name = 'AuthError';
  }

  /** The `WWW-Authenticate` value for 401 and 403 answers; undefined for a 500. */
  get challenge(): string | undefined {
    if (this.status === 500) return undefined;
    return this.bearerError ? `Bearer error="${this.bearerError}"` : 'Bearer';
  }
}

export const authErrors = {
  missingHeader: () => new AuthError(401, 'Authorization header missing'),
  badFormat: () => new AuthError(401, 'Authorization header format is invalid', 'invalid_request'),
  /** `reason` follows go-oidc's wording where the original has one (`oidc: token is expired ...`). */
  invalidToken: (reason: string) => new AuthError(401, `Failed to verify token: ${reason}`, 'invalid_token'),
  badClaims: () => new AuthError(401, 'Failed to parse token claims', 'invalid_token'),
  missingScopes: () => new AuthError(403, 'One or more required scopes not found', 'insufficient_scope'),
  provider: (reason: string) => new AuthError(500, `Failed to get provider: ${reason}`),
  unknown: () => new AuthError(500, 'unknown error occurred'),
};
