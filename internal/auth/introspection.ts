// Opaque tokens: RFC 7662 introspection, answers cached for a short time, every failure refused (fail closed).
import { createHash } from 'node:crypto';
import type { Logger } from '../logging/logger.js';
import { fetchWithDeadline, jsonObject } from './fetch.js';

export interface IntrospectorOptions {
  /** The endpoint. Client credentials may be given as `https://client:secret@host/path`; they are sent as Basic auth. */
  url: string;
  log: Logger;
  /** Longest time an answer is reused (never beyond the token's `exp`). */
  cacheMs?: number;
  /** Most answers kept; the oldest go first. */
  maxEntries?: number;
  timeoutMs?: number;
}

/** The endpoint could not give a usable answer (down, timeout, non-200, not RFC 7662 JSON). */
export class IntrospectionUnavailable extends Error {}

interface Cached {
  answer: Record<string, unknown>;
  until: number;
}

export class Introspector {
  private readonly endpoint: string;
  private readonly authorization?: string;
  private readonly cache = new Map<string, Cached>();
  private readonly inFlight = new Map<string, Promise<Record<string, unknown>>>();
  private readonly cacheMs: number;
  private readonly maxEntries: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: IntrospectorOptions) {
    const url = new URL(opts.url);
    if (url.username || url.password) {
      const id = decodeURIComponent(url.username);
      const secret = decodeURIComponent(url.password);
      this.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    this.endpoint = url.href;
    this.cacheMs = opts.cacheMs ?? 30_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  /** The endpoint's answer (RFC 7662 §2.2) for the token; concurrent asks for one token share one request. */
  async introspect(token: string): Promise<Record<string, unknown>> {
    // Keyed by a digest: the cache never holds a usable token.
    const key = createHash('sha256').update(token).digest('base64url');
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.answer;
    if (hit) this.cache.delete(key);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.ask(token)
        .then((answer) => {
          this.remember(key, answer);
          return answer;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async ask(token: string): Promise<Record<string, unknown>> {
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
    if (this.authorization) headers['authorization'] = this.authorization;
    const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
    try {
      const res = await fetchWithDeadline(this.endpoint, { method: 'POST', headers, body, redirect: 'error' }, this.timeoutMs);
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`${res.status} ${res.statusText} from ${this.endpoint}`);
      }
      const answer = await jsonObject(res, 'introspection response');
      if (typeof answer['active'] !== 'boolean') throw new Error('introspection response has no boolean "active"');
      return answer;
    } catch (err) {
      const reason = (err as Error).message.split(token).join('[token]');
      this.opts.log.warn({ endpoint: this.endpoint, reason }, 'token introspection failed');
      throw new IntrospectionUnavailable(reason);
    }
  }

  private remember(key: string, answer: Record<string, unknown>): void {
    let until = Date.now() + this.cacheMs;
    if (typeof answer['exp'] === 'number') until = Math.min(until, answer['exp'] * 1000);
    if (until <= Date.now()) return;
    if (this.cache.size >= this.maxEntries) {
      for (const [k, v] of this.cache) if (v.until <= Date.now()) this.cache.delete(k);
      while (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, { answer, until });
  }
}
