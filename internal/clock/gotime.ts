// Go's RFC3339Nano rendering, which DEX consumers parse: fraction with trailing zeros trimmed, none when zero.
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

function fraction(ms: number): string {
  if (ms === 0) return '';
  return `.${pad(ms, 3).replace(/0+$/, '')}`;
}

/** `2024-12-06T15:38:06.12Z` (UTC). */
export function goTimeUTC(d: Date = new Date()): string {
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${fraction(d.getUTCMilliseconds())}Z`
  );
}

/** The same in the server's local zone (`Z` when it is UTC, else `+hh:mm`). */
export function goTimeLocal(d: Date = new Date()): string {
  const off = -d.getTimezoneOffset();
  if (off === 0) return goTimeUTC(d);
  const sign = off > 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${fraction(d.getMilliseconds())}` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}
