// Metric families whose values live elsewhere as plain numbers (kept by the code that counts, at the cost of an
// addition) and are copied into prom-client only when /metrics is scraped: the request path never calls the library.
import { Counter, Gauge, type Registry } from 'prom-client';

export type Labels = Record<string, string>;
export type Sample = readonly [labels: Labels, value: number];

/** A counter read from `read()` at each scrape. */
export function scrapedCounter(registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => Iterable<Sample>): Counter {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** A gauge read from `read()` at each scrape. */
export function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** One series' value: looked up once, then incremented with `+=`. */
export interface Child {
  readonly labels: Labels;
  value: number;
}

/**
 * Plain-number counters per combination of label values. The values may come from clients (upload metadata), so the
 * number of series is bounded: beyond `limit` combinations, new ones are counted under `OVERFLOW` for every label,
 * and values are cut to `maxValueLength` characters.
 */
export class LabelledCounts {
  static readonly OVERFLOW = '(other)';
  private readonly children = new Map<string, Child>();
  private overflow: Child | null = null;

  constructor(
    private readonly labelNames: readonly string[],
    private readonly limit = 1000,
    private readonly maxValueLength = 256,
  ) {}

  child(values: readonly string[]): Child {
    const cut = values.map((v) => (v.length > this.maxValueLength ? v.slice(0, this.maxValueLength) : v));
    const key = cut.join('\u0000');
    let c = this.children.get(key);
    if (c) return c;
    if (this.children.size >= this.limit) {
      return (this.overflow ??= { labels: this.labelsOf(this.labelNames.map(() => LabelledCounts.OVERFLOW)), value: 0 });
    }
    c = { labels: this.labelsOf(cut), value: 0 };
    this.children.set(key, c);
    return c;
  }

  *samples(): Iterable<Sample> {
    for (const c of this.children.values()) yield [c.labels, c.value];
    if (this.overflow) yield [this.overflow.labels, this.overflow.value];
  }

  private labelsOf(values: readonly string[]): Labels {
    return Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]!]));
  }
}

/** Samples of a map of counts, each keyed by one label. */
export function* byLabel<K>(label: string, counts: ReadonlyMap<K, number>, name: (k: K) => string = String): Iterable<Sample> {
  for (const [k, n] of counts) yield [{ [label]: name(k) }, n];
}
