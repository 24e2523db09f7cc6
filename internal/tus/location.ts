import type { IncomingHttpHeaders } from 'node:http';

const HOST = /^[A-Za-z0-9.\-_]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$/;

function stripDefaultPort(host: string, proto: string): string {
  if (proto === 'http' && host.endsWith(':80')) return host.slice(0, -3);
  if (proto === 'https' && host.endsWith(':443')) return host.slice(0, -4);
  return host;
}

function fromForwarded(header: string): { host?: string; proto?: string } {
  const out: { host?: string; proto?: string } = {};
  // Only the first (closest to the client) element counts.
  const first = header.split(',')[0] ?? '';
  for (const part of first.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (key === 'host' && value) out.host = value;
    if (key === 'proto' && value) out.proto = value.toLowerCase();
  }
  return out;
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();

/** `<proto>://<host>` of the request as the client sees it (forwarded headers only when behind a proxy). */
export function origin(headers: IncomingHttpHeaders, encrypted: boolean, behindProxy: boolean): string {
  let proto = encrypted ? 'https' : 'http';
  let host = first(headers.host);
  if (behindProxy) {
    const fwdHeader = headers['forwarded'];
    const fwd = fwdHeader ? fromForwarded(Array.isArray(fwdHeader) ? fwdHeader.join(',') : fwdHeader) : {};
    const xHost = first(headers['x-forwarded-host']);
    const xProto = first(headers['x-forwarded-proto'])?.toLowerCase();
    const fHost = fwd.host && HOST.test(fwd.host) ? fwd.host : undefined;
    if (fHost) host = fHost;
    else if (xHost && HOST.test(xHost)) host = xHost;
    const p = fwd.proto ?? xProto;
    if (p === 'http' || p === 'https') proto = p;
    else if (xProto === 'http' || xProto === 'https') proto = xProto;
  }
  if (!host || !HOST.test(host)) host = 'localhost';
  return `${proto}://${stripDefaultPort(host, proto)}`;
}
