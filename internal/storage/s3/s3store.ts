// tus uploads in an S3 bucket, in tusd's layout: `<prefix>/<id>` (the object, once complete), `<prefix>/<id>.info`
// (the upload's state as JSON), `<prefix>/<id>.part` (bytes too few for a part, kept until more arrive) and
// `<prefix>/<id>.meta` (the finished upload's manifest).
//
// The bytes go up as a multipart upload whose part list is kept in the upload's own `.info` (ListParts is never
// needed, so S3-compatible servers without it work, and a restarted server resumes from the `.info`). A body is cut
// into parts as it arrives and streamed part by part, several in flight (internal/storage/pieces.ts); the `.info`
// is rewritten as parts complete, so its offset never runs ahead of what the bucket holds.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  S3_MAX_OBJECT_SIZE,
  S3_MAX_PARTS,
  S3_MAX_PART_SIZE,
  S3_MIN_PART_SIZE,
} from '../../config/config.js';
import { errorText } from '../../delivery/targets/errors.js';
import type { Logger } from '../../logging/logger.js';
import { backendCall, CloudUpload, concatenated, Generations, PerUpload, type CloudUploads, idsFromNames, objectKey, parseInfo, SpoolStager } from '../cloud.js';
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

export interface S3StoreOptions {
  /** Retries failed requests; `streamClient` never does (streamed bodies cannot be sent twice). */
  client: S3Client;
  streamClient: S3Client;
  bucket: string;
  /** TUS_UPLOAD_PREFIX: the objects' folder in the bucket. */
  prefix: string;
  /** S3_PART_SIZE: the preferred part size; an upload whose size needs larger parts to fit 10,000 gets them. */
  partSize: number;
  /** TUS_MAX_SIZE (0: none), the largest a deferred-length upload may become: its parts are sized for it. */
  maxSize: number;
  /** Other instances may share the local folder (the Redis locker): start-up leaves their young spool files alone. */
  sharedSpool?: boolean;
  /** Local folder for the bytes on their way to the bucket and for staged checksummed chunks. */
  spoolDir: string;
  log: Logger;
  /** Parts sent at once by one upload (default 4). */
  partsInFlight?: number;
}

interface S3Part {
  PartNumber: number;
  Size: number;
  ETag: string;
}

/** The `.info` of an S3 upload: tusd's keys, then the multipart state. */
interface S3Info extends UploadInfo {
  Parts?: S3Part[];
  /** Bytes in `<id>.part`, after the parts. */
  IncompletePartSize?: number;
  /** The object exists and holds every byte (completed multipart upload, or a single PUT). */
  Completed?: boolean;
}

/** What one piece became: a part of the multipart upload, or the whole object in a single PUT. */
type S3Piece = S3Part | { whole: number };

const partsBytes = (st: S3Info) => (st.Parts ?? []).reduce((n, p) => n + p.Size, 0);
const offsetOf = (st: S3Info) => (st.Completed ? st.Size : partsBytes(st) + (st.IncompletePartSize ?? 0));
const isMissing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
};

export class S3Store
  implements DataStore, Terminater, Concater, LengthDeclarer, ChunkStager, Lister, InfoUpdater, ManifestKeeper, CloudUploads<S3Info>
{
  readonly healthName: string;
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly stager: SpoolStager;
  private readonly log: Logger;
  readonly generations = new Generations();
  private readonly serial = new PerUpload();
  /** Multipart uploads being created (the parts sent at once wait for the same one). */
  private readonly creatingMultipart = new WeakMap<S3Upload, Promise<string>>();

  constructor(private readonly opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.client = opts.client;
    this.healthName = `Tus storage S3 Bucket ${opts.bucket}`;
    this.log = opts.log.child({ store: 's3', bucket: opts.bucket });
    this.stager = new SpoolStager(opts.spoolDir, (id) => this.get(id), (id) => this.generations.bump(id));
  }

  async init(): Promise<void> {
    await mkdir(this.opts.spoolDir, { recursive: true });
    await removeSpoolLeftovers(this.opts.spoolDir, this.opts.sharedSpool ? STALE_TEMPORARY_MS : 0);
    // A bucket that cannot be reached now must not stop the start: /health shows it, uploads answer 5xx.
    await this.health().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'the upload bucket is not available'));
  }

  async health(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw new Error(`bucket ${this.bucket}: ${errorText(err)}`, { cause: err });
    }
  }

  key(id: string, suffix = ''): string {
    return objectKey(this.opts.prefix, id, suffix);
  }

  private async putText(key: string, text: string, contentType: string): Promise<void> {
    await backendCall(`writing ${key}`, () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: text, ContentType: contentType })));
  }

  /** The object's text, or undefined when it does not exist. */
  private async getText(key: string): Promise<string | undefined> {
    return backendCall(`reading ${key}`, async () => {
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        return await res.Body!.transformToString('utf8');
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    });
  }

  async load(id: string): Promise<S3Info> {
    const text = await this.getText(this.key(id, '.info'));
    if (text === undefined) throw new NotFoundError(id);
    return parseInfo<S3Info>(id, text);
  }

  private async save(st: S3Info): Promise<void> {
    await this.putText(this.key(st.ID, '.info'), JSON.stringify({ ...st, Offset: offsetOf(st) }), 'application/json');
  }

  async create(u: NewUpload): Promise<Upload> {
    const st: S3Info = { ...newInfo(u, { Type: 's3store', Bucket: this.bucket, Key: this.key(u.id) }), Parts: [], IncompletePartSize: 0 };
    await this.save(st);
    return new CloudUpload(this, st.ID, st);
  }

  async get(id: string): Promise<Upload> {
    return new CloudUpload(this, id, await this.load(id));
  }

  view(st: S3Info): UploadInfo {
    return { ...st, Offset: offsetOf(st), LastChunkAt: st.LastChunkAt ?? 0 };
  }

  /** The part size for the rest of an upload: the preferred one, or larger when the parts left would not fit it. */
  private pieceSize(st: S3Info): number {
    const stored = partsBytes(st);
    const bound = st.SizeIsDeferred ? (this.opts.maxSize > 0 ? this.opts.maxSize : S3_MAX_OBJECT_SIZE) - stored : st.Size - stored;
    const partsLeft = Math.max(1, S3_MAX_PARTS - (st.Parts?.length ?? 0));
    return Math.min(S3_MAX_PART_SIZE, Math.max(this.opts.partSize, S3_MIN_PART_SIZE, Math.ceil(bound / partsLeft)));
  }

  /** The bytes kept in `<id>.part` (only the first `size`: a newer `.part` may have been written before a crash). */
  private async pending(st: S3Info): Promise<Buffer | undefined> {
    const size = st.IncompletePartSize ?? 0;
    if (size === 0) return undefined;
    const key = this.key(st.ID, '.part');
    const bytes = await backendCall(`reading ${key}`, async () => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${size - 1}` }));
      return Buffer.from(await res.Body!.transformToByteArray());
    });
    if (bytes.length !== size) throw new Error(`${key} holds ${bytes.length} bytes, the upload's info says ${size}`);
    return bytes;
  }

  /** The upload's multipart upload, created (and kept in its `.info`) when its first part is sent. */
  private multipart(upload: S3Upload): Promise<string> {
    const existing = upload.state.Storage?.['MultipartUpload'];
    if (existing) return Promise.resolve(existing);
    const pending = this.creatingMultipart.get(upload);
    if (pending) return pending;
    const creating = backendCall('starting the multipart upload', async () => {
      const res = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key(upload.id), ContentType: 'application/octet-stream' }));
      const next: S3Info = { ...upload.state, Storage: { ...upload.state.Storage, MultipartUpload: res.UploadId! } };
      // Recorded at once: a multipart upload nobody knows of would keep its parts (and their cost) forever.
      await this.save(next);
      upload.state = next;
      return res.UploadId!;
    }).finally(() => this.creatingMultipart.delete(upload));
    this.creatingMultipart.set(upload, creating);
    return creating;
  }

  async write(upload: S3Upload, body: Readable, expected: number | undefined): Promise<number> {
    const st = await upload.fresh();
    if (st.Completed) {
      for await (const _ of body); // nothing more fits; the core answers the bytes it refused
      return 0;
    }
    const base = st.Parts?.length ?? 0;
    // Whether `<id>.part` may exist: once its bytes are in a part, it is removed.
    let partObject = (st.IncompletePartSize ?? 0) > 0;
    const prefix = await this.pending(st);
    const end = st.SizeIsDeferred ? Infinity : st.Size - partsBytes(st);
    const key = this.key(upload.id);
    const { streamClient } = this.opts;
    const sink: PieceSink<S3Piece> = {
      minPiece: S3_MIN_PART_SIZE,
      send: async (index, piece, length, last, signal) => {
        if (index === 0 && base === 0 && last && !upload.state.Storage?.['MultipartUpload']) {
          // The whole upload in one piece: a single PUT, no multipart upload.
          await backendCall('storing the object', () =>
            streamClient.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: piece, ContentLength: length, ContentType: 'application/octet-stream' }), { abortSignal: signal }),
          );
          return { whole: length };
        }
        const partNumber = base + index + 1;
        if (partNumber > S3_MAX_PARTS) throw new Error(`the upload would need more than ${S3_MAX_PARTS} parts: send it in larger chunks`);
        const uploadId = await this.multipart(upload);
        const res = await backendCall(`storing part ${partNumber}`, () =>
          streamClient.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, Body: piece, ContentLength: length }), { abortSignal: signal }),
        );
        return { PartNumber: partNumber, Size: length, ETag: res.ETag ?? '' };
      },
      record: async (added, aside) => {
        if (aside) await backendCall('storing the incomplete part', () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${key}.part`, Body: aside })));
        const parts = [...(upload.state.Parts ?? []), ...added.filter((p): p is S3Part => !('whole' in p))];
        const whole = added.some((p) => 'whole' in p);
        const next: S3Info = { ...upload.state, Parts: parts, IncompletePartSize: aside?.length ?? 0, LastChunkAt: Date.now(), ...(whole ? { Completed: true } : {}) };
        await this.save(next);
        upload.state = next;
        if (aside) partObject = true;
        else if (partObject) {
          partObject = false;
          await this.removeObjects([`${key}.part`]).catch((err: unknown) => this.log.warn({ uploadId: upload.id, err: errorText(err) }, 'could not remove the incomplete part'));
        }
      },
    };
    return writePieces(body, sink, {
      pieceSize: this.pieceSize(st),
      expected,
      prefix,
      untilComplete: end,
      spoolDir: this.opts.spoolDir,
      spoolName: upload.id,
      inFlight: this.opts.partsInFlight ?? 4,
    });
  }

  /** Every byte is there: the object is made of the parts (or of the bytes kept aside, or is empty). */
  async complete(upload: S3Upload): Promise<void> {
    let st = await upload.fresh();
    if (st.Completed) return;
    if (st.SizeIsDeferred || offsetOf(st) !== st.Size) throw new Error(`upload ${upload.id} is not complete`);
    if ((st.IncompletePartSize ?? 0) > 0) {
      // The length was declared after the last bytes arrived: they go up as the last part.
      await this.write(upload, Readable.from([]), 0);
      st = upload.state;
      if (st.Completed) return;
    }
    const key = this.key(upload.id);
    const uploadId = st.Storage?.['MultipartUpload'];
    if (!uploadId) {
      await backendCall('storing the empty object', () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: '', ContentType: 'application/octet-stream' })));
    } else {
      const parts = (st.Parts ?? []).map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag }));
      await backendCall('completing the multipart upload', () =>
        this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } })),
      );
    }
    const next: S3Info = { ...st, Completed: true };
    await this.save(next);
    upload.state = next;
  }

  async read(upload: S3Upload): Promise<Readable> {
    // A crash between the last part and its completion leaves every byte in parts: complete it now.
    if (!(await upload.fresh()).Completed) await this.complete(upload);
    const key = this.key(upload.id);
    return backendCall(`reading ${key}`, async () => {
      try {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
        return res.Body as Readable;
      } catch (err) {
        if (isMissing(err)) throw new NotFoundError(upload.id);
        throw err;
      }
    });
  }

  async declareLength(id: string, length: number): Promise<void> {
    const st = await this.load(id);
    await this.save({ ...st, Size: length, SizeIsDeferred: false });
    this.generations.bump(id);
  }

  updateInfo(id: string, patch: Partial<UploadInfo>): Promise<void> {
    return this.serial.run(id, () => this.mergeInfo(id, patch));
  }

  private async mergeInfo(id: string, patch: Partial<UploadInfo>): Promise<void> {
    const st = await this.load(id);
    await this.save({ ...st, ...patch, ID: id });
    this.generations.bump(id);
    if (!st.Completed) return;
    // Terminated meanwhile (a hash kept after the client deleted its upload): do not bring the info back.
    const gone = await backendCall('checking the object', () =>
      this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(id) })).then(
        () => false,
        (err: unknown) => {
          if (isMissing(err)) return true;
          throw err;
        },
      ),
    );
    if (gone) {
      await this.removeObjects([this.key(id, '.info')]);
      throw new NotFoundError(id);
    }
  }

  private async removeObjects(keys: string[]): Promise<void> {
    await backendCall('removing objects', () =>
      this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } })),
    );
  }

  terminate(id: string): Promise<void> {
    return this.serial.run(id, () => this.remove(id));
  }

  private async remove(id: string): Promise<void> {
    const st = await this.load(id).catch((err: unknown) => {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    });
    const uploadId = st?.Storage?.['MultipartUpload'];
    if (uploadId && !st?.Completed) {
      await backendCall('aborting the multipart upload', () =>
        this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key(id), UploadId: uploadId })).catch((err: unknown) => {
          if ((err as { name?: string }).name !== 'NoSuchUpload') throw err;
        }),
      );
    }
    this.generations.bump(id);
    await this.removeObjects(['', '.info', '.part', '.meta'].map((s) => this.key(id, s)));
  }

  async concat(finalId: string, partialIds: string[]): Promise<void> {
    const upload = (await this.get(finalId)) as S3Upload;
    const partials = await Promise.all(partialIds.map(async (id) => (await this.get(id)) as S3Upload));
    const size = partials.reduce((n, p) => n + p.state.Size, 0);
    const body = Readable.from(concatenated(partials.map((p) => () => this.read(p))));
    await this.write(upload, body, size);
    this.generations.bump(finalId);
  }

  stageChunk(id: string, body: Readable): Promise<StagedChunk> {
    return this.stager.stageChunk(id, body);
  }

  async list(): Promise<string[]> {
    const prefix = this.opts.prefix ? `${this.opts.prefix}/` : '';
    const names: string[] = [];
    let token: string | undefined;
    do {
      const res = await backendCall('listing uploads', () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token })),
      );
      for (const o of res.Contents ?? []) if (o.Key) names.push(o.Key);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return idsFromNames(this.opts.prefix, names);
  }

  async writeManifest(id: string, manifest: Record<string, string>): Promise<void> {
    await this.putText(this.key(id, '.meta'), JSON.stringify(manifest), 'application/json');
  }

  async readManifest(id: string): Promise<Record<string, string>> {
    const text = await this.getText(this.key(id, '.meta'));
    if (text === undefined) throw new NotFoundError(id);
    return parseManifest(id, text);
  }
}

type S3Upload = CloudUpload<S3Info>;
