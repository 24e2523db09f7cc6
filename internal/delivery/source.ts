import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ManifestNotFoundError, type ManifestReader } from '../manifest/hooks.js';
import type { Manifest } from '../manifest/validate.js';
import type { HealthCheck } from '../health/check.js';
import type { Locker } from '../locking/locker.js';
import { isInfoUpdater, isLocalFiles, NotFoundError, type DataStore } from '../storage/store.js';

// How long a failed hash waits for a termination under way (which holds the upload's lock) to end.
const TERMINATION_WAIT_MS = 10_000;

/** What delivery reads from: the finished upload's bytes, its size and sha256, and its stored (hydrated) manifest. */
export interface DeliverySource {
  readonly healthName: string;
  /** Throws ManifestNotFoundError (`source file does not exist`) for an unknown or unfinished upload. */
  manifest(id: string): Promise<Manifest>;
  /** The stored bytes, with the upload's sha256 when it is known already. */
  open(id: string): Promise<{ body: Readable; size: number; sha256?: string }>;
  /** Where the stored bytes are on this machine, when they are in a local file (copied by path); else undefined. */
  localFile?(id: string): Promise<{ file: string; size: number; sha256?: string } | undefined>;
  /** The upload's sha256, computed once by streaming the stored bytes and kept in its info. */
  sha256(id: string): Promise<string>;
  /**
   * Keeps a sha256 taken by a delivery that streamed the stored bytes (so they are not read a second time just to
   * hash them); resolves with the upload's sha256 as kept, which differs when another reading kept one first. The
   * info is rewritten in the background: the delivery that took the hash does not wait for it.
   */
  recordSha256(id: string, hex: string): Promise<string>;
  health(): Promise<void>;
}

/** The `upload` source over the tus data store (dex-pipeline.md §4.2), with the manifests the store keeps. */
export class UploadSource implements DeliverySource {
  readonly healthName: string;
  private readonly hashing = new Map<string, Promise<string>>();

  constructor(
    private readonly store: DataStore,
    private readonly manifests: ManifestReader,
    /** The backend's source check (dex-pipeline.md §7.2: `File Source`, `S3 source <bucket>`, `Azure source`). */
    private readonly healthCheck: HealthCheck,
    /** Hashes local files off the event loop; without it they are streamed through a hash here. */
    private readonly hasher?: (file: string) => Promise<{ bytes: number; sha256: string }>,
    /** The uploads' locker: a hash that failed looks again under the lock, after a termination under way. */
    private readonly locker?: Locker,
  ) {
    this.healthName = healthCheck.name;
  }

  manifest(id: string): Promise<Manifest> {
    return this.manifests.read(id);
  }

  private async finished(id: string) {
    let upload;
    try {
      upload = await this.store.get(id);
    } catch (err) {
      if (err instanceof NotFoundError) throw new ManifestNotFoundError();
      throw err;
    }
    const info = await upload.getInfo();
    if (info.IsPartial || info.SizeIsDeferred || info.Offset !== info.Size || !upload.read) {
      throw new Error(`upload ${id} is not finished`);
    }
    return { upload, info };
  }

  async sha256(id: string): Promise<string> {
    const { info } = await this.finished(id);
    if (info.Sha256) return info.Sha256;
    // One hash per upload even when the post-finish hook and a delivery ask at the same time.
    let p = this.hashing.get(id);
    if (!p) {
      p = this.computeSha256(id).finally(() => this.hashing.delete(id));
      this.hashing.set(id, p);
    }
    return p;
  }

  private async computeSha256(id: string): Promise<string> {
    const { upload, info } = await this.finished(id);
    let hex: string;
    try {
      if (this.hasher && isLocalFiles(this.store)) {
        const r = await this.hasher(this.store.localPath(id));
        if (r.bytes !== info.Size) throw new Error(`upload ${id} has ${r.bytes} bytes stored, its info says ${info.Size}`);
        hex = r.sha256;
      } else {
        const hash = createHash('sha256');
        await pipeline(await upload.read!(), hash);
        hex = hash.digest('hex');
      }
    } catch (err) {
      // Terminated (by its client, or expired) after it was found finished but before its bytes were read (the
      // background hash waits for a quiet moment): nothing is left to hash, which is no failure of the store.
      if (await this.removed(id)) throw new NotFoundError(id);
      throw err;
    }
    if (isInfoUpdater(this.store)) await this.store.updateInfo(id, { Sha256: hex });
    return hex;
  }

  /**
   * Whether the upload is gone, looked at under its lock: a termination holds it while it removes the files one by
   * one, so the data can be gone while the info is still there; waiting for the lock lets the termination end first.
   */
  private async removed(id: string): Promise<boolean> {
    const lock = this.locker?.newLock(id);
    const held = lock ? await lock.lock(AbortSignal.timeout(TERMINATION_WAIT_MS), () => {}).then(() => true, () => false) : false;
    try {
      return await this.store.get(id).then(
        () => false,
        (err: unknown) => err instanceof NotFoundError,
      );
    } finally {
      if (held) await lock!.unlock().catch(() => undefined);
    }
  }

  async open(id: string): Promise<{ body: Readable; size: number; sha256?: string }> {
    const { upload, info } = await this.finished(id);
    return { body: await upload.read!(), size: info.Size, sha256: await this.knownSha256(id, info.Sha256) };
  }

  /** The kept sha256, or one being computed right now (waited for, so that a delivery is checked against it). */
  private async knownSha256(id: string, kept: string | undefined): Promise<string | undefined> {
    return kept ?? (await this.hashing.get(id));
  }

  async localFile(id: string): Promise<{ file: string; size: number; sha256?: string } | undefined> {
    if (!isLocalFiles(this.store)) return undefined;
    const { info } = await this.finished(id);
    return { file: this.store.localPath(id), size: info.Size, sha256: await this.knownSha256(id, info.Sha256) };
  }

  async recordSha256(id: string, hex: string): Promise<string> {
    const { info } = await this.finished(id);
    if (info.Sha256) return info.Sha256;
    const inFlight = this.hashing.get(id);
    if (inFlight) return inFlight;
    // Until the info holds it, later deliveries are checked against this one (they wait for the write). If the write
    // fails (the upload was removed meanwhile, or the process stops first), the next delivery hashes the bytes again.
    const kept = (async () => {
      if (isInfoUpdater(this.store)) await this.store.updateInfo(id, { Sha256: hex });
      return hex;
    })().finally(() => this.hashing.delete(id));
    kept.catch(() => undefined);
    this.hashing.set(id, kept);
    return hex;
  }

  health(): Promise<void> {
    return this.healthCheck.check();
  }
}
