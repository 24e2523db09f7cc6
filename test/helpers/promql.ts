// The metric names a PromQL expression selects. Syntax is checked by the real Prometheus (its query API answers
// bad_data for an expression it cannot parse); this only finds the names, to compare with what the server exports.

const AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile'];
const KEYWORDS = new Set([...AGGREGATIONS, 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'atan2', 'inf', 'nan']);
/** Keywords followed by a parenthesised list of label names, not of expressions. */
const LABEL_LIST = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

export function metricNames(expr: string): Set<string> {
  const names = new Set<string>();
  let i = 0;
  const skipQuoted = () => {
    const q = expr[i]!;
    for (i++; i < expr.length && expr[i] !== q; i++) if (expr[i] === '\\' && q !== '`') i++;
    i++;
  };
  const skipUntil = (close: string) => {
    while (i < expr.length && expr[i] !== close) {
      if (`"'\``.includes(expr[i]!)) skipQuoted();
      else i++;
    }
    i++;
  };
  while (i < expr.length) {
    const c = expr[i]!;
    if (`"'\``.includes(c)) skipQuoted();
    else if (c === '{') {
      const start = i;
      skipUntil('}');
      const byName = /__name__\s*=\s*"([^"]+)"/.exec(expr.slice(start, i));
      if (byName) names.add(byName[1]!);
    } else if (c === '[') skipUntil(']');
    else if (/[a-zA-Z_:]/.test(c)) {
      const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))!;
      const word = m[0];
      i += word.length;
      const rest = expr.slice(i).trimStart();
      if (LABEL_LIST.has(word) && rest.startsWith('(')) {
        i = expr.indexOf('(', i) + 1;
        skipUntil(')');
      } else if (!KEYWORDS.has(word.toLowerCase()) && !rest.startsWith('(')) names.add(word);
    } else if (/[0-9.]/.test(c)) {
      // Numbers and durations (5m, 1e3, 0x1f): their letters are not names.
      i += /^[0-9.]+(?:e[+-]?\d+|x[0-9a-f]+|[smhdwy]+)?/i.exec(expr.slice(i))![0].length || 1;
    } else i++;
  }
  return names;
}
