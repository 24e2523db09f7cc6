// fetch with a deadline, and errors that say what went wrong without dumping internals.

/** GET or POST with a deadline; a network failure or timeout rejects with a readable message. */
export async function fetchWithDeadline(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`${init.method ?? 'GET'} ${JSON.stringify(url)}: ${describeFetchError(err, timeoutMs)}`);
  }
}

function describeFetchError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? 'fetch failed'}: ${cause}` : (e.message ?? String(err));
}

/** The body as a JSON object, or an error naming what the endpoint sent instead. */
export async function jsonObject(res: Response, what: string): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await res.json();
  } catch (err) {
    throw new Error(`failed to decode ${what}: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error(`${what} is not a JSON object`);
  return body as Record<string, unknown>;
}
