// The table and the targets `npm run bench` prints (issues 3, 14 and 17).

export interface Row {
  workload: string;
  title: string;
  metric: string;
  unit: string;
  better: 'higher' | 'lower';
  digits: number;
  rounds: Record<string, number[]>;
  median: Record<string, number>;
  oursVsTus: number | null;
  oursVsBaseline: number | null;
  /** ours+scrape / ours (--scrape-metrics). */
  scrapedVsOurs: number | null;
}

export function fmtNum(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function table(rows: Row[], servers: Array<{ id: string; label: string }>): string {
  const scraped = rows.some((r) => r.scrapedVsOurs !== null);
  const ratio = (v: number | null) => (v === null ? '–' : v.toFixed(2));
  const head = ['workload', 'metric', ...servers.map((s) => s.label), 'ours/@tus', 'ours/base', ...(scraped ? ['scrape/ours'] : [])];
  const body = rows.map((r) => [
    r.title,
    `${r.metric} (${r.unit}) ${r.better === 'higher' ? '↑' : '↓'}`,
    ...servers.map((s) => fmtNum(r.median[s.id], r.digits)),
    ratio(r.oursVsTus),
    ratio(r.oursVsBaseline),
    ...(scraped ? [ratio(r.scrapedVsOurs)] : []),
  ]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((row) => [...row[i]!].length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => (i < 2 ? c + ' '.repeat(widths[i]! - [...c].length) : ' '.repeat(widths[i]! - [...c].length) + c))
      .join('  ');
  const sep = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(head), sep, ...body.map(line)].join('\n');
}

export interface Target {
  what: string;
  value: number | null;
  goal: string;
  met: boolean | null;
  note?: string;
}

export function targets(rows: Row[]): Target[] {
  const find = (w: string, m: string) => rows.find((r) => r.workload === w && r.metric === m);
  const ratio = (w: string, m: string, vs: 'tus' | 'baseline') => {
    const r = find(w, m);
    return r ? (vs === 'tus' ? r.oursVsTus : r.oursVsBaseline) : null;
  };
  const out: Target[] = [];
  const check = (what: string, v: number | null, goal: string, ok: (v: number) => boolean, note?: string) => {
    if (v === null || !Number.isFinite(v)) return; // workload not run
    out.push({ what, value: v, goal, met: ok(v), ...(note ? { note } : {}) });
  };
  const ge = (what: string, v: number | null, min: number, note?: string) => check(what, v, `≥ ${min}`, (x) => x >= min, note);
  const le = (what: string, v: number | null, max: number, note?: string) => check(what, v, `≤ ${max}`, (x) => x <= max, note);

  // Issue 17.
  const sus = (m: string) => find('sustained', m);
  const delivered = sus('delivered')?.median['ours'];
  const tusAcked = sus('acknowledged')?.median['tus'];
  ge('sustained small: ours delivered/s ÷ @tus acknowledged/s', delivered !== undefined && tusAcked ? delivered / tusAcked : null, 1.0);
  const oursAcked = sus('acknowledged')?.median['ours'];
  const growth = sus('backlog growth, last 30 s')?.median['ours'];
  if (growth !== undefined && oursAcked) {
    le('sustained small: ours backlog growth over the last 30 s, in seconds of acknowledged uploads', growth / oursAcked, 1, 'bounded: it grows by less than 1 s of uploads');
  }
  le('sustained small: ours drain after the load (s)', sus('drain after the load')?.median['ours'] ?? null, 5);
  ge('burst small: ours/@tus end to end uploads/s', ratio('small', 'end to end', 'tus'), 1.0);
  ge('burst small: ours/baseline acknowledged uploads/s', ratio('small', 'rate', 'baseline'), 0.65);
  for (const [w, by] of [
    ['head', 'load generator'],
    ['head-ac', 'autocannon'],
  ] as const) {
    ge(`HEAD (${by}): ours/baseline req/s`, ratio(w, 'rate', 'baseline'), 0.65);
    ge(`HEAD (${by}): ours/@tus req/s`, ratio(w, 'rate', 'tus'), 3);
    le(`HEAD (${by}): ours/@tus p99`, ratio(w, 'latency p99', 'tus'), 0.5);
  }
  ge('1 GiB PATCH: ours/baseline acknowledged MB/s', ratio('single', 'throughput', 'baseline'), 0.95);
  ge('1 GiB PATCH: ours/baseline end to end MB/s', ratio('single', 'end to end', 'baseline'), 0.45, 'stored, hashed, delivered to a file target and reported');
  // Issue 3.
  ge('8 MiB PATCHes: ours/baseline MB/s', ratio('chunked', 'throughput', 'baseline'), 0.9);
  ge('64 parallel: ours/baseline acknowledged MB/s', ratio('parallel', 'throughput', 'baseline'), 0.9);
  // Issue 14: keeping the metrics, scraped every second, costs under 3 %.
  for (const w of ['small', 'head']) {
    const r = find(w, 'rate');
    if (r && r.scrapedVsOurs !== null) ge(`${w === 'small' ? 'small uploads' : 'HEAD'}: ours+scrape/ours rate`, r.scrapedVsOurs, 0.97, '/metrics scraped every second');
  }
  const rss = rows.filter((r) => r.metric === 'peak RSS').map((r) => r.median['ours'] ?? NaN).filter(Number.isFinite);
  if (rss.length) le('ours peak RSS, worst workload (MiB)', Math.max(...rss), 160);
  return out;
}
