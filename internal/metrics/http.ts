import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Child, Sample } from './families.js';

/** `code` of a request whose client went away before any answer was sent (nginx's convention). */
export const CLIENT_CLOSED = 499;

/**
 * `http_requests_total{code,method}` and `dex_server_connections_open` for every request the API server gets. A
 * request is counted when its response closes, with the status really sent: Fastify's onResponse hook misses requests
 * whose client went away (no 'finish'), which would leave the open-requests gauge up forever. The counters are
 * cached children (a map per method, then per status code), incremented with `+=`; the 'close' listener is one shared
 * function, so a request allocates nothing here.
 */
export class HttpRequestCounters {
  open = 0;
  private readonly byMethod = new Map<string, Map<number, Child>>();

  readonly onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    this.open++;
    res.on('close', this.onClose); // fires once; `on` saves the wrapper `once` allocates
  };

  private readonly onClose: (this: ServerResponse) => void;

  constructor() {
    const counters = this;
    this.onClose = function (this: ServerResponse) {
      counters.open--;
      counters.child(this.req.method ?? '', this.headersSent ? this.statusCode : CLIENT_CLOSED).value++;
    };
  }

  private child(method: string, code: number): Child {
    let byCode = this.byMethod.get(method);
    if (!byCode) this.byMethod.set(method, (byCode = new Map()));
    let c = byCode.get(code);
    if (!c) byCode.set(code, (c = { labels: { code: String(code), method }, value: 0 }));
    return c;
  }

  *samples(): Iterable<Sample> {
    for (const byCode of this.byMethod.values()) for (const c of byCode.values()) yield [c.labels, c.value];
  }
}
