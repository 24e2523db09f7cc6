// tus uploads in an Azure Blob container: `<prefix>/<id>` is a block blob holding the bytes, `<prefix>/<id>.info`
// the upload's state as JSON, `<prefix>/<id>.meta` the finished upload's manifest (also set as the data blob's
// metadata, as the original's pre-finish appender does).
//
// A body is cut into blocks as it arrives, streamed several at once (internal/storage/pieces.ts), and the block list
// is committed as blocks complete: the blob's committed length is the offset, so it is what is really stored and it
// survives a restart of the server.
import type { BlobServiceClient, BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { encodeMetadata } from '../../delivery/targets/metadata.js';
import { errorText } from '../../delivery/targets/errors.js';
import type { Logger } from '../../logging/logger.js';
import { backendCall, CloudUpload, concatenated, Generations, PerUpload, type CloudUploads, readText, idsFromNames, objectKey, parseInfo, SpoolStager } from '../cloud.js';
import { removeSpoolLeftovers, writePieces, type PieceSink } from '../pieces.js';
import {
  newInfo,
  NotFoundError,
  type ChunkStager,
  type Concater,
  type DataStore,
  type InfoUpdater,
  type LengthDeclarer,
  type Lister,
  type ManifestKeeper,
  type NewUpload,
  type StagedChunk,
  type Terminater,
  type Upload,
  type UploadInfo,
  parseManifest,
  STALE_TEMPORARY_MS,
} from '../store.js';

const MiB = 1024 * 1024;
/** Azure's limits: at most 50,000 committed blocks of at most 4000 MiB each. */
const MAX_BLOCKS = 50_000;
const MAX_BLOCK_SIZE = 4000 * MiB;
/** Blocks as large as this, or larger when an upload needs them to fit 50,000. */
const BLOCK_SIZE = 32 * MiB;
/** A deferred-length upload is sized for this much when TUS_MAX_SIZE is not set. */
const DEFERRED_BOUND = 5 * 1024 * 1024 * MiB;

export interface AzureStoreOptions {
  /** Retries failed requests; `streamService` never does (streamed bodies cannot be sent twice). */
  service: BlobServiceClient;
  streamService: BlobServiceClient;
  container: string;
  /** TUS_UPLOAD_PREFIX: the blobs' folder in the container. */
  prefix: string;
  /** TUS_MAX_SIZE (0: none), the largest a deferred-length upload may become: its blocks are sized for it. */
  maxSize: number;
  /** Other instances may share the local folder (the Redis locker): start-up leaves their young spool files alone. */
  sharedSpool?: boolean;
  /** Local folder for the bytes on their way to the container and for staged checksummed chunks. */
  spoolDir: string;
  log: Logger;
  /** Blocks sent at once by one upload (default 4). */
  blocksInFlight?: number;
}

interface AzureState {
  info: UploadInfo;
  /** The data blob's committed length (0 while it does not exist) and when it last changed. */
  offset: number;
  lastModified: number;
}

/** What one piece became: a staged block, or the whole blob in a single request. */
type AzurePiece = { block: string; length: number } | { whole: true; length: number };

const isMissing = (err: unknown) => (err as { statusCode?: number }).statusCode === 404;
/** Block ids are of one length in a blob: `dexblock` and a counter, base64. */
const blockId = (n: number) => Buffer.from(`dexblock${String(n).padStart(8, '0')}`).toString('base64');

export class AzureStore
  implements DataStore, Terminater, Concater, LengthDeclarer, ChunkStager, Lister, InfoUpdater, ManifestKeeper, CloudUploads<AzureState>
{
  readonly healthName = 'Tus storage';
  readonly generations = new Generations();
  private readonly serial = new PerUpload();
  private readonly container: ContainerClient;
  private readonly streamContainer: ContainerClient;
  private readonly stager: SpoolStager;
  private readonly log: Logger;

  constructor(private readonly opts: AzureStoreOptions) {
    this.container = opts.service.getContainerClient(opts.container);
    this.streamContainer = opts.streamService.getContainerClient(opts.container);
    this.log = opts.log.child({ store: 'azure', container: opts.container });
    this.stager = new SpoolStager(opts.spoolDir, (id) => this.get(id), (id) => this.generations.bump(id));
  }

  async init(): Promise<void> {
    await mkdir(this.opts.spoolDir, { recursive: true });
    await removeSpoolLeftovers(this.opts.spoolDir, this.opts.sharedSpool ? STALE_TEMPORARY_MS : 0);
    // A container that cannot be reached now must not stop the start: /health shows it, uploads answer 503.
    await this.ensureContainer().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'the upload container is not available'));
  }

  private async ensureContainer(): Promise<void> {
    try {
      await this.container.getProperties();
    } catch (err) {
      if (!isMissing(err)) throw err;
      if ((await this.container.createIfNotExists()).succeeded) this.log.info('created the upload container');
    }
  }

  async health(): Promise<void> {
    try {
      await this.ensureContainer();
    } catch (err) {
      throw new Error(`container ${this.opts.container}: ${errorText(err)}`, { cause: err });
    }
  }

  /** The source check of dex-pipeline.md §7.2: the container answers. */
  async sourceHealth(): Promise<void> {
    try {
      await this.container.getProperties();
    } catch (err) {
      throw new Error(`container ${this.opts.container}: ${errorText(err)}`, { cause: err });
    }
  }

  key(id: string, suffix = ''): string {
    return objectKey(this.opts.prefix, id, suffix);
  }

  private blob(id: string, suffix = '', streamed = false): BlockBlobClient {
    return (streamed ? this.streamContainer : this.container).getBlockBlobClient(this.key(id, suffix));
  }

  private async putText(id: string, suffix: string, text: string): Promise<void> {
    await backendCall(`writing ${this.key(id, suffix)}`, () =>
      this.blob(id, suffix).upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' } }),
    );
  }

  /** The blob's text, or undefined when it does not exist. */
  private async getText(id: string, suffix: string): Promise<string | undefined> {
    return backendCall(`reading ${this.key(id, suffix)}`, async () => {
      try {
        // One GET: downloadToBuffer asks for the size first and then for the bytes, so a blob replaced in between
        // would be read torn.
        return await readText((await this.blob(id, suffix).download()).readableStreamBody);
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    });
  }

  /** The offset is the data blob's length, never kept in the info. */
  private async saveInfo(info: UploadInfo): Promise<void> {
    const { Offset: _offset, LastChunkAt: _last, ...kept } = info;
    await this.putText(info.ID, '.info', JSON.stringify(kept));
  }

  /** The info blob and the data blob's committed length, read together. */
  async load(id: string): Promise<AzureState> {
    const [text, props] = await Promise.all([
      this.getText(id, '.info'),
      backendCall(`reading ${this.key(id)}`, () =>
        this.blob(id)
          .getProperties()
          .catch((err: unknown) => {
            if (isMissing(err)) return undefined;
            throw err;
          }),
      ),
    ]);
    if (text === undefined) throw new NotFoundError(id);
    return { info: parseInfo(id, text), offset: props?.contentLength ?? 0, lastModified: props?.lastModified?.getTime() ?? 0 };
  }

  view(st: AzureState): UploadInfo {
    return { ...st.info, Offset: st.offset, LastChunkAt: st.offset > 0 ? st.lastModified : 0 };
  }

  async create(u: NewUpload): Promise<Upload> {
    const info = newInfo(u, { Type: 'azurestore', Container: this.opts.container, Key: this.key(u.id) });
    await this.saveInfo(info);
    return new CloudUpload(this, u.id, { info, offset: 0, lastModified: 0 });
  }

  async get(id: string): Promise<Upload> {
    return new CloudUpload(this, id, await this.load(id));
  }

  /** The committed block ids of the data blob (none while it does not exist). */
  private async committed(id: string): Promise<string[]> {
    return backendCall('reading the block list', async () => {
      try {
        const list = await this.blob(id).getBlockList('committed');
        return (list.committedBlocks ?? []).map((b) => b.name);
      } catch (err) {
        if (isMissing(err)) return [];
        throw err;
      }
    });
  }

  private blockSize(st: AzureState, blocks: number): number {
    const bound = st.info.SizeIsDeferred ? (this.opts.maxSize > 0 ? this.opts.maxSize : DEFERRED_BOUND) - st.offset : st.info.Size - st.offset;
    return Math.min(MAX_BLOCK_SIZE, Math.max(BLOCK_SIZE, Math.ceil(bound / Math.max(1, MAX_BLOCKS - blocks))));
  }

  async write(upload: AzureUpload, body: Readable, expected: number | undefined): Promise<number> {
    const st = await upload.fresh();
    const ids = await this.committed(upload.id);
    const id = upload.id;
    const sink: PieceSink<AzurePiece> = {
      minPiece: 1,
      send: async (index, piece, length, last, signal) => {
        if (index === 0 && ids.length === 0 && last) {
          // The whole upload in one piece: a single request makes the blob.
          await backendCall('storing the blob', () =>
            this.blob(id, '', true).upload(() => piece, length, { abortSignal: signal, blobHTTPHeaders: { blobContentType: 'application/octet-stream' } }),
          );
          return { whole: true, length };
        }
        const n = ids.length + index;
        if (n >= MAX_BLOCKS) throw new Error(`the upload would need more than ${MAX_BLOCKS} blocks: send it in larger chunks`);
        const block = blockId(n);
        await backendCall(`storing block ${n}`, () => this.blob(id, '', true).stageBlock(block, () => piece, length, { abortSignal: signal }));
        return { block, length };
      },
      // Committing the blocks is what stores them: the blob's length is then the new offset.
      record: async (added) => {
        const blocks = added.flatMap((p) => ('block' in p ? [p.block] : []));
        if (blocks.length > 0) {
          ids.push(...blocks);
          await backendCall('committing the blocks', () =>
            this.blob(id).commitBlockList(ids, { blobHTTPHeaders: { blobContentType: 'application/octet-stream' } }),
          );
        }
        const stored = added.reduce((n, p) => n + p.length, 0);
        upload.state = { ...upload.state, offset: upload.state.offset + stored, lastModified: Date.now() };
      },
    };
    return writePieces(body, sink, {
      pieceSize: this.blockSize(st, ids.length),
      expected,
      untilComplete: st.info.SizeIsDeferred ? Infinity : st.info.Size - st.offset,
      spoolDir: this.opts.spoolDir,
      spoolName: id,
      inFlight: this.opts.blocksInFlight ?? 4,
    });
  }

  /** Every byte is committed already; an empty upload gets its (empty) blob now. */
  async complete(upload: AzureUpload): Promise<void> {
    const st = await upload.fresh();
    if (st.info.SizeIsDeferred || st.offset !== st.info.Size) throw new Error(`upload ${upload.id} is not complete`);
    if (st.info.Size === 0 && st.lastModified === 0) {
      await backendCall('storing the empty blob', () => this.blob(upload.id).upload('', 0, { blobHTTPHeaders: { blobContentType: 'application/octet-stream' } }));
      upload.state = await this.load(upload.id);
    }
  }

  async read(upload: AzureUpload): Promise<Readable> {
    return backendCall(`reading ${this.key(upload.id)}`, async () => {
      try {
        const res = await this.blob(upload.id).download();
        return res.readableStreamBody as Readable;
      } catch (err) {
        if (isMissing(err)) throw new NotFoundError(upload.id);
        throw err;
      }
    });
  }

  async declareLength(id: string, length: number): Promise<void> {
    const { info } = await this.load(id);
    await this.saveInfo({ ...info, Size: length, SizeIsDeferred: false });
    this.generations.bump(id);
  }

  updateInfo(id: string, patch: Partial<UploadInfo>): Promise<void> {
    return this.serial.run(id, () => this.mergeInfo(id, patch));
  }

  private async mergeInfo(id: string, patch: Partial<UploadInfo>): Promise<void> {
    const st = await this.load(id);
    await this.saveInfo({ ...st.info, ...patch, ID: id });
    this.generations.bump(id);
    // Terminated meanwhile (a hash kept after the client deleted its upload): do not bring the info back.
    if (st.lastModified > 0) {
      const exists = await backendCall('checking the blob', () => this.blob(id).exists());
      if (!exists) {
        await backendCall('removing the info', () => this.blob(id, '.info').deleteIfExists());
        throw new NotFoundError(id);
      }
    }
  }

  terminate(id: string): Promise<void> {
    return this.serial.run(id, () => this.remove(id));
  }

  private async remove(id: string): Promise<void> {
    this.generations.bump(id);
    await backendCall('removing the upload', () =>
      Promise.all(['', '.info', '.meta'].map((s) => this.blob(id, s).deleteIfExists({ deleteSnapshots: 'include' }))),
    );
  }

  async concat(finalId: string, partialIds: string[]): Promise<void> {
    const upload = (await this.get(finalId)) as AzureUpload;
    const partials = await Promise.all(partialIds.map(async (id) => (await this.get(id)) as AzureUpload));
    const size = partials.reduce((n, p) => n + p.state.offset, 0);
    await this.write(upload, Readable.from(concatenated(partials.map((p) => () => this.read(p)))), size);
    this.generations.bump(finalId);
  }

  stageChunk(id: string, body: Readable): Promise<StagedChunk> {
    return this.stager.stageChunk(id, body);
  }

  async list(): Promise<string[]> {
    const prefix = this.opts.prefix ? `${this.opts.prefix}/` : '';
    const names: string[] = [];
    await backendCall('listing uploads', async () => {
      for await (const item of this.container.listBlobsByHierarchy('/', { prefix })) if (item.kind === 'blob') names.push(item.name);
    });
    return idsFromNames(this.opts.prefix, names);
  }

  /** `<id>.meta`, and the manifest as the data blob's metadata (values percent-encoded, unusable keys skipped). */
  async writeManifest(id: string, manifest: Record<string, string>): Promise<void> {
    await this.putText(id, '.meta', JSON.stringify(manifest));
    await this.blob(id)
      .setMetadata(encodeMetadata(manifest, this.log))
      .catch((err: unknown) => this.log.warn({ uploadId: id, err: errorText(err) }, 'could not set the manifest as the blob metadata'));
  }

  async readManifest(id: string): Promise<Record<string, string>> {
    const text = await this.getText(id, '.meta');
    if (text === undefined) throw new NotFoundError(id);
    return parseManifest(id, text);
  }
}

type AzureUpload = CloudUpload<AzureState>;
