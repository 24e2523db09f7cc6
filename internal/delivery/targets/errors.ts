// Error text for reports and /health: SDK and network errors sometimes carry an empty or generic message
// (an AggregateError from a refused connection, S3's "UnknownError" for a bodiless 404), so build a useful one.

interface ErrorLike {
  name?: string;
  message?: string;
  code?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number };
  statusCode?: number;
}

export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as ErrorLike;
  if (Array.isArray(e.errors) && e.errors.length > 0 && !e.message) {
    return [...new Set(e.errors.map(errorText))].join('; ');
  }
  const status = e.$metadata?.httpStatusCode ?? e.statusCode;
  const generic = !e.message || e.message === 'UnknownError';
  let text = generic ? e.code || e.name || 'unknown error' : e.message!;
  if (generic && status) text += ` (HTTP ${status})`;
  else if (e.code && !text.includes(e.code)) text = `${e.code}: ${text}`;
  return text;
}

/** An endpoint for logs and locations: scheme, host and path only (no user info, no SAS or other query). */
export function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    return `${url.protocol}//${url.host}${url.pathname}`.replace(/\/+$/, '');
  } catch {
    return '(unparsable endpoint)';
  }
}
