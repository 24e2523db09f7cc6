// Azurite (blob service only) on 127.0.0.1 for tests (test-infrastructure.md §2), started as a child process
// because azurite cannot be loaded in-process. In-memory persistence: a restart starts empty.
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnChildServer, waitFor, type ChildServer } from './child-server.js';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Azurite's well-known development key: public, not a secret. */
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  port: number;
  pid: number;
  /** `http://127.0.0.1:<port>/devstoreaccount1` (path-style account endpoint). */
  endpoint: string;
  connectionString: string;
  /** Its working folder (its blobs too, when it keeps them on disk). */
  directory: string;
  serviceClient(): BlobServiceClient;
  /** Lets the test process exit while it runs (for an emulator shared by a whole test file; killed at exit). */
  unref(): void;
  /** Stops the process (the emulator is then down). */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty unless it keeps its blobs on disk). */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  cleanup(): Promise<void>;
}

const requireHere = createRequire(import.meta.url);

async function launch(dir: string, port: number, onDisk: boolean): Promise<ChildServer> {
  const main = path.join(path.dirname(requireHere.resolve('azurite/package.json')), 'dist/src/blob/main.js');
  // No --location with --inMemoryPersistence (azurite refuses both); the cwd is a temporary folder for anything it writes.
  const args = [main, '--blobHost', '127.0.0.1', '--blobPort', String(port)];
  args.push(...(onDisk ? ['--location', dir] : ['--inMemoryPersistence']), '--silent', '--skipApiVersionCheck', '--loose', '--disableTelemetry');
  return spawnChildServer({
    name: 'azurite-blob',
    // As `node main.js <flags>`: azurite parses process.argv from its third element.
    code: 'require(process.argv[1]);',
    args,
    cwd: dir,
    portFrom: (out) => {
      const m = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      return m ? Number(m[1]) : undefined;
    },
  });
}

/** `onDisk`: blobs are kept in its temporary folder (large uploads), else in its memory. */
export async function startAzurite(opts: { onDisk?: boolean } = {}): Promise<Azurite> {
  const onDisk = opts.onDisk ?? false;
  const dir = await mkdtemp(path.join(tmpdir(), 'azurite-'));
  let child: ChildServer;
  let unrefd = false;
  try {
    child = await launch(dir, 0, onDisk);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = child.port;
  const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const serviceClient = () => new BlobServiceClient(endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY), { retryOptions: { maxTries: 1 } });
  const answers = async () => {
    await serviceClient().getProperties();
    return true;
  };
  await waitFor('azurite to answer', answers);
  return {
    port,
    get pid() {
      return child.pid;
    },
    endpoint,
    directory: dir,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    serviceClient,
    unref() {
      unrefd = true;
      child.unref();
    },
    stop: () => child.stop(),
    async restart() {
      await child.stop();
      child = await launch(dir, port, onDisk);
      if (unrefd) child.unref();
      await waitFor('azurite to answer after restart', answers);
    },
    async cleanup() {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
