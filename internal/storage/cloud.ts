// What the S3 and Azure stores share: object names, the `.info` document, checksum staging through the local spool,
// and telling an unreachable backend from one that answered with an error.
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CorruptInfoError, NotFoundError, StorageUnavailableError, type StagedChunk, type Upload, type UploadInfo } from './store.js';

// Ids are server-generated, but a store never trusts its caller with an object name.
export const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** `<prefix>/<id><suffix>` (just `<id><suffix>` with an empty prefix). */
export function objectKey(prefix: string, id: string, suffix = ''): string {
  if (!SAFE_ID.test(id)) throw new NotFoundError(id);
  return prefix ? `${prefix}/${id}${suffix}` : `${id}${suffix}`;
}

/** The upload ids among object names listed under the prefix (`<id>.info`; nothing in sub-folders). */
export function idsFromNames(prefix: string, names: Iterable<string>): string[] {
  const start = prefix ? `${prefix}/` : '';
  const ids: string[] = [];
  for (const n of names) {
    if (!n.startsWith(start) || !n.endsWith('.info')) continue;
    const id = n.slice(start.length, -'.info'.length);
    if (SAFE_ID.test(id)) ids.push(id);
  }
  return ids;
}

/** A stored `.info`; one that is not a JSON object (torn, foreign) names no upload a client can use. */
export function parseInfo<T extends UploadInfo>(id: string, text: string): T {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CorruptInfoError(id);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v) || typeof (v as UploadInfo).Size !== 'number') throw new CorruptInfoError(id);
  const info = v as T;
  info.ID = id;
  info.MetaData ??= {};
  info.CreatedAt ??= 0;
  return info;
}

/**
 * Changes made to an upload through the store rather than through its Upload object (a declared length, the parts
 * of a concatenation, a kept sha256): an Upload object loaded before such a change reloads its state before use.
 * The protocol core makes these changes and then goes on with the Upload object it had (in the same request).
 */
export class Generations {
  private readonly counts = new Map<string, number>();
  private static readonly LIMIT = 10_000;

  of(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  bump(id: string): void {
    const next = this.of(id) + 1;
    this.counts.delete(id);
    this.counts.set(id, next);
    if (this.counts.size > Generations.LIMIT) this.counts.delete(this.counts.keys().next().value!);
  }
}

/**
 * One at a time per upload: a sha256 kept in the background (read, change, write the info) and a termination of the
 * same upload must not interleave, or the info would come back after the upload was removed.
 */
export class PerUpload {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(id, tail);
    void tail.then(() => {
      if (this.tails.get(id) === tail) this.tails.delete(id);
    });
    return next;
  }
}

/** What a cloud store does for its Upload objects. */
export interface CloudUploads<S> {
  readonly generations: Generations;
  load(id: string): Promise<S>;
  view(state: S): UploadInfo;
  write(upload: CloudUpload<S>, body: Readable, expectedBytes: number | undefined): Promise<number>;
  complete(upload: CloudUpload<S>): Promise<void>;
  read(upload: CloudUpload<S>): Promise<Readable>;
}

/** An upload of a cloud store: its state as loaded, reloaded when the store changed the upload since. */
export class CloudUpload<S> implements Upload {
  private generation: number;

  constructor(
    private readonly store: CloudUploads<S>,
    readonly id: string,
    public state: S,
  ) {
    this.generation = store.generations.of(id);
  }

  async fresh(): Promise<S> {
    const now = this.store.generations.of(this.id);
    if (now !== this.generation) {
      this.state = await this.store.load(this.id);
      this.generation = now;
    }
    return this.state;
  }

  async getInfo(): Promise<UploadInfo> {
    return this.store.view(await this.fresh());
  }

  writeChunk(_offset: number, body: Readable, expectedBytes?: number): Promise<number> {
    return this.store.write(this, body, expectedBytes);
  }

  finish(): Promise<void> {
    return this.store.complete(this);
  }

  read(): Promise<Readable> {
    return this.store.read(this);
  }
}

/** Network-level failures: the backend was not reached, or did not answer in time. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

export function isUnreachable(err: unknown): boolean {
  const e = err as { code?: string; name?: string; errors?: unknown[]; cause?: unknown; $metadata?: { httpStatusCode?: number }; statusCode?: number };
  if (!e || typeof e !== 'object') return false;
  if (e.code && UNREACHABLE.has(e.code)) return true;
  if (e.name === 'TimeoutError' || e.code === 'REQUEST_SEND_ERROR' || e.name === 'RequestTimeout') return true;
  if ((e.$metadata?.httpStatusCode ?? e.statusCode) === 503) return true;
  if (Array.isArray(e.errors) && e.errors.some(isUnreachable)) return true;
  return e.cause !== undefined && e.cause !== err && isUnreachable(e.cause);
}

/** A backend failure as the protocol core should see it: unreachable → StorageUnavailableError (503). */
export function storageFailure(err: unknown, what: string): unknown {
  if (err instanceof NotFoundError || err instanceof StorageUnavailableError) return err;
  if (isUnreachable(err)) return new StorageUnavailableError(`${what}: the storage backend is unreachable`, { cause: err });
  return err;
}

/** Runs requests to the backend, with their failures as the protocol core should see them (storageFailure). */
export async function backendCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw storageFailure(err, what);
  }
}

/**
 * Checksummed chunks are staged in the local spool (beside the bytes on their way to the backend) and appended only
 * once their digest matched (decisions.md): on a mismatch nothing of them reaches the backend.
 */
export class SpoolStager {
  constructor(
    private readonly dir: string,
    private readonly open: (id: string) => Promise<Upload>,
    /** Told once a staged chunk was appended (through an Upload object of its own). */
    private readonly changed: (id: string) => void,
  ) {}

  async stageChunk(id: string, body: Readable): Promise<StagedChunk> {
    if (!SAFE_ID.test(id)) throw new NotFoundError(id);
    const file = path.join(this.dir, `${id}.chunk-${randomBytes(6).toString('hex')}`);
    const out = createWriteStream(file, { flags: 'wx', highWaterMark: 64 * 1024 });
    try {
      await pipeline(body, out);
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    const bytes = out.bytesWritten;
    return {
      bytes,
      commit: async () => {
        try {
          const upload = await this.open(id);
          const { Offset } = await upload.getInfo();
          const written = await upload.writeChunk(Offset, createReadStream(file, { highWaterMark: 64 * 1024 }), bytes);
          this.changed(id);
          return Offset + written;
        } finally {
          await rm(file, { force: true });
        }
      },
      discard: () => rm(file, { force: true }),
    };
  }
}

/** The stored bytes of several uploads, one after the other, each opened when the previous one is done. */
export async function* concatenated(opens: Array<() => Promise<Readable>>): AsyncGenerator<Buffer> {
  for (const open of opens) {
    const body = await open();
    for await (const chunk of body) yield chunk as Buffer;
  }
}

/** A downloaded body as text. */
export async function readText(body: NodeJS.ReadableStream | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  if (body) for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
