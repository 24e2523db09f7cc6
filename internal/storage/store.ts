// The ground floor every store and the protocol core build on. Nothing here imports from tus/ or a store.
import type { Readable } from 'node:stream';

/** Upload state with tusd's `.info` keys; extra keys (ours) come after them. */
export interface UploadInfo {
  ID: string;
  Size: number; // 0 while deferred
  SizeIsDeferred: boolean;
  Offset: number;
  MetaData: Record<string, string>;
  /** Metadata keys in the order the client sent them (HEAD echoes this order). */
  MetaDataOrder?: string[];
  IsPartial: boolean;
  IsFinal: boolean;
  PartialUploads: string[] | null;
  Storage: Record<string, string> | null;
  /** Milliseconds since the epoch. */
  CreatedAt: number;
  /** Time of the last stored byte (ms since the epoch), 0 while none arrived. */
  LastChunkAt?: number;
  /** sha256 of the whole upload (lowercase hex), once finished and hashed. */
  Sha256?: string;
}

export interface NewUpload {
  id: string;
  size: number;
  sizeIsDeferred: boolean;
  metadata: Record<string, string>;
  metadataOrder: string[];
  isPartial: boolean;
  isFinal: boolean;
  partialUploads: string[] | null;
}

/** An existing upload. Writes are only ever made by the holder of the upload's lock. */
export interface Upload {
  readonly id: string;
  /** Current state; `Offset` is what is really stored. */
  getInfo(): Promise<UploadInfo>;
  /**
   * Appends `body` at `offset` and resolves with the number of bytes stored. Every byte handed over by `body`
   * before it ends is stored, even if the stream ends early. `expectedBytes`, when known (the request's
   * Content-Length), is how many bytes the body brings if it is not cut short: cloud stores size their parts by it.
   */
  writeChunk(offset: number, body: Readable, expectedBytes?: number): Promise<number>;
  /** Called once when the last byte arrived (or at creation for empty/final uploads). */
  finish?(): Promise<void>;
  /** Reads the stored bytes (only for finished uploads). */
  read?(): Promise<Readable>;
}

export interface DataStore {
  create(upload: NewUpload): Promise<Upload>;
  /** Throws NotFoundError when the upload does not exist (on storage shared with other instances, maybe only at getInfo). */
  get(id: string): Promise<Upload>;
  /** Health of the store, for /health. */
  readonly healthName: string;
  health(): Promise<void>;
}

// Optional abilities, as small interfaces in the spirit of tusd's composer.
export interface Terminater {
  terminate(id: string): Promise<void>;
}
export interface Concater {
  /** Writes the concatenation of the (finished) partial uploads into the final upload. */
  concat(finalId: string, partialIds: string[]): Promise<void>;
}
export interface LengthDeclarer {
  declareLength(id: string, length: number): Promise<void>;
}
/** A chunk kept beside the upload until its checksum is verified (checksum extension). */
export interface StagedChunk {
  readonly bytes: number;
  /** Appends the staged bytes to the upload and resolves with the new offset. */
  commit(): Promise<number>;
  discard(): Promise<void>;
}
export interface ChunkStager {
  stageChunk(id: string, body: Readable): Promise<StagedChunk>;
}
/**
 * Creates an upload with its first bytes in the same step as its other files: for a creation-with-upload whose small
 * body has all arrived, one write instead of a creation and then an append.
 */
export interface CreatorWithData {
  /** The largest body taken this way (0: none now, e.g. on a store that flushes every write). */
  readonly maxCreateData: number;
  createWithData(upload: NewUpload, data: Buffer): Promise<Upload>;
}
export interface Lister {
  /** Ids of every upload in the store (for expiration clean-up and start-up recovery). */
  list(): Promise<string[]>;
}
export interface InfoUpdater {
  /** Merges extra keys into the stored info (e.g. Sha256 once hashed). */
  updateInfo(id: string, patch: Partial<UploadInfo>): Promise<void>;
}

/**
 * Keeps the final manifest of a finished upload beside it (`<id>.meta`, or the data blob's metadata), for delivery
 * and /route; it goes when the upload is terminated.
 */
export interface ManifestKeeper {
  writeManifest(id: string, manifest: Record<string, string>): Promise<void>;
  /** Throws NotFoundError when none is kept. */
  readManifest(id: string): Promise<Record<string, string>>;
}

/**
 * A request body that can tell whether every byte it will bring has already been received (it is then all buffered
 * in memory, and reading it through cannot wait on the network). The tus core's body reader is one.
 */
export interface ArrivedBody {
  readonly arrived: boolean;
}

export const hasArrived = (body: Readable): boolean => (body as Partial<ArrivedBody>).arrived === true;

/** Reads a body that has all arrived into one exact-size buffer of its own (not a view into a larger one). */
export async function collectArrived(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    bytes += chunk.length;
  }
  const data = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  for (const c of chunks) at += c.copy(data, at);
  return data;
}

export interface LocalFiles {
  /** Where the upload's bytes are on this machine's file system (copied by path, without streaming them). */
  localPath(id: string): string;
}

/** A new upload's info, with tusd's keys first; `storage` says where it is kept. */
export function newInfo(u: NewUpload, storage: Record<string, string>): UploadInfo {
  return {
    ID: u.id,
    Size: u.size,
    SizeIsDeferred: u.sizeIsDeferred,
    Offset: 0,
    MetaData: u.metadata,
    MetaDataOrder: u.metadataOrder,
    IsPartial: u.isPartial,
    IsFinal: u.isFinal,
    PartialUploads: u.partialUploads,
    Storage: storage,
    CreatedAt: Date.now(),
  };
}

export class NotFoundError extends Error {
  constructor(id: string) {
    super(`upload ${id} not found`);
    this.name = 'NotFoundError';
  }
}

/** A `.info` that cannot be parsed (torn by a crash during creation, or foreign): for clients it does not exist. */
export class CorruptInfoError extends NotFoundError {
  constructor(id: string) {
    super(id);
    this.name = 'CorruptInfoError';
    this.message = `upload ${id} has an unreadable info file`;
  }
}

/** The storage backend cannot be reached (down, refusing, timing out): the client gets a 503 and retries. */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}

export const isTerminater = (s: unknown): s is Terminater => typeof (s as Terminater).terminate === 'function';
export const isConcater = (s: unknown): s is Concater => typeof (s as Concater).concat === 'function';
export const isLengthDeclarer = (s: unknown): s is LengthDeclarer =>
  typeof (s as LengthDeclarer).declareLength === 'function';
export const isChunkStager = (s: unknown): s is ChunkStager =>
  typeof (s as ChunkStager).stageChunk === 'function';
export const isCreatorWithData = (s: unknown): s is CreatorWithData =>
  typeof (s as CreatorWithData).createWithData === 'function';
export const isLister = (s: unknown): s is Lister => typeof (s as Lister).list === 'function';
export const isLocalFiles = (s: unknown): s is LocalFiles => typeof (s as LocalFiles).localPath === 'function';
export const isManifestKeeper = (s: unknown): s is ManifestKeeper =>
  typeof (s as ManifestKeeper).writeManifest === 'function' && typeof (s as ManifestKeeper).readManifest === 'function';
export const isInfoUpdater = (s: unknown): s is InfoUpdater => typeof (s as InfoUpdater).updateInfo === 'function';

/** In a shared folder, a staged chunk or temporary info untouched this long belongs to no live request. */
export const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/** A stored manifest: a JSON object whose values are strings (anything else is turned into one). */
export function parseManifest(id: string, text: string): Record<string, string> {
  const v = JSON.parse(text) as unknown;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`the stored manifest of ${id} is not a JSON object`);
  const m: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) m[k] = typeof val === 'string' ? val : String(val);
  return m;
}
