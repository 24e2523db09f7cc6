// What the protocol core counts, as plain numbers (tusd's handler.Metrics): a request adds to a field or to an entry
// that already exists, never through a metrics library. internal/metrics reads them when /metrics is scraped.

/** The methods tusd counts; a request with any other method (e.g. an odd X-HTTP-Method-Override) is not counted. */
export const COUNTED_METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export interface ErrorCount {
  status: number;
  code: string;
  count: number;
}

export class TusStats {
  bytesReceived = 0;
  uploadsCreated = 0;
  uploadsFinished = 0;
  uploadsTerminated = 0;
  /** Requests by method, after X-HTTP-Method-Override; every counted method is there from the start. */
  readonly requests = new Map<string, number>(COUNTED_METHODS.map((m) => [m, 0]));
  /** Error answers by status and tus error code (a fixed set, so the map stays small). */
  readonly errors = new Map<string, ErrorCount>();

  request(method: string): void {
    const n = this.requests.get(method);
    if (n !== undefined) this.requests.set(method, n + 1);
  }

  error(status: number, code: string): void {
    const key = `${status} ${code}`;
    const entry = this.errors.get(key);
    if (entry) entry.count++;
    else this.errors.set(key, { status, code, count: 1 });
  }
}
