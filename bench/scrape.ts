// `--scrape-metrics`: GET /metrics once a second while a cell's timed part runs, as Prometheus does, so that the cost
// of keeping and serving the metrics shows up in the figures (compare `ours+scrape` with `ours`).
import http from 'node:http';

export interface Scraper {
  /** Stops; resolves with the number of answered scrapes and what went wrong with the others. */
  stop(): Promise<{ scrapes: number; failures: string[] }>;
}

export function startScraping(port: number, intervalMs = 1000): Scraper {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let scrapes = 0;
  const failures: string[] = [];
  let inFlight: Promise<void> | null = null;
  const scrape = () => {
    if (inFlight) return; // a slow answer is not stacked up on (Prometheus waits for its scrape timeout too)
    inFlight = new Promise<void>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent }, (res) => {
        res.resume();
        res.once('end', () => {
          if (res.statusCode === 200) scrapes++;
          else failures.push(`status ${res.statusCode}`);
          resolve();
        });
      });
      req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
      req.once('error', (err) => {
        failures.push(err.message);
        resolve();
      });
    }).finally(() => (inFlight = null));
  };
  scrape();
  const timer = setInterval(scrape, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      agent.destroy();
      return { scrapes, failures };
    },
  };
}

/**
 * One scrape before the timed part: the first answer of a process costs several times a later one (14.6 ms against
 * 2.3-3.6 ms here, V8 compiling the serialisation), and a server Prometheus watches has long been past it.
 */
export async function scrapeOnce(port: number): Promise<void> {
  const { failures } = await startScraping(port, 60_000).stop();
  if (failures.length > 0) throw new Error(`the warm-up scrape of /metrics failed: ${failures[0]}`);
}
