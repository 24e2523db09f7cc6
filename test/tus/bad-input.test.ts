// Malformed input against ONE real server: >1,000 generated hostile requests, each answered with a 4xx (or, for
// input Node's HTTP parser refuses, Node's own 400/431 or a clean close) — never a 5xx, never a hang — and nothing
// written outside the storage root. Deterministic: a seeded PRNG (mulberry32) generates every case.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type RunningServer } from '../helpers/server.js';
import { b64, createUpload, head, patch, request, TR } from '../helpers/http.js';
import { creationMetadata, MANIFEST_MODE } from '../helpers/manifest-mode.js';
import { CHECKSUM_ALGORITHMS, checksumOf } from '../helpers/checksum.js';

const SEED = Number(process.env.BAD_INPUT_SEED ?? 0x7e57bad1);
const MAX_SIZE = 1_000_000;
const REQUEST_TIMEOUT_MS = 10_000;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ---------------------------------------------------------------------------------------------------------------
// Seeded PRNG

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** Integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  chars(alphabet: string, n: number): string {
    const a = [...alphabet];
    let s = '';
    for (let i = 0; i < n; i++) s += a[this.int(0, a.length - 1)];
    return s;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** A lower-case UUID v4 nobody created. */
  uuid(): string {
    const h = (n: number) => this.chars('0123456789abcdef', n);
    return `${h(8)}-${h(4)}-4${h(3)}-${this.pick(['8', '9', 'a', 'b'])}${h(3)}-${h(12)}`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Raw HTTP over node:net (exact bytes; node:http refuses most of what we send)

type Header = [string, string];

interface Case {
  name: string;
  method: string;
  path: string;
  headers: Header[];
  body?: Buffer;
  /** The whole request as bytes (replaces method/path/headers/body). */
  raw?: Buffer;
  /** Acceptable statuses for the (first) response. */
  expect: number[];
  /** When set, the response must come from the tus handler with one of these error codes. */
  codes?: string[];
  /** Node's parser or header limit may close the connection without a response. */
  allowClose?: boolean;
  /** Read every response until the server closes (bytes beyond Content-Length form a second "request"). */
  pipelined?: boolean;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  body: string;
  complete: boolean;
}

interface Outcome {
  responses: Parsed[];
  closed: boolean;
  timedOut: boolean;
  error?: string;
}

function serialize(c: Case, port: number): Buffer {
  if (c.raw) return c.raw;
  const lines = [`${c.method} ${c.path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  const framed = c.headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k));
  for (const [k, v] of c.headers) lines.push(`${k}: ${v}`);
  if (c.body && !framed) lines.push(`Content-Length: ${c.body.length}`);
  const headBytes = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  return c.body ? Buffer.concat([headBytes, c.body]) : headBytes;
}

/** Splits the bytes received into responses (the first one answers `firstIsHead`). */
function parseResponses(buf: Buffer, firstIsHead: boolean): Parsed[] {
  const out: Parsed[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf('\r\n\r\n', pos, 'latin1');
    if (end < 0) break;
    const lines = buf.subarray(pos, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let bodyStart = end + 4;
    let bodyEnd: number;
    let complete = true;
    if ((out.length === 0 && firstIsHead) || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      bodyEnd = bodyStart;
    } else if (headers['content-length'] !== undefined) {
      bodyEnd = bodyStart + Number(headers['content-length']);
      if (bodyEnd > buf.length) {
        complete = false;
        bodyEnd = buf.length;
      }
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const term = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2, 'latin1');
      if (term < 0) {
        complete = false;
        bodyEnd = buf.length;
      } else bodyEnd = term + 7;
    } else {
      bodyEnd = buf.length; // until close
      complete = false;
    }
    out.push({ status, headers, body: buf.subarray(bodyStart, bodyEnd).toString('latin1'), complete });
    if (!complete) break;
    pos = bodyEnd;
    bodyStart = pos;
  }
  return out;
}

function exchange(port: number, bytes: Buffer, opts: { head: boolean; pipelined?: boolean; timeoutMs?: number }): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let error: string | undefined;
    let settled = false;
    const finish = (closed: boolean, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ responses: parseResponses(buf, opts.head), closed, timedOut, error });
    };
    const timer = setTimeout(() => finish(false, true), opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (opts.pipelined) return;
      const r = parseResponses(buf, opts.head);
      if (r.length > 0 && r[0]!.complete) finish(false, false);
    });
    sock.on('error', (e) => (error = e.message));
    sock.on('close', () => finish(true, false));
    sock.on('connect', () => sock.write(bytes, () => undefined));
  });
}

/** Runs one case; returns a failure description, or null when the server behaved. */
async function runCase(port: number, c: Case): Promise<string | null> {
  const o = await exchange(port, serialize(c, port), { head: c.method === 'HEAD' && !c.raw, pipelined: c.pipelined });
  const label = `[${c.name}]`;
  if (o.timedOut) return `${label} no complete answer within ${REQUEST_TIMEOUT_MS} ms (hang)`;
  if (o.responses.length === 0) return c.allowClose ? null : `${label} connection closed without a response (${o.error ?? 'no error'})`;
  for (const r of o.responses) {
    if (r.status < 400 || r.status > 499) return `${label} answered ${r.status} (expected a 4xx): ${r.body.slice(0, 120)}`;
  }
  const first = o.responses[0]!;
  if (!c.expect.includes(first.status)) return `${label} answered ${first.status}, expected one of ${c.expect.join('/')}: ${first.body.slice(0, 120)}`;
  if (c.codes) {
    if (first.headers['tus-resumable'] !== '1.0.0') return `${label} ${first.status} did not come from the tus handler: ${first.body.slice(0, 120)}`;
    if (c.method !== 'HEAD' && !c.codes.some((code) => first.body.startsWith(`${code}: `))) {
      return `${label} body ${JSON.stringify(first.body.slice(0, 120))} does not start with ${c.codes.join(' or ')}`;
    }
  }
  return null;
}

/**
 * In manifest mode (UPLOAD_MANIFEST_VALIDATION=true) every creation carries the valid manifest, so that a request aimed
 * at one header error is refused for that error and not for a missing manifest: a generated POST gets the manifest's
 * pairs after its own `Upload-Metadata` (or a header of its own; a blank header, a test of bad metadata, is kept as it
 * is). A raw POST gets an `Upload-Metadata` line right after its request line. No-op in plain mode and for partials.
 */
function withCaseManifest(c: Case): Case {
  if (!MANIFEST_MODE) return c;
  if (c.raw) {
    const text = c.raw.toString('latin1');
    const eol = text.indexOf('\r\n');
    if (!text.startsWith('POST ') || eol < 0) return c;
    const line = `Upload-Metadata: ${creationMetadata()!}\r\n`;
    return { ...c, raw: Buffer.concat([c.raw.subarray(0, eol + 2), Buffer.from(line, 'latin1'), c.raw.subarray(eol + 2)]) };
  }
  if (c.method !== 'POST') return c;
  if (c.headers.some(([k, v]) => /^upload-concat$/i.test(k) && v === 'partial')) return c;
  const i = c.headers.findIndex(([k]) => /^upload-metadata$/i.test(k));
  const headers: Header[] =
    i < 0 ? [...c.headers, ['Upload-Metadata', creationMetadata()!]] : c.headers.map((h, j) => (j === i ? [h[0], creationMetadata(h[1])!] : h));
  return { ...c, headers };
}

// ---------------------------------------------------------------------------------------------------------------
// Generators of bad values

const UNICODE_DIGIT_SETS = [
  '٠١٢٣٤٥٦٧٨٩', // Arabic-Indic
  '０１２３４５６７８９', // fullwidth
  '०१२३४५६७८९', // Devanagari
  '০১২৩৪৫৬৭৮৯', // Bengali
  '𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗', // mathematical bold
  '⁰¹²³⁴⁵⁶⁷⁸⁹', // superscripts
  '①②③④⑤⑥⑦⑧⑨',
];

const FIXED_BAD_NUMBERS = [
  '-1', '+0', '+1', '-0', '0100', '00', '007', '1.3', '1.0', '0.5', '.5', '5.', 'NaN', 'nan', 'Infinity', '-Infinity',
  '1e3', '1E3', '1e+3', '0x10', '0X1A', '0b11', '0o7', '1_000', '1,000', '10,20', 'ten', 'abc', 'true', 'null',
  'undefined', '[]', '{}', '0 0', '1 0', '1\t0', '10abc', 'abc10', '99999999999999999999', '18446744073709551616',
  '9007199254740993', '12345678901234567', '-9223372036854775808', '١٠', '１０', '१०', '²', '⑩', 'Ⅻ', '10%', '$10',
  '10\u00a0', '\u200b10', '1\u200b0', '0x', '--1', '+-1', '1-', '1+', '', ' ', '\t', '0.0', '1/2', '(1)', '"10"', "'10'",
];

/** Valid for the server after Node strips the optional whitespace around a header value. */
function isValidUint(v: string): boolean {
  const t = v.replace(/^[ \t]+|[ \t]+$/g, '');
  return /^(?:0|[1-9][0-9]{0,15})$/.test(t) && Number.isSafeInteger(Number(t));
}

function badNumber(rng: Rng): string {
  for (;;) {
    const digits = (n: number) => rng.chars('0123456789', n);
    const nz = () => rng.chars('123456789', 1);
    let v: string;
    switch (rng.int(0, 11)) {
      case 0:
        v = rng.pick(FIXED_BAD_NUMBERS);
        break;
      case 1:
        v = `${rng.pick(['+', '-'])}${nz()}${digits(rng.int(0, 6))}`;
        break;
      case 2:
        v = `${'0'.repeat(rng.int(1, 4))}${nz()}${digits(rng.int(0, 5))}`;
        break;
      case 3:
        v = `${digits(rng.int(1, 5))}${rng.pick(['.', ','])}${digits(rng.int(1, 4))}`;
        break;
      case 4:
        v = `${nz()}${rng.pick(['e', 'E'])}${rng.pick(['', '+', '-'])}${digits(rng.int(1, 3))}`;
        break;
      case 5:
        v = `${nz()}${digits(rng.int(16, 60))}`; // huge
        break;
      case 6: {
        const d = `${nz()}${digits(rng.int(1, 6))}`;
        const at = rng.int(1, d.length - 1);
        v = `${d.slice(0, at)}${rng.pick([' ', '\t', '  ', ' \t '])}${d.slice(at)}`;
        break;
      }
      case 7: {
        const set = [...rng.pick(UNICODE_DIGIT_SETS)];
        let s = '';
        for (let i = rng.int(1, 6); i > 0; i--) s += rng.bool(0.7) ? rng.pick(set) : digits(1);
        v = s;
        break;
      }
      case 8:
        v = `${rng.pick(['0x', '0X', '0b', '0o', '0O', '#', '\\x'])}${rng.chars('0123456789abcdefABCDEF', rng.int(1, 8))}`;
        break;
      case 9:
        v = rng.chars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&*()[]{}<>?/|~^`@=+.-_', rng.int(1, 12));
        break;
      case 10:
        v = `${digits(rng.int(1, 6))}${rng.pick(['abc', 'x', '!', '.', '/', ';', 'ü', '€', '🙂', 'Ⅰ', '½'])}`;
        break;
      default:
        v = `${rng.pick(['NaN', 'Infinity', '-Infinity', 'null', ''])}${rng.bool() ? digits(rng.int(0, 3)) : ''}`;
    }
    if (!isValidUint(v)) return v;
  }
}

const KEY_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.';
const b64Of = (rng: Rng) => b64(rng.chars('abcdefghijklmnopqrstuvwxyz0123456789 ./', rng.int(1, 24)));
const validPair = (rng: Rng, key?: string) => `${key ?? rng.chars(KEY_CHARS, rng.int(1, 12))} ${b64Of(rng)}`;
const pairsWithDistinctKeys = (rng: Rng, n: number) => Array.from({ length: n }, (_, i) => validPair(rng, `k${i}`));

interface BadMetadata {
  value: string;
  /** Node's parser refuses the raw bytes itself (no tus error code). */
  nodeMayRefuse?: boolean;
}

function badMetadata(rng: Rng): BadMetadata {
  const some = () => pairsWithDistinctKeys(rng, rng.int(0, 4));
  const insertAt = (pairs: string[], p: string) => {
    const at = rng.int(0, pairs.length);
    return [...pairs.slice(0, at), p, ...pairs.slice(at)].join(',');
  };
  switch (rng.int(0, 13)) {
    case 0: {
      // a character outside standard base64
      const v = b64Of(rng);
      const at = rng.int(0, v.length);
      const bad = rng.pick([...'!@#$%^&*()-_.~:;<>?[]{}|"\'`']);
      return { value: insertAt(some(), `bad ${v.slice(0, at)}${bad}${v.slice(at)}`) };
    }
    case 1: {
      // a length that no base64 can have (4k+1 characters)
      const v = rng.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 4 * rng.int(0, 6) + 1);
      return { value: insertAt(some(), `len ${v}`) };
    }
    case 2:
      return { value: insertAt(some(), `pad ${rng.pick(['YQ=', 'Y===', '=YQ=', 'YQ==YQ==', 'YQ=x', '====', 'YWJj=', 'YW=J'])}`) };
    case 3: {
      // duplicate key
      const pairs = some();
      const k = rng.chars('abcdefghij', rng.int(1, 6));
      pairs.splice(rng.int(0, pairs.length), 0, validPair(rng, k));
      pairs.splice(rng.int(0, pairs.length), 0, rng.bool() ? k : validPair(rng, k));
      return { value: pairs.join(',') };
    }
    case 4:
      return { value: pairsWithDistinctKeys(rng, rng.int(101, 160)).join(',') };
    case 5: {
      // longer than 8 KiB (but below Node's 16 KiB header limit)
      const len = rng.int(8 * 1024 + 1, 14 * 1024);
      if (rng.bool()) return { value: `big ${'QUFB'.repeat(Math.ceil(len / 4))}` };
      const pairs: string[] = [];
      let size = 0;
      for (let i = 0; size <= len; i++) {
        const p = `k${i} ${'QUFB'.repeat(rng.int(20, 60))}`;
        pairs.push(p);
        size += p.length + 1;
      }
      return { value: pairs.join(',') };
    }
    case 6: {
      // control characters (never CR/LF: they would end the header)
      const ctl = String.fromCharCode(rng.pick([0, 1, 2, 7, 8, 11, 12, 27, 31, 127]));
      const where = rng.int(0, 2);
      const pair = where === 0 ? `k${ctl}ey ${b64Of(rng)}` : where === 1 ? `key ${b64Of(rng)}${ctl}` : `key${ctl} ${b64Of(rng)}`;
      return { value: insertAt(some(), pair), nodeMayRefuse: true };
    }
    case 7:
      return { value: insertAt(some(), validPair(rng, rng.pick(['ключ', 'clé', '鍵', '🔑', 'a\u00a0b', 'ＫＥＹ', 'naïve', 'k\u200be', 'ǅ']))) };
    case 8:
      return { value: insertAt(some(), rng.pick([`k ${b64Of(rng)} ${b64Of(rng)}`, `k  ${b64Of(rng)}`, `k ${b64Of(rng)} x`, `k\t${b64Of(rng)}`])) };
    case 9: {
      const pairs = pairsWithDistinctKeys(rng, rng.int(1, 4));
      const form = rng.int(0, 2);
      if (form === 0) return { value: `,${pairs.join(',')}` };
      if (form === 1) return { value: `${pairs.join(',')},` };
      return { value: `${pairs.join(',')},,${validPair(rng, 'z')}` };
    }
    case 10:
      return { value: insertAt(some(), validPair(rng, rng.chars(KEY_CHARS, rng.int(129, 400)))) };
    case 11: {
      const bytes = rng.pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x61, 0xfe]]);
      return { value: insertAt(some(), `bin ${Buffer.from(bytes).toString('base64')}`) };
    }
    case 12:
      return { value: rng.pick(['', ' ', '\t', ' \t ']) };
    default:
      return { value: insertAt(some(), `${rng.pick(['a', 'sp', 'key'])}\u00ff ${b64Of(rng)}`) };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Files: everything under a folder, with a digest of each file

async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        out.set(`${p}/`, 'dir');
        await walk(p);
      } else if (e.isFile()) {
        out.set(p, createHash('sha256').update(await readFile(p)).digest('hex'));
      } else out.set(p, 'other');
    }
  };
  await walk(root);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

describe('bad input: generated malformed requests against one server', () => {
  let s: RunningServer;
  let top: string; // our own "parent temp folder" with sentinels
  let storeRoot: string;
  let before0: Map<string, string>;
  let tmpBefore: Set<string>;
  const sentinelId = '0f0e0d0c-0b0a-4908-8706-050403020100';
  const fx = {} as Record<'fixed' | 'deferred' | 'partialOpen' | 'partialDone' | 'done' | 'final', { url: string; id: string; path: string }>;
  const categories = new Map<string, Case[]>();
  let total = 0;

  before(async () => {
    // <top>/n1/n2/n3/n4/srv is the server's folder; its store is <srv>/uploads/tus-prefix. Up to 7 `..` from the
    // store stay inside <top>, where sentinel files wait to be read, overwritten or deleted by an escaping path.
    top = await mkdtemp(path.join(tmpdir(), 'dex-badinput-'));
    const srv = path.join(top, 'n1', 'n2', 'n3', 'n4', 'srv');
    await mkdir(path.join(srv, 'uploads'), { recursive: true });
    await mkdir(path.join(top, 'etc'), { recursive: true });
    const info = JSON.stringify({ ID: sentinelId, Size: 8, SizeIsDeferred: false, Offset: 8, MetaData: {}, IsPartial: false, IsFinal: false, PartialUploads: null, Storage: null });
    for (const d of [top, path.join(top, 'n1', 'n2'), srv, path.join(srv, 'uploads')]) {
      await writeFile(path.join(d, 'secret.txt'), `sentinel in ${d}\n`);
      await writeFile(path.join(d, sentinelId), 'SENTINEL');
      await writeFile(path.join(d, `${sentinelId}.info`), info);
    }
    await writeFile(path.join(top, 'etc', 'passwd'), 'root:x:0:0:sentinel:/root:/bin/sh\n');
    tmpBefore = new Set(await readdir(tmpdir()));

    // UPLOAD_MANIFEST_VALIDATION follows the mode (startServer's default); fixtures and POST cases carry the manifest.
    s = await startServer({ dir: srv, env: { TUS_MAX_SIZE: String(MAX_SIZE) } });
    storeRoot = s.storeDir;
    before0 = await snapshot(top);

    // Fixtures: normal uploads the malformed requests aim at (none of them may change).
    const mk = async (name: keyof typeof fx, opts: Parameters<typeof createUpload>[1]) => {
      const u = await createUpload(s.url, opts);
      fx[name] = { ...u, path: new URL(u.url).pathname };
    };
    await mk('fixed', { length: 100 });
    await mk('deferred', { defer: true });
    await mk('partialOpen', { length: 10, headers: { 'Upload-Concat': 'partial' } });
    await mk('partialDone', { length: 5, headers: { 'Upload-Concat': 'partial' }, body: 'abcde' });
    await mk('done', { length: 3, body: 'xyz' });
    await mk('final', { headers: { 'Upload-Concat': `final;${fx.partialDone.path}` } });

    const rng = new Rng(SEED);
    for (const [name, gen] of generators) {
      // The same cases in both modes (the manifest is added after generation, drawing nothing from the PRNG).
      const cases = gen(rng).map(withCaseManifest);
      categories.set(name, cases);
      total += cases.length;
    }
  });

  after(async () => {
    await s?.cleanup();
    if (top) await rm(top, { recursive: true, force: true });
  });

  const T = (extra: Header[] = []): Header[] => [['Tus-Resumable', '1.0.0'], ...extra];
  const OOS: Header = ['Content-Type', 'application/offset+octet-stream'];
  const bodyOf = (rng: Rng, lo = 1, hi = 50) => rng.bytes(rng.int(lo, hi));
  const base = (rng: Rng) => rng.pick(['/files/', '/files']);

  const generators: Array<[string, (rng: Rng) => Case[]]> = [
    [
      'Upload-Length: bad numbers (POST)',
      (rng) => {
        const out: Case[] = [];
        for (let i = 0; i < 150; i++) {
          const v = badNumber(rng);
          const headers = T([['Upload-Length', v]]);
          if (rng.bool(0.3)) headers.push(['Upload-Metadata', validPair(rng)]);
          out.push({ name: `POST Upload-Length ${JSON.stringify(v)}`, method: 'POST', path: base(rng), headers, expect: [400], codes: ['ERR_INVALID_UPLOAD_LENGTH'] });
        }
        for (const dup of [['10', '10'], ['10', '20'], ['0', '']]) {
          out.push({ name: `POST Upload-Length twice ${dup.join('|')}`, method: 'POST', path: '/files/', headers: T(dup.map((d) => ['Upload-Length', d] as Header)), expect: [400], codes: ['ERR_INVALID_UPLOAD_LENGTH'] });
        }
        out.push({ name: 'POST without any length', method: 'POST', path: '/files/', headers: T(), expect: [400], codes: ['ERR_INVALID_UPLOAD_LENGTH'] });
        return out;
      },
    ],
    [
      'Upload-Length above TUS_MAX_SIZE (POST)',
      (rng) =>
        Array.from({ length: 25 }, () => {
          const v = String(rng.pick([MAX_SIZE + 1, rng.int(MAX_SIZE + 1, 2 ** 40), Number.MAX_SAFE_INTEGER, rng.int(MAX_SIZE + 1, MAX_SIZE * 10)]));
          return { name: `POST Upload-Length ${v}`, method: 'POST', path: base(rng), headers: T([['Upload-Length', v]]), expect: [413], codes: ['ERR_MAX_SIZE_EXCEEDED'] };
        }),
    ],
    [
      'Upload-Defer-Length: bad values and ambiguity (POST)',
      (rng) => {
        const out: Case[] = [];
        for (let i = 0; i < 80; i++) {
          let v = rng.bool(0.5) ? badNumber(rng) : rng.pick(['0', '2', '10', 'true', 'yes', '01', '+1', '1.0', '1 1', '１', 'one', '']);
          if (v.replace(/^[ \t]+|[ \t]+$/g, '') === '1') v = '2';
          out.push({ name: `POST Upload-Defer-Length ${JSON.stringify(v)}`, method: 'POST', path: base(rng), headers: T([['Upload-Defer-Length', v]]), expect: [400], codes: ['ERR_INVALID_UPLOAD_LENGTH'] });
        }
        for (let i = 0; i < 25; i++) {
          const len = rng.bool() ? String(rng.int(0, 1000)) : badNumber(rng);
          const defer = rng.bool(0.7) ? '1' : badNumber(rng);
          out.push({ name: `POST both lengths ${JSON.stringify([len, defer])}`, method: 'POST', path: base(rng), headers: T([['Upload-Length', len], ['Upload-Defer-Length', defer]]), expect: [400], codes: ['ERR_AMBIGUOUS_UPLOAD_LENGTH'] });
        }
        return out;
      },
    ],
    [
      'Upload-Offset: bad numbers (PATCH)',
      (rng) => {
        const out: Case[] = [];
        for (let i = 0; i < 150; i++) {
          const v = badNumber(rng);
          out.push({ name: `PATCH Upload-Offset ${JSON.stringify(v)}`, method: 'PATCH', path: fx.fixed.path, headers: T([OOS, ['Upload-Offset', v]]), body: bodyOf(rng), expect: [400], codes: ['ERR_INVALID_OFFSET'] });
        }
        out.push({ name: 'PATCH without Upload-Offset', method: 'PATCH', path: fx.fixed.path, headers: T([OOS]), body: bodyOf(rng), expect: [400], codes: ['ERR_INVALID_OFFSET'] });
        out.push({ name: 'PATCH Upload-Offset twice', method: 'PATCH', path: fx.fixed.path, headers: T([OOS, ['Upload-Offset', '0'], ['Upload-Offset', '0']]), body: bodyOf(rng), expect: [400], codes: ['ERR_INVALID_OFFSET'] });
        return out;
      },
    ],
    [
      'Upload-Length: bad numbers on a deferred upload (PATCH)',
      (rng) =>
        Array.from({ length: 50 }, () => {
          const v = badNumber(rng);
          return { name: `PATCH deferred Upload-Length ${JSON.stringify(v)}`, method: 'PATCH', path: fx.deferred.path, headers: T([OOS, ['Upload-Offset', '0'], ['Upload-Length', v]]), body: bodyOf(rng), expect: [400], codes: ['ERR_INVALID_UPLOAD_LENGTH'] };
        }),
    ],
    [
      'Upload-Metadata: garbage (POST)',
      (rng) =>
        Array.from({ length: 220 }, () => {
          const m = badMetadata(rng);
          const len = rng.bool(0.8) ? (['Upload-Length', String(rng.int(0, 1000))] as Header) : (['Upload-Defer-Length', '1'] as Header);
          const name = `POST Upload-Metadata ${JSON.stringify(m.value.length > 60 ? `${m.value.slice(0, 60)}…(${m.value.length})` : m.value)}`;
          return m.nodeMayRefuse
            ? { name, method: 'POST', path: base(rng), headers: T([len, ['Upload-Metadata', m.value]]), expect: [400] }
            : { name, method: 'POST', path: base(rng), headers: T([len, ['Upload-Metadata', m.value]]), expect: [400], codes: ['ERR_INVALID_METADATA'] };
        }),
    ],
    [
      'Upload-Concat: bad values (POST)',
      (rng) => {
        const out: Case[] = [];
        const invalid = ['Partial', 'PARTIAL', 'partial;', 'partial;final', 'partialx', 'part ial', 'final', 'FINAL;x', 'foo', ';final', 'final:/files/x', 'final ;/files/x', 'final;', 'final; ', 'final;\t', 'partial,partial', 'partial, final;/files/x', '*', '0'];
        for (let i = 0; i < 40; i++) {
          const v = rng.bool(0.6) ? rng.pick(invalid) : rng.chars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789;:/ ._-', rng.int(1, 20));
          const trimmed = v.replace(/^[ \t]+|[ \t]+$/g, '');
          if (trimmed === 'partial' || (trimmed.startsWith('final;') && trimmed !== 'final;')) continue;
          out.push({ name: `POST Upload-Concat ${JSON.stringify(v)}`, method: 'POST', path: base(rng), headers: T([['Upload-Length', '5'], ['Upload-Concat', v]]), expect: [400], codes: ['ERR_INVALID_CONCAT'] });
        }
        const hostile = () =>
          rng.pick([
            `/files/${rng.uuid()}`,
            `http://evil.example/files/${rng.uuid()}`,
            '/files/../etc/passwd',
            '/files/..%2F..%2Fetc%2Fpasswd',
            `/files/${sentinelId}`,
            `/other/${fx.partialDone.id}`,
            `/files/${fx.partialDone.id.toUpperCase()}`,
            `/files/${fx.partialDone.id}x`,
            'file:///etc/passwd',
            '%00',
            `/files/%00${fx.partialDone.id}`,
            'http://[::1',
            `/files/${'a'.repeat(rng.int(40, 2000))}`,
          ]);
        for (let i = 0; i < 40; i++) {
          const urls = [hostile()];
          if (rng.bool(0.3)) urls.unshift(fx.partialDone.path);
          out.push({ name: `POST final naming ${JSON.stringify(urls.join(' ').slice(0, 80))}`, method: 'POST', path: base(rng), headers: T([['Upload-Concat', `final;${urls.join(' ')}`]]), expect: [404], codes: ['ERR_UPLOAD_NOT_FOUND'] });
        }
        for (let i = 0; i < 5; i++) {
          out.push({ name: 'POST final naming an unfinished partial', method: 'POST', path: '/files/', headers: T([['Upload-Concat', `final;${fx.partialDone.path} ${fx.partialOpen.path}`]]), expect: [400], codes: ['ERR_UPLOAD_NOT_FINISHED'] });
          out.push({ name: 'POST final naming a non-partial upload', method: 'POST', path: '/files/', headers: T([['Upload-Concat', `final;${rng.pick([fx.done.path, fx.final.path])}`]]), expect: [400], codes: ['ERR_INVALID_CONCAT'] });
          const lengthHeader: Header = rng.bool() ? ['Upload-Length', '5'] : ['Upload-Defer-Length', '1'];
          out.push({ name: `POST final with ${lengthHeader[0]}`, method: 'POST', path: '/files/', headers: T([['Upload-Concat', `final;${fx.partialDone.path}`], lengthHeader]), expect: [400], codes: ['ERR_INVALID_CONCAT'] });
          out.push({ name: 'POST final with a body', method: 'POST', path: '/files/', headers: T([['Upload-Concat', `final;${fx.partialDone.path}`], OOS]), body: bodyOf(rng), expect: [403], codes: ['ERR_MODIFY_FINAL'] });
          out.push({ name: 'POST final with bad metadata', method: 'POST', path: '/files/', headers: T([['Upload-Concat', `final;${fx.partialDone.path}`], ['Upload-Metadata', 'k !!!']]), expect: [400], codes: ['ERR_INVALID_METADATA'] });
        }
        return out;
      },
    ],
    [
      'Upload-Checksum: bad headers and wrong digests (PATCH)',
      (rng) => {
        const out: Case[] = [];
        const invalid = ['sha1', 'sha1 ', 'sha1 !!!!', 'SHA1 AAAA', 'Sha256 AAAA', 'sha256  AAAA', 'md5 AAAAA', 'md5 A===', 'sha1 AAAA AAAA', 'sha1:AAAA', 'sha1=AAAA', ' AAAA', 'sha1 AA-_', 'sha512 ====', 'sha1\tAAAA', 'md5 é', 'md5 AAAA;', 'sha1,AAAA'];
        for (let i = 0; i < 60; i++) {
          const v = rng.bool(0.6) ? rng.pick(invalid) : `${rng.pick(CHECKSUM_ALGORITHMS)} ${rng.chars('ABCD!@#$%^&*()_-~.:;é', rng.int(1, 12))}`;
          // A random digest may happen to be valid base64 (e.g. "DB"): then it is simply the wrong digest (460).
          out.push({ name: `PATCH Upload-Checksum ${JSON.stringify(v)}`, method: 'PATCH', path: fx.fixed.path, headers: T([OOS, ['Upload-Offset', '0'], ['Upload-Checksum', v]]), body: bodyOf(rng), expect: [400, 460], codes: ['ERR_INVALID_CHECKSUM_HEADER', 'ERR_UNSUPPORTED_CHECKSUM_ALGORITHM', 'ERR_CHECKSUM_MISMATCH'] });
        }
        for (let i = 0; i < 25; i++) {
          const algo = rng.pick(['crc32c', 'crc64', 'sha3-256', 'blake2b', 'sha', 'md4', 'sha224', 'adler32', rng.chars('abcdefghijklmnopqrstuvwxyz0123456789-', rng.int(1, 10))]);
          out.push({ name: `PATCH Upload-Checksum algorithm ${algo}`, method: 'PATCH', path: fx.fixed.path, headers: T([OOS, ['Upload-Offset', '0'], ['Upload-Checksum', `${algo} ${b64('digest')}`]]), body: bodyOf(rng), expect: [400], codes: ['ERR_UNSUPPORTED_CHECKSUM_ALGORITHM', 'ERR_INVALID_CHECKSUM_HEADER'] });
        }
        for (let i = 0; i < 12; i++) {
          const algo = rng.pick(CHECKSUM_ALGORITHMS);
          const body = bodyOf(rng);
          const wrong = checksumOf(algo, Buffer.concat([body, Buffer.from('x')]));
          out.push({ name: `PATCH Upload-Checksum ${algo} mismatch`, method: 'PATCH', path: fx.fixed.path, headers: T([OOS, ['Upload-Offset', '0'], ['Upload-Checksum', `${algo} ${wrong}`]]), body, expect: [460], codes: ['ERR_CHECKSUM_MISMATCH'] });
        }
        return out;
      },
    ],
    [
      'hostile ids and paths',
      (rng) => {
        const out: Case[] = [];
        const dots = ['..', '%2e%2e', '%2E%2E', '.%2e', '%252e%252e', '%c0%ae%c0%ae', '..%c0%af', '%uff0e%uff0e', '\u2025', '．．'];
        const seps = ['/', '%2f', '%2F', '%252f', '\\', '%5c', '%255c', '%c0%af'];
        const targets = ['etc/passwd', 'secret.txt', sentinelId, `${sentinelId}.info`, `uploads/${sentinelId}`, 'n1/n2/secret.txt', `srv/uploads/${sentinelId}.info`, ''];
        const gen = (): string => {
          switch (rng.int(0, 9)) {
            case 0:
            case 1:
            case 2: {
              const sep = rng.pick(seps);
              const depth = rng.int(1, 7);
              return `/files/${Array.from({ length: depth }, () => rng.pick(dots)).join(sep)}${sep}${rng.pick(targets)}`;
            }
            case 3:
              return rng.pick(['/files/..', '/files/.', '/files/../etc/passwd', '/files/../../../../../../../etc/passwd', `/files/../files/${rng.uuid()}`, `/files/./${sentinelId}`, '/files//', '/files///etc/passwd', `/files//${sentinelId}`, '/files/%2e', '/files/%2e%2e/', `/files/${sentinelId}/..`, `/files/${rng.uuid()}/../${sentinelId}`]);
            case 4:
              return rng.pick([`/files/${sentinelId}`, `/files/${sentinelId}.info`, `/files/${sentinelId}%00`, `/files/%00${sentinelId}`, '/files/%00', `/files/${rng.uuid()}%00.info`, `/files/${rng.uuid()}%00`, `/files/${fx.fixed.id.toUpperCase()}`, `/files/${fx.fixed.id}.info`, `/files/${fx.fixed.id}.part`, `/files/${fx.fixed.id}x`, `/files/x${fx.fixed.id}`, `/files/${fx.fixed.id}%2F..`, `/files/${fx.fixed.id}/${fx.fixed.id}`]);
            case 5:
              return `/files/${rng.chars('abcdef0123456789-', rng.int(37, 12000))}`;
            case 6:
              return `/files/${rng.pick(['%252e%252e%252fetc%252fpasswd', '%25252e%25252e', '%252F', '%25', '%', '%e', '%zz', '%ff', '%c3%28', '%E2%80%AE', '%C3%A9', '%EF%BC%8E%EF%BC%8E'])}`;
            case 7:
              return `/files/${rng.pick(['..\\..\\etc\\passwd', '\\..\\secret.txt', `..\\${sentinelId}`, 'C:\\Windows\\win.ini', '\\\\server\\share'])}`;
            case 8:
              return `/files/${rng.pick(['é', '鍵', '🙂', '\u202e', '\u0000', 'a\u0000b', '\u00ff', 'ﬁle'])}${rng.uuid()}`;
            default:
              return rng.pick(['/../etc/passwd', '/%2e%2e/etc/passwd', '//etc/passwd', '/./files/', '/FILES/', `/Files/${rng.uuid()}`, '/uploads/tus-prefix/', `/uploads/tus-prefix/${fx.fixed.id}`, `/tus-prefix/${fx.fixed.id}`, `http://127.0.0.1/files/../../etc/passwd`, `http://evil.example/files/${sentinelId}`]);
          }
        };
        for (let i = 0; i < 170; i++) {
          const p = gen();
          const method = rng.pick(['HEAD', 'PATCH', 'DELETE', 'GET', 'POST', 'PUT']);
          const headers = T();
          let body: Buffer | undefined;
          if (method === 'PATCH') {
            headers.push(OOS, ['Upload-Offset', '0']);
            body = bodyOf(rng);
          }
          if (method === 'POST') headers.push(['Upload-Length', '10']);
          const tooLong = Buffer.byteLength(p) > 15_000;
          out.push({
            name: `${method} ${JSON.stringify(p.length > 80 ? `${p.slice(0, 80)}…(${p.length})` : p)}`,
            method,
            path: p,
            headers,
            body,
            // 405: POST/PUT on a well-formed upload URL (the method is refused before the id is looked up).
            expect: tooLong ? [431] : [400, 404, 405],
            allowClose: tooLong,
          });
        }
        return out;
      },
    ],
    [
      'unknown and odd methods (raw socket)',
      (rng) => {
        const out: Case[] = [];
        const known = ['PUT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'REPORT', 'MKACTIVITY', 'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE', 'MKCALENDAR', 'LINK', 'UNLINK', 'SOURCE', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'QUERY'];
        const paths = () => rng.pick(['/files/', '/files', fx.fixed.path, `/files/${rng.uuid()}`, fx.done.path]);
        for (let i = 0; i < 70; i++) {
          const method = rng.pick(known);
          const headers = rng.bool(0.7) ? T() : [];
          out.push({ name: `${method} (known to Node)`, method, path: paths(), headers, body: rng.bool(0.3) ? bodyOf(rng) : undefined, expect: [400, 404, 405, 412] });
        }
        for (let i = 0; i < 40; i++) {
          let method = rng.pick([
            () => rng.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', rng.int(3, 12)),
            () => rng.pick(['FOO', 'BREW', 'WHEN', 'HACK', 'PATCHX', 'GETS', 'POSTT', 'DELET', 'HEADER', 'OPTION']),
            () => rng.pick(['get', 'post', 'patch', 'Head', 'dElEtE', 'options']),
            () => rng.pick(['G@T', 'PATCH!', 'GET/', 'P*ST', 'DE(ETE', 'HEAD;', 'PÄTCH', 'ПОСТ', 'A'.repeat(rng.int(100, 2000))]),
          ])();
          if (known.includes(method) || ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT'].includes(method)) method = `${method}X`;
          out.push({ name: `${JSON.stringify(method.slice(0, 40))} (unknown)`, method, path: paths(), headers: T(), expect: [400, 405], allowClose: true });
        }
        for (const p of ['/files/', fx.fixed.path, '127.0.0.1:1', 'evil.example:443']) {
          out.push({ name: `CONNECT ${p}`, method: 'CONNECT', path: p, headers: T(), expect: [400, 405], allowClose: true });
        }
        return out;
      },
    ],
    [
      'X-HTTP-Method-Override oddities',
      (rng) => {
        const out: Case[] = [];
        const values = ['DELETE', 'PATCH', 'HEAD', 'GET', 'PUT', 'TRACE', 'CONNECT', 'PROPFIND', 'FOO', 'patch', 'delete', 'Head', '', ' ', 'POST', 'POST, DELETE', 'DELETE, PATCH', 'DELETE\tPATCH', 'DE LETE', 'DELETE\u0000', 'ДЕЛЕТЕ', 'x'.repeat(3000), 'OPTIONSX', '*'];
        for (let i = 0; i < 70; i++) {
          const v = rng.pick(values);
          const p = rng.pick(['/files/', '/files', `/files/${rng.uuid()}`, `/files/${sentinelId}`]);
          const headers = rng.bool(0.8) ? T() : [];
          headers.push(['X-HTTP-Method-Override', v]);
          if (rng.bool(0.3)) headers.push(OOS, ['Upload-Offset', rng.pick(['0', '5', 'x'])]);
          out.push({ name: `POST ${p} override ${JSON.stringify(v.slice(0, 30))}`, method: 'POST', path: p, headers, body: rng.bool(0.3) ? bodyOf(rng) : undefined, expect: [400, 404, 405, 412, 415] });
        }
        // The override is honoured on POST only: sent with another method against a real upload it changes nothing.
        for (let i = 0; i < 20; i++) {
          const [method, v, expect] = rng.pick([
            ['PATCH', 'DELETE', [415]],
            ['GET', 'DELETE', [405]],
            ['PUT', 'DELETE', [405]],
            ['DELETE', 'PATCH', [412]],
            ['PATCH', 'HEAD', [415]],
            ['GET', 'PATCH', [405]],
          ] as Array<[string, string, number[]]>);
          const headers = method === 'DELETE' ? [] : T();
          headers.push(['X-HTTP-Method-Override', v]);
          out.push({ name: `${method} ${v}-override on a real upload`, method, path: rng.pick([fx.fixed.path, fx.done.path]), headers, expect });
        }
        return out;
      },
    ],
    [
      'oversized headers (> 16 KiB)',
      (rng) =>
        Array.from({ length: 40 }, () => {
          const size = rng.int(16 * 1024 + 100, 64 * 1024);
          const kind = rng.int(0, 4);
          const headers = T([['Upload-Length', '10']]);
          let p = '/files/';
          if (kind === 0) headers.push(['X-Pad', 'p'.repeat(size)]);
          else if (kind === 1) {
            // Node counts header names and values (not the separators) against its limit.
            for (let n = 0, total = 0; total <= size; n++) {
              const h: Header = [`X-Many-${n}`, 'v'.repeat(12)];
              headers.push(h);
              total += h[0].length + h[1].length;
            }
          }
          else if (kind === 2) headers.push(['Upload-Metadata', `big ${'QUFB'.repeat(Math.ceil(size / 4))}`]);
          else if (kind === 3) headers.push(['Cookie', `c=${'z'.repeat(size)}`]);
          else p = `/files/${'a'.repeat(size)}`;
          return { name: `headers of ~${size} bytes (kind ${kind})`, method: rng.pick(['POST', 'PATCH', 'HEAD']), path: p, headers, expect: [431], allowClose: true };
        }),
    ],
    [
      'bodies longer than Content-Length or Upload-Length',
      (rng) => {
        const out: Case[] = [];
        // Bytes beyond Content-Length are the start of the next request: here garbage, which Node refuses. Node's
        // parser may meet the garbage before the handler answers: then its own 400 comes first and ends the connection.
        for (let i = 0; i < 30; i++) {
          const body = bodyOf(rng, 1, 40);
          const extra = Buffer.concat([Buffer.from([1]), rng.bytes(rng.int(0, 60)), Buffer.from('\r\n\r\n')]);
          const variant = rng.int(0, 2);
          const headers =
            variant === 0
              ? T([OOS, ['Upload-Offset', String(rng.int(1, 99))], ['Content-Length', String(body.length)]])
              : variant === 1
                ? [OOS, ['Upload-Offset', '0'], ['Content-Length', String(body.length)]] as Header[]
                : T([['Content-Type', 'text/plain'], ['Upload-Offset', '0'], ['Content-Length', String(body.length)]]);
          out.push({ name: `PATCH with ${extra.length} bytes beyond Content-Length (variant ${variant})`, method: 'PATCH', path: fx.fixed.path, headers, body: Buffer.concat([body, extra]), expect: [[409, 400], [412, 400], [415, 400]][variant]!, pipelined: true });
        }
        for (let i = 0; i < 20; i++) {
          const len = rng.int(0, 50);
          out.push({ name: `POST with a body beyond Upload-Length ${len}`, method: 'POST', path: '/files/', headers: T([OOS, ['Upload-Length', String(len)]]), body: bodyOf(rng, len + 1, len + 200), expect: [413], codes: ['ERR_UPLOAD_SIZE_EXCEEDED'] });
        }
        for (let i = 0; i < 20; i++) {
          out.push({ name: 'PATCH with a body beyond Upload-Length 100', method: 'PATCH', path: fx.fixed.path, headers: T([OOS, ['Upload-Offset', '0']]), body: bodyOf(rng, 101, 400), expect: [413], codes: ['ERR_UPLOAD_SIZE_EXCEEDED'] });
        }
        for (let i = 0; i < 8; i++) {
          out.push({ name: 'PATCH a finished upload', method: 'PATCH', path: fx.done.path, headers: T([OOS, ['Upload-Offset', '3']]), body: bodyOf(rng), expect: [413], codes: ['ERR_UPLOAD_SIZE_EXCEEDED'] });
          out.push({ name: 'PATCH a final upload', method: 'PATCH', path: fx.final.path, headers: T([OOS, ['Upload-Offset', '5']]), body: bodyOf(rng), expect: [403], codes: ['ERR_MODIFY_FINAL'] });
        }
        for (let i = 0; i < 10; i++) {
          // Content-Length beyond TUS_MAX_SIZE on a deferred upload: refused before the body is read.
          out.push({ name: 'PATCH deferred beyond TUS_MAX_SIZE', method: 'PATCH', path: fx.deferred.path, headers: T([OOS, ['Upload-Offset', '0'], ['Content-Length', String(rng.int(MAX_SIZE + 1, MAX_SIZE * 4))]]), body: bodyOf(rng, 1, 100), expect: [413], codes: ['ERR_MAX_SIZE_EXCEEDED'] });
          out.push({ name: 'PATCH deferred declaring a length beyond TUS_MAX_SIZE', method: 'PATCH', path: fx.deferred.path, headers: T([OOS, ['Upload-Offset', '0'], ['Upload-Length', String(rng.int(MAX_SIZE + 1, MAX_SIZE * 4))]]), body: bodyOf(rng), expect: [413], codes: ['ERR_MAX_SIZE_EXCEEDED'] });
        }
        return out;
      },
    ],
    [
      'wrong Content-Type (PATCH)',
      (rng) => {
        const types = ['', 'text/plain', 'application/octet-stream', 'application/offset+octet-streamx', 'application/offset', 'application/offset octet-stream', 'application/offset-octet-stream', 'multipart/form-data; boundary=x', 'application/json', 'application/x-www-form-urlencoded', '*/*', 'application/*', 'application/offset+octet-stream, text/plain', 'applicatión/offset+octet-stream', 'application/offset+octet', 'offset+octet-stream', 'application/ offset+octet-stream', 'application/offset+octet-stream/x'];
        return Array.from({ length: 70 }, () => {
          const t = rng.bool(0.8) ? rng.pick(types) : `${rng.chars('abcdefghijklmnopqrstuvwxyz', rng.int(1, 10))}/${rng.chars('abcdefghijklmnopqrstuvwxyz+-.', rng.int(1, 15))}`;
          const headers = T([['Upload-Offset', '0']]);
          if (t !== '' || rng.bool()) headers.push(['Content-Type', t]);
          return { name: `PATCH Content-Type ${JSON.stringify(t)}`, method: 'PATCH', path: rng.pick([fx.fixed.path, fx.deferred.path]), headers, body: bodyOf(rng), expect: [415], codes: ['ERR_INVALID_CONTENT_TYPE'] };
        });
      },
    ],
    [
      'missing or wrong Tus-Resumable',
      (rng) => {
        const versions = [null, '', '1.0', '1.0.1', '0.2.2', '2.0.0', '1.0.0.0', 'v1.0.0', '1.0.0-beta', '1,0,0', '１.０.０', '1.0.0;q=1', '1.0.0 1.0.0', 'latest', '*'];
        const out: Case[] = [];
        for (let i = 0; i < 90; i++) {
          let v = rng.bool(0.8) ? rng.pick(versions) : `${rng.int(0, 9)}.${rng.int(0, 9)}.${rng.int(0, 9)}${rng.pick(['', '.0', 'x', '-rc1'])}`;
          if (v !== null && v.replace(/^[ \t]+|[ \t]+$/g, '') === '1.0.0') v = '1.0.0.1';
          const dup = v === null && rng.bool(0.2);
          const tr: Header[] = dup ? [['Tus-Resumable', '1.0.0'], ['Tus-Resumable', '1.0.0']] : v === null ? [] : [['Tus-Resumable', v]];
          const [method, p, extra, body] = rng.pick([
            ['POST', '/files/', [['Upload-Length', '10']], undefined],
            ['POST', '/files/', [['Upload-Defer-Length', '1']], undefined],
            ['PATCH', fx.fixed.path, [OOS, ['Upload-Offset', '0']], bodyOf(rng)],
            ['DELETE', fx.fixed.path, [], undefined],
            ['DELETE', fx.done.path, [], undefined],
            ['HEAD', fx.fixed.path, [], undefined],
          ] as Array<[string, string, Header[], Buffer | undefined]>);
          if (method === 'HEAD' && tr.length === 0) tr.push(['Tus-Resumable', '0.2.2']); // HEAD may omit it
          out.push({ name: `${method} Tus-Resumable ${JSON.stringify(dup ? '1.0.0 twice' : v)}`, method, path: p, headers: [...tr, ...extra], body, expect: [412], codes: ['ERR_UNSUPPORTED_VERSION'] });
        }
        return out;
      },
    ],
    [
      'raw-socket garbage',
      (rng) => {
        const out: Case[] = [];
        const fixed = [
          'GET / HTTP/1.1\r\n\r\n',
          'GET / HTTP/1.x\r\nHost: x\r\n\r\n',
          'GET / HTTP/11\r\nHost: x\r\n\r\n',
          'GET / FTP/1.1\r\nHost: x\r\n\r\n',
          'GET  /files/  HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET /files/\tHTTP/1.1\r\nHost: x\r\n\r\n',
          'HTTP/1.1 200 OK\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable : 1.0.0\r\nUpload-Length: 1\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\n Tus-Resumable: 1.0.0\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nUpload-Length: 1\r\n  folded\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nX\u0000: y\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
          'POST /files/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n',
          'PATCH /files/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
          'PATCH /files/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n',
          'PATCH /files/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n',
          'GET /files/\u0000 HTTP/1.1\r\nHost: x\r\n\r\n',
          'GET /files/ HTTP/1.1\nHost: x\n\n',
          '\r\n\u0001\r\n\r\n',
          '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003\r\n\r\n', // a TLS ClientHello's first bytes
          'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
        ];
        for (const f of fixed) out.push({ name: `raw ${JSON.stringify(f.slice(0, 50))}`, method: 'RAW', path: '', headers: [], raw: Buffer.from(f, 'latin1'), expect: [400, 404, 405, 411, 412, 413, 415, 431, 505], allowClose: true });
        for (let i = 0; i < 50; i++) {
          // Never a leading CR/LF/TAB: Node skips empty lines before a request and would wait for more.
          const first = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 20, 27, 31, 127, 128, 255]);
          const raw = Buffer.concat([Buffer.from([first]), rng.bytes(rng.int(0, 300)), Buffer.from('\r\n\r\n')]);
          out.push({ name: `raw random ${raw.length} bytes`, method: 'RAW', path: '', headers: [], raw, expect: [400], allowClose: true });
        }
        return out;
      },
    ],
  ];

  const alive = async () => {
    const r = await request({ method: 'OPTIONS', url: `${s.url}/files/`, timeoutMs: REQUEST_TIMEOUT_MS });
    assert.equal(r.status, 200, 'the server still answers OPTIONS');
  };

  for (const [name] of generators) {
    it(name, async () => {
      const cases = categories.get(name)!;
      assert.ok(cases.length >= 20, `${name}: ${cases.length} cases`);
      const failures: string[] = [];
      for (const c of cases) {
        const f = await runCase(s.port, c);
        if (f) failures.push(f);
      }
      assert.deepEqual(failures.slice(0, 25), [], `seed ${SEED}: ${failures.length} of ${cases.length} cases failed`);
      await alive();
    });
  }

  it('generated at least 1,000 requests', (t) => {
    t.diagnostic(`${total} generated requests (seed ${SEED})`);
    assert.ok(total >= 1000, `only ${total} cases`);
  });

  it('a PATCH with a chunked body beyond Upload-Length stores exactly Upload-Length bytes and answers 413', async () => {
    const rng = new Rng(SEED ^ 0x1234);
    for (let i = 0; i < 5; i++) {
      const len = rng.int(1, 30);
      const { url, id } = await createUpload(s.url, { length: len });
      const sent = rng.bytes(rng.int(len + 1, len + 100));
      const chunked = Buffer.concat([Buffer.from(`${sent.length.toString(16)}\r\n`), sent, Buffer.from('\r\n0\r\n\r\n')]);
      const o = await exchange(
        s.port,
        serialize({ name: '', method: 'PATCH', path: new URL(url).pathname, headers: T([OOS, ['Upload-Offset', '0'], ['Transfer-Encoding', 'chunked']]), body: chunked, expect: [] }, s.port),
        { head: false },
      );
      assert.equal(o.timedOut, false);
      assert.equal(o.responses[0]?.status, 413);
      assert.match(o.responses[0]!.body, /^ERR_UPLOAD_SIZE_EXCEEDED: /);
      const h = await head(url);
      assert.equal(h.headers['upload-offset'], String(len));
      assert.deepEqual(await readFile(path.join(storeRoot, id)), sent.subarray(0, len));
    }
  });

  it('bytes beyond Content-Length are not part of the body', async () => {
    // Pipelined: the bytes after the 5-byte body are a second request, answered on the same connection. (OPTIONS,
    // not HEAD: a HEAD for the same upload would take its lock and pre-empt the PATCH, by design.)
    const { url, id } = await createUpload(s.url, { length: 20 });
    const p = new URL(url).pathname;
    const second = `OPTIONS /files/ HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n`;
    const o = await exchange(
      s.port,
      serialize({ name: '', method: 'PATCH', path: p, headers: T([OOS, ['Upload-Offset', '0'], ['Content-Length', '5']]), body: Buffer.from(`hello${second}`, 'latin1'), expect: [] }, s.port),
      { head: false, pipelined: true },
    );
    assert.equal(o.timedOut, false);
    assert.deepEqual(o.responses.map((r) => r.status), [204, 200], JSON.stringify(o.responses));
    assert.equal(o.responses[0]!.headers['upload-offset'], '5');
    assert.equal(o.responses[1]!.headers['tus-version'], '1.0.0');
    assert.equal((await head(url)).headers['upload-offset'], '5');
    assert.equal(await readFile(path.join(storeRoot, id), 'latin1'), 'hello');

    // Garbage after the body: Node refuses it (possibly before the PATCH is answered); no garbage byte is stored.
    const o2 = await exchange(
      s.port,
      serialize({ name: '', method: 'PATCH', path: p, headers: T([OOS, ['Upload-Offset', '5'], ['Content-Length', '5']]), body: Buffer.from('world\u0001garbage\r\n\r\n', 'latin1'), expect: [] }, s.port),
      { head: false, pipelined: true },
    );
    assert.equal(o2.timedOut, false);
    for (const r of o2.responses) assert.ok(r.status === 204 || r.status === 400, `status ${r.status}`);
    const h = await head(url);
    const stored = await readFile(path.join(storeRoot, id), 'latin1');
    assert.ok(stored === 'hello' || stored === 'helloworld', JSON.stringify(stored));
    assert.equal(h.headers['upload-offset'], String(stored.length));
  });

  it('a body cut short before its Content-Length keeps the bytes that arrived', async () => {
    const size = 100_000;
    const { url, id } = await createUpload(s.url, { length: size });
    const data = new Rng(SEED ^ 0xabc).bytes(size);
    const sent = 30_000;
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect(s.port, '127.0.0.1', () => {
        const headers = `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${size}\r\n\r\n`;
        sock.write(headers);
        sock.write(data.subarray(0, sent), () => {
          // Give the bytes time to reach the server (not an assertion), then drop the connection.
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 300);
        });
      });
      sock.on('error', reject);
    });
    // The server notices the close, saves what arrived and releases the lock; HEAD reports the stored offset.
    let offset = -1;
    let onDisk = -2;
    for (let i = 0; i < 100 && !(offset > 0 && offset === onDisk); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const h = await head(url);
      assert.equal(h.status, 200);
      offset = Number(h.headers['upload-offset']);
      onDisk = (await stat(path.join(storeRoot, id))).size;
    }
    assert.ok(offset > 0, `offset ${offset} after a cut body`);
    assert.ok(offset <= sent, `offset ${offset} is not beyond the ${sent} bytes sent`);
    assert.equal(offset, onDisk, 'Upload-Offset equals the bytes on disk');
    assert.deepEqual(await readFile(path.join(storeRoot, id)), data.subarray(0, offset));
    // The upload resumes from there.
    const p = await patch(url, offset, data.subarray(offset));
    assert.equal(p.status, 204);
    assert.equal(p.headers['upload-offset'], String(size));
    assert.deepEqual(await readFile(path.join(storeRoot, id)), data);
  });

  it('the fixtures were not changed by any malformed request', async () => {
    const expectOffset = async (u: { url: string; id: string }, offset: number, length: string | undefined) => {
      const h = await head(u.url);
      assert.equal(h.status, 200, u.url);
      assert.equal(h.headers['upload-offset'], String(offset), u.url);
      assert.equal(h.headers['upload-length'], length, u.url);
      assert.equal((await stat(path.join(storeRoot, u.id))).size, offset);
    };
    await expectOffset(fx.fixed, 0, '100');
    await expectOffset(fx.deferred, 0, undefined);
    assert.equal((await head(fx.deferred.url)).headers['upload-defer-length'], '1');
    await expectOffset(fx.partialOpen, 0, '10');
    await expectOffset(fx.partialDone, 5, '5');
    await expectOffset(fx.done, 3, '3');
    await expectOffset(fx.final, 5, '5');
    // The sentinel "upload" outside the store is invisible to the server.
    assert.equal((await head(`${s.url}/files/${sentinelId}`)).status, 404);
  });

  it('the server still serves a normal upload', async () => {
    const { url, id } = await createUpload(s.url, { length: 11, metadata: `filename ${b64('ok.txt')}` });
    const p = await patch(url, 0, 'hello world');
    assert.equal(p.status, 204);
    assert.equal(p.headers['upload-offset'], '11');
    assert.equal(await readFile(path.join(storeRoot, id), 'utf8'), 'hello world');
    const d = await request({ method: 'DELETE', url, headers: TR });
    assert.equal(d.status, 204);
  });

  it('no file appeared, changed or vanished outside the storage root', async () => {
    const now = await snapshot(top);
    // The server's own folders for reports and events may hold records of the normal uploads, and the shipped
    // deliver.yml's file targets (./uploads/<name>) their deliveries.
    const uploadsDir = path.dirname(storeRoot);
    const allowed = [storeRoot, ...['reports', 'events', 'edav', 'ehdi', 'eicr', 'ncird'].map((d) => path.join(uploadsDir, d))].map((d) => `${d}${path.sep}`);
    const inAllowed = (p: string) => allowed.some((a) => p.startsWith(a) || `${p}` === a);
    const added = [...now.keys()].filter((p) => !before0.has(p) && !inAllowed(p));
    const changed = [...before0.keys()].filter((p) => !inAllowed(p) && now.get(p) !== before0.get(p));
    assert.deepEqual(added, [], 'new files outside the storage root');
    assert.deepEqual(changed, [], 'files outside the storage root changed or removed');
    // Nothing upload-like or sentinel-named appeared directly in the system temp folder either.
    const tmpNew = (await readdir(tmpdir())).filter((n) => !tmpBefore.has(n));
    assert.deepEqual(tmpNew.filter((n) => UUID_RE.test(n.replace(/\.(info|meta|part|tmp)$/, '')) || ['etc', 'passwd', 'secret.txt'].includes(n)), []);
    // Every file the server made in its store is an upload of ours (uuid, uuid.info, or a staging file beside them).
    for (const p of now.keys()) {
      if (!p.startsWith(`${storeRoot}${path.sep}`) || p.endsWith('/')) continue;
      assert.match(path.basename(p), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(\..+)?$/, p);
    }
  });

  it('logged no error', () => {
    const bad = s
      .logs()
      .split('\n')
      .filter((l) => /"level":(50|60)/.test(l) || /"msg":"request failed"/.test(l));
    assert.deepEqual(bad.slice(0, 5), []);
  });
});
