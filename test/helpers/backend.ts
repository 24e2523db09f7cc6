// Which upload storage the test servers use (DEX_TEST_BACKEND = file | s3 | azure; scripts/run-tests.mjs runs the
// protocol suites once per backend), and a view of what that storage holds, so that the same tests check the bytes,
// info and files of an upload whatever keeps them. Cloud backends run against one emulator per test file (s3rver or
// Azurite, behind a fault-injecting proxy), with a bucket or container of its own for each server.
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ContainerClient } from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type Azurite } from './azurite.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { S3RVER_ACCESS_KEY, S3RVER_REGION, S3RVER_SECRET_KEY, startS3rver, type S3rver } from './s3.js';

export type Backend = 'file' | 's3' | 'azure';

function selected(): Backend {
  const v = process.env['DEX_TEST_BACKEND'] ?? 'file';
  if (v !== 'file' && v !== 's3' && v !== 'azure') throw new Error(`DEX_TEST_BACKEND=${v}: use file, s3 or azure`);
  return v;
}
export const BACKEND: Backend = selected();

/** What the upload storage holds, named as in the file store's folder (`<id>`, `<id>.info`, `<id>.meta`, ...). */
export interface StoreView {
  readonly backend: Backend;
  /** Every entry: `<id>` for each upload (its bytes), `<id>.info`, `<id>.meta`, and anything else kept there. */
  names(): Promise<string[]>;
  /**
   * Bytes held for an entry, -1 when there is none. For `<id>`: the upload's bytes, including those received and
   * kept on local disk on their way to a cloud backend.
   */
  size(name: string): Promise<number>;
  exists(name: string): Promise<boolean>;
  /** The entry's bytes (for `<id>`, the upload's bytes); throws when there is none. */
  read(name: string): Promise<Buffer>;
  readInfo(id: string): Promise<Record<string, unknown> & { ID: string; Size: number; SizeIsDeferred: boolean; MetaData: Record<string, string> }>;
  /** Writes an entry (`name/` makes a folder; `../name` is beside the store's folder, outside it). */
  write(name: string, data: string | Buffer): Promise<void>;
  /** Sizes of the checksummed chunks staged for an upload and not yet appended. */
  staged(id: string): Promise<number[]>;
  /** Reads of the upload's bytes still open (file descriptors, or requests to the backend). */
  openReads(id: string): Promise<number>;
  /** Makes every operation of the storage fail until the returned function is called. */
  break(): Promise<() => Promise<void>>;
  /** Bytes of the upload the backend itself holds (without those on local disk on their way to it). */
  persisted(id: string): Promise<number>;
  /** The proxy between the server and a cloud backend (fault injection), undefined for the file store. */
  readonly proxy?: FaultProxy;
  /** The bucket or container of a cloud backend. */
  readonly location?: string;
}

export interface BackendSetup {
  view: StoreView;
  /** Variables that point the server at the storage. */
  env: Record<string, string>;
}

/** The storage for one server; `state` (in its folder) keeps the bucket or container for a restart in the same folder. */
export async function setUpBackend(backend: Backend, opts: { storeDir: string; prefix: string; pid: () => number; stateFile: string }): Promise<BackendSetup> {
  if (backend === 'file') return { view: new FileView(opts.storeDir, opts.pid), env: {} };
  const name = await readFile(opts.stateFile, 'utf8').catch(() => `dex-${randomBytes(6).toString('hex')}`);
  await writeFile(opts.stateFile, name);
  if (backend === 's3') {
    const { s3rver, proxy } = await sharedS3();
    const client = s3rver.client();
    await s3rver.createBucket(name).catch((err: unknown) => {
      if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(String((err as Error).name))) throw err;
    });
    return {
      view: new S3View(s3rver, client, proxy, name, opts.prefix, opts.storeDir),
      env: {
        S3_ENDPOINT: proxy.endpoint,
        S3_BUCKET_NAME: name,
        AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY: S3RVER_SECRET_KEY,
        AWS_REGION: S3RVER_REGION,
        // Small parts, so that the suites' uploads of a few MiB span several of them.
        S3_PART_SIZE: String(5 * 1024 * 1024),
      },
    };
  }
  const { azurite, proxy } = await sharedAzurite();
  const container = azurite.serviceClient().getContainerClient(name);
  await container.createIfNotExists();
  return {
    view: new AzureView(container, proxy, name, opts.prefix, opts.storeDir),
    env: {
      AZURE_STORAGE_ACCOUNT: AZURITE_ACCOUNT,
      AZURE_STORAGE_KEY: AZURITE_KEY,
      AZURE_ENDPOINT: `${proxy.endpoint}/${AZURITE_ACCOUNT}`,
      TUS_AZURE_CONTAINER_NAME: name,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One emulator (and proxy) per test process, started on first use; it ends with the process.

let s3Shared: Promise<{ s3rver: S3rver; proxy: FaultProxy }> | undefined;
let azuriteShared: Promise<{ azurite: Azurite; proxy: FaultProxy }> | undefined;

export function sharedS3(): Promise<{ s3rver: S3rver; proxy: FaultProxy }> {
  s3Shared ??= (async () => {
    const s3rver = await startS3rver();
    s3rver.unref();
    // At exit only synchronous work runs: the emulator is killed by its own exit handler, its folder removed here.
    process.once('exit', () => rmSync(s3rver.directory, { recursive: true, force: true }));
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: s3rver.port }, { unref: true });
    return { s3rver, proxy };
  })();
  return s3Shared;
}

export function sharedAzurite(): Promise<{ azurite: Azurite; proxy: FaultProxy }> {
  azuriteShared ??= (async () => {
    const azurite = await startAzurite();
    azurite.unref();
    process.once('exit', () => rmSync(azurite.directory, { recursive: true, force: true }));
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: azurite.port }, { unref: true });
    return { azurite, proxy };
  })();
  return azuriteShared;
}

// ---------------------------------------------------------------------------------------------------------------
// Views

const isDataName = (name: string) => !name.includes('.') && !name.includes('/');

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return -1;
  }
}

/** Bytes of an upload on local disk on their way to a cloud backend (the store's spool files), oldest first. */
async function spooled(storeDir: string, id: string): Promise<Buffer[]> {
  const names = (await readdir(storeDir).catch(() => [] as string[])).filter((n) => n.startsWith(`${id}.spool-`));
  const files = await Promise.all(names.map(async (n) => ({ n, s: await stat(path.join(storeDir, n)).catch(() => null) })));
  const present = files.filter((f) => f.s !== null).sort((a, b) => a.s!.birthtimeMs - b.s!.birthtimeMs);
  return (await Promise.all(present.map((f) => readFile(path.join(storeDir, f.n)).catch(() => Buffer.alloc(0)))));
}

async function stagedIn(storeDir: string, id: string): Promise<number[]> {
  const names = (await readdir(storeDir).catch(() => [] as string[])).filter((n) => n.startsWith(`${id}.chunk-`));
  return (await Promise.all(names.map((n) => sizeOf(path.join(storeDir, n))))).filter((s) => s >= 0);
}

class FileView implements StoreView {
  readonly backend = 'file' as const;
  constructor(
    private readonly dir: string,
    private readonly pid: () => number,
  ) {}

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  async names(): Promise<string[]> {
    // Without the temporaries of an atomic `.info` rewrite (a finished upload's sha256 is kept in the background).
    return (await readdir(this.dir)).filter((n) => !/\.info\.[0-9a-f]+\.tmp$/.test(n)).sort();
  }

  size(name: string): Promise<number> {
    return sizeOf(this.file(name));
  }

  async exists(name: string): Promise<boolean> {
    return (await this.size(name)) >= 0;
  }

  read(name: string): Promise<Buffer> {
    return readFile(this.file(name));
  }

  async readInfo(id: string) {
    return JSON.parse(await readFile(this.file(`${id}.info`), 'utf8'));
  }

  async write(name: string, data: string | Buffer): Promise<void> {
    if (name.endsWith('/')) {
      await mkdir(this.file(name), { recursive: true });
      return;
    }
    await mkdir(path.dirname(this.file(name)), { recursive: true });
    await writeFile(this.file(name), data);
  }

  staged(id: string): Promise<number[]> {
    return stagedIn(this.dir, id);
  }

  async openReads(id: string): Promise<number> {
    const real = await realpath(this.file(id)).catch(() => this.file(id));
    const fds = await readdir(`/proc/${this.pid()}/fd`).catch(() => [] as string[]);
    let n = 0;
    for (const fd of fds) if ((await readlink(`/proc/${this.pid()}/fd/${fd}`).catch(() => '')) === real) n++;
    return n;
  }

  persisted(id: string): Promise<number> {
    return this.size(id);
  }

  async break(): Promise<() => Promise<void>> {
    // The store's folder replaced by a file: creating anything in it fails.
    const parked = `${this.dir}.parked`;
    await rm(parked, { recursive: true, force: true });
    await rename(this.dir, parked);
    await writeFile(this.dir, 'not a folder');
    return async () => {
      await rm(this.dir, { force: true });
      await rename(parked, this.dir);
    };
  }
}

interface CloudInfo {
  ID: string;
  Size: number;
  SizeIsDeferred: boolean;
  MetaData: Record<string, string>;
  Parts?: Array<{ PartNumber: number; Size: number }>;
  IncompletePartSize?: number;
  Storage?: Record<string, string>;
}

abstract class CloudView implements StoreView {
  abstract readonly backend: Backend;
  abstract readonly location: string;
  constructor(
    readonly proxy: FaultProxy,
    protected readonly prefix: string,
    protected readonly storeDir: string,
  ) {}

  /** The object or blob name of an entry (`../x`: beside the prefix). */
  protected key(name: string): string {
    if (name.startsWith('../')) return name.slice(3);
    return this.prefix ? `${this.prefix}/${name}` : name;
  }

  /** Every object under the prefix, relative to it. */
  protected abstract objects(): Promise<string[]>;
  /** The object's bytes, or undefined. */
  protected abstract object(key: string): Promise<Buffer | undefined>;
  protected abstract objectSize(key: string): Promise<number>;
  protected abstract put(key: string, data: Buffer): Promise<void>;
  /** The bytes the backend keeps of an upload (`whole`: its object or blob, if there is one). */
  protected abstract uploaded(info: CloudInfo, whole: Buffer | undefined): Promise<Buffer>;
  /** The proxy path of a request reading the upload's bytes. */
  protected abstract readPath(id: string): string;
  protected abstract ownRequest(url: string): boolean;

  async names(): Promise<string[]> {
    // Bytes on their way to the backend and staged chunks are kept in the local folder, named as in the file store.
    const local = (await readdir(this.storeDir).catch(() => [] as string[])).filter((n) => /\.(spool|chunk)-[0-9a-f]+$/.test(n));
    const out = new Set<string>(local);
    for (const n of await this.objects()) {
      // S3's incomplete part is a piece of `<id>`.
      if (n.endsWith('.part') && isDataName(n.slice(0, -5))) continue;
      out.add(n);
      if (n.endsWith('.info') && isDataName(n.slice(0, -5))) out.add(n.slice(0, -5));
    }
    return [...out].sort();
  }

  private async info(id: string): Promise<CloudInfo | undefined> {
    const text = await this.object(this.key(`${id}.info`));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text.toString()) as CloudInfo;
    } catch {
      return undefined;
    }
  }

  async size(name: string): Promise<number> {
    if (!isDataName(name)) return this.objectSize(this.key(name));
    if ((await this.objectSize(this.key(name))) < 0 && !(await this.info(name))) return -1;
    return (await this.read(name)).length;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.size(name)) >= 0;
  }

  async read(name: string): Promise<Buffer> {
    const whole = await this.object(this.key(name));
    if (!isDataName(name)) {
      if (whole === undefined) throw Object.assign(new Error(`no ${name} in the store`), { code: 'ENOENT' });
      return whole;
    }
    const info = await this.info(name);
    const stored = info ? await this.uploaded(info, whole) : whole;
    if (stored === undefined) throw Object.assign(new Error(`no upload ${name} in the store`), { code: 'ENOENT' });
    return Buffer.concat([stored, ...(await spooled(this.storeDir, name))]);
  }

  async persisted(id: string): Promise<number> {
    const info = await this.info(id);
    if (!info) return -1;
    return (await this.uploaded(info, await this.object(this.key(id)))).length;
  }

  async readInfo(id: string) {
    const info = await this.info(id);
    if (!info) throw Object.assign(new Error(`no ${id}.info in the store`), { code: 'ENOENT' });
    return info as unknown as Record<string, unknown> & CloudInfo;
  }

  async write(name: string, data: string | Buffer): Promise<void> {
    await this.put(this.key(name), Buffer.from(data));
  }

  staged(id: string): Promise<number[]> {
    return stagedIn(this.storeDir, id);
  }

  async openReads(id: string): Promise<number> {
    const p = this.readPath(id);
    return this.proxy.inFlight().filter((r) => r.method === 'GET' && r.url.split('?')[0] === p).length;
  }

  async break(): Promise<() => Promise<void>> {
    const remove = this.proxy.addRule((r) => (this.ownRequest(r.url) ? { kind: 'error' } : undefined));
    return async () => remove();
  }
}

const isMissing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
};

class S3View extends CloudView {
  readonly backend = 's3' as const;
  constructor(
    private readonly s3rver: S3rver,
    private readonly client: S3Client,
    proxy: FaultProxy,
    readonly location: string,
    prefix: string,
    storeDir: string,
  ) {
    super(proxy, prefix, storeDir);
  }

  protected async objects(): Promise<string[]> {
    const start = this.prefix ? `${this.prefix}/` : '';
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: this.location, Prefix: start, ContinuationToken: token }));
      for (const o of res.Contents ?? []) if (o.Key) out.push(o.Key.slice(start.length));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  protected async object(key: string): Promise<Buffer | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.location, Key: key }));
      return Buffer.from(await res.Body!.transformToByteArray());
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  protected async objectSize(key: string): Promise<number> {
    try {
      return (await this.client.send(new HeadObjectCommand({ Bucket: this.location, Key: key }))).ContentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) return -1;
      throw err;
    }
  }

  protected async put(key: string, data: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.location, Key: key, Body: data }));
  }

  /**
   * A completed upload is its object. Before that, the parts its `.info` lists, read from s3rver's own files (S3
   * cannot list them), then the incomplete part (s3rver may leave an object of a PUT that was cut off: not ours).
   */
  protected async uploaded(info: CloudInfo, whole: Buffer | undefined): Promise<Buffer> {
    if ((info as { Completed?: boolean }).Completed) return whole ?? Buffer.alloc(0);
    const uploadId = info.Storage?.['MultipartUpload'];
    const parts = uploadId ? await Promise.all((info.Parts ?? []).map((p) => readFile(this.s3rver.partFile(this.location, uploadId, p.PartNumber)))) : [];
    const pending = info.IncompletePartSize ?? 0;
    const aside = pending > 0 ? ((await this.object(this.key(`${info.ID}.part`))) ?? Buffer.alloc(0)).subarray(0, pending) : Buffer.alloc(0);
    return Buffer.concat([...parts, aside]);
  }

  protected readPath(id: string): string {
    return `/${this.location}/${this.key(id)}`;
  }

  protected ownRequest(url: string): boolean {
    return url.startsWith(`/${this.location}/`) || url.startsWith(`/${this.location}?`) || url === `/${this.location}`;
  }

}

class AzureView extends CloudView {
  readonly backend = 'azure' as const;
  constructor(
    private readonly container: ContainerClient,
    proxy: FaultProxy,
    readonly location: string,
    prefix: string,
    storeDir: string,
  ) {
    super(proxy, prefix, storeDir);
  }

  protected async objects(): Promise<string[]> {
    const start = this.prefix ? `${this.prefix}/` : '';
    const out: string[] = [];
    for await (const b of this.container.listBlobsFlat({ prefix: start })) out.push(b.name.slice(start.length));
    return out;
  }

  protected async object(key: string): Promise<Buffer | undefined> {
    try {
      // One GET (downloadToBuffer reads size and bytes in two requests: torn if the blob is replaced in between).
      const chunks: Buffer[] = [];
      const body = (await this.container.getBlobClient(key).download()).readableStreamBody;
      if (body) for await (const c of body) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  protected async objectSize(key: string): Promise<number> {
    try {
      return (await this.container.getBlobClient(key).getProperties()).contentLength ?? 0;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return -1;
      throw err;
    }
  }

  protected async put(key: string, data: Buffer): Promise<void> {
    await this.container.getBlockBlobClient(key).uploadData(data);
  }

  /** An Azure upload is its blob's committed blocks: nothing before the first commit. */
  protected async uploaded(_info: CloudInfo, whole: Buffer | undefined): Promise<Buffer> {
    return whole ?? Buffer.alloc(0);
  }

  protected readPath(id: string): string {
    return `/${AZURITE_ACCOUNT}/${this.location}/${this.key(id)}`;
  }

  protected ownRequest(url: string): boolean {
    return url.startsWith(`/${AZURITE_ACCOUNT}/${this.location}`);
  }
}
