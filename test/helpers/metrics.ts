// Reads a Prometheus text exposition (what GET /metrics answers) into samples.
import { request } from './http.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = JSON.parse(`"${l[2]!}"`) as string;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Names of every sample (histograms give their `_bucket`, `_sum` and `_count`). */
export const sampleNames = (text: string) => new Set(parseMetrics(text).map((s) => s.name));

/** Every name a query may select, samples or not yet: each `# TYPE` family, with a histogram's or summary's series. */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

/** The sum of the samples of `name` whose labels include `labels`; undefined when there is none. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((sum, s) => sum + s.value, 0);
}

export async function scrape(base: string): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const res = await request({ method: 'GET', url: `${base}/metrics` });
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${res.body}`);
  return { text: res.body, samples: parseMetrics(res.body), contentType: String(res.headers['content-type']) };
}
