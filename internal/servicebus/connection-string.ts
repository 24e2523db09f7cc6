import { ConfigError } from '../config/env.js';

export interface ServiceBusEndpoint {
  /** `sb://<namespace>/` as written in the connection string (not a secret; safe to log). */
  endpoint: string;
  host: string;
}

/**
 * Checks a Service Bus connection string before any client is built, so a typo stops the start with a message that
 * names the variable (`REPORTER_CONNECTION_STRING: malformed Service Bus connection string (missing Endpoint)`).
 * Messages never repeat the value: it holds the shared access key.
 */
export function parseConnectionString(value: string, variable: string): ServiceBusEndpoint {
  const fail = (why: string): never => {
    throw new ConfigError(`${variable}: malformed Service Bus connection string (${why})`);
  };
  const parts = new Map<string, string>();
  for (const part of value.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    // The key is named (it is not secret); the value is not.
    if (eq <= 0) fail(eq === 0 ? 'a part has no key before "="' : 'each part must be Key=Value');
    const key = part.slice(0, eq).trim();
    if (parts.has(key)) fail(`${key} is given twice`);
    parts.set(key, part.slice(eq + 1).trim());
  }
  const endpoint = parts.get('Endpoint');
  if (!endpoint) return fail('missing Endpoint');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return fail('Endpoint is not a URL; expected sb://<namespace>/');
  }
  if (url.protocol !== 'sb:' || url.hostname === '') fail('Endpoint must look like sb://<namespace>/');
  const hasKey = Boolean(parts.get('SharedAccessKeyName')) && Boolean(parts.get('SharedAccessKey'));
  const hasSignature = Boolean(parts.get('SharedAccessSignature'));
  if (!hasKey && !hasSignature) fail('missing SharedAccessKeyName and SharedAccessKey, or SharedAccessSignature');
  if (parts.has('SharedAccessKey') && !parts.get('SharedAccessKeyName') && !hasSignature) fail('missing SharedAccessKeyName');
  return { endpoint, host: url.host };
}

/** Removes key material from a text (an SDK error message) before it is logged or shown. */
export function scrubSecrets(text: string): string {
  return text.replace(/(SharedAccessKey|SharedAccessSignature|sig)=[^;&\s"']*/gi, '$1=[redacted]');
}
