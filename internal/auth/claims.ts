// Scope and audience checks shared by JWT claims and RFC 7662 introspection answers.
import { authErrors } from './errors.js';

/**
 * The token's scopes: `scope` (RFC 8693 / RFC 7662), a space-separated string, or, when absent, `scp` (an array, as
 * Okta sends it, or a space-separated string, as Entra ID does). Neither → none. Any other shape is a 401.
 */
export function scopesOf(claims: Record<string, unknown>): string[] {
  const split = (s: string) => s.split(' ').filter(Boolean);
  const { scope, scp } = claims;
  if (scope !== undefined) {
    if (typeof scope === 'string') return split(scope);
    throw authErrors.badClaims();
  }
  if (scp === undefined) return [];
  if (typeof scp === 'string') return split(scp);
  if (Array.isArray(scp) && scp.every((s) => typeof s === 'string')) return scp.filter(Boolean);
  throw authErrors.badClaims();
}

/** Every required scope must be among the token's; extra scopes are fine (403 otherwise). */
export function requireScopes(have: readonly string[], required: readonly string[]): void {
  if (required.length === 0) return;
  const set = new Set(have);
  if (!required.every((s) => set.has(s))) throw authErrors.missingScopes();
}

/** `aud` as a list (a single string or an array of strings); anything else is no audience. */
export function audiencesOf(claims: Record<string, unknown>): string[] {
  const aud = claims['aud'];
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud)) return aud.filter((a): a is string => typeof a === 'string');
  return [];
}

/** A claim value quoted for an error message, cut short: it comes from the client. */
export function quoted(value: unknown, max = 120): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
