import { readFile } from '../fsutil/fast-fs.js';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { goTimeUTC } from '../clock/gotime.js';
import { NotFoundError, type DataStore, type UploadInfo } from '../storage/store.js';
import { sortedManifest } from '../manifest/hydrate.js';
import { UPLOAD_ID } from '../tus/core.js';

export interface InfoPluginOptions {
  store: DataStore;
  /** LOCAL_REPORTS_FOLDER: `deliveries` come from the upload's blob-file-copy reports. */
  reportsFolder: string;
}

interface Delivery {
  status: string;
  name: string;
  location: string;
  delivered_at: string;
  issues: unknown;
}

/** One entry per blob-file-copy report line (each delivery attempt); `null` when there is none yet. */
export async function deliveries(reportsFolder: string, id: string): Promise<Delivery[] | null> {
  let text: string;
  try {
    text = await readFile(path.join(reportsFolder, `${id}_blob-file-copy`), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const out: Delivery[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as {
      stage_info?: { status?: string; end_processing_time?: string; issues?: unknown };
      content?: { destination_name?: string; file_destination_blob_url?: string };
    };
    out.push({
      status: r.stage_info?.status ?? '',
      name: r.content?.destination_name ?? '',
      location: r.content?.file_destination_blob_url ?? '',
      delivered_at: r.stage_info?.end_processing_time ?? '',
      issues: r.stage_info?.issues ?? null,
    });
  }
  return out;
}

type Status = { status: 'Initiated' | 'In Progress' | 'Complete'; chunk_received_at: string };

/** From the upload's own state, so it is right the moment the 201 is sent (decisions.md "/info"). */
export function uploadStatus(info: UploadInfo): Status {
  const finished = !info.SizeIsDeferred && info.Offset === info.Size;
  const last = info.LastChunkAt || info.CreatedAt;
  if (finished) return { status: 'Complete', chunk_received_at: goTimeUTC(new Date(last)) };
  if (info.Offset > 0) return { status: 'In Progress', chunk_received_at: goTimeUTC(new Date(last)) };
  return { status: 'Initiated', chunk_received_at: goTimeUTC(new Date(info.CreatedAt)) };
}

/** GET /info/{id}: manifest, file_info, upload_status, deliveries (dex-api.md §1.4). */
export async function infoPlugin(app: FastifyInstance, opts: InfoPluginOptions): Promise<void> {
  app.all('/info/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    let info: UploadInfo;
    try {
      if (!UPLOAD_ID.test(id)) throw new NotFoundError(id);
      info = await (await opts.store.get(id)).getInfo();
    } catch (err) {
      const notFound = err instanceof NotFoundError;
      if (!notFound) req.log.error({ err, uploadId: id }, 'info lookup failed');
      reply.code(notFound ? 404 : 500).type('text/plain; charset=utf-8').send('error getting file manifest\n');
      return;
    }
    const body = {
      manifest: sortedManifest(info.MetaData),
      file_info: { updated_at: goTimeUTC(new Date(info.LastChunkAt || info.CreatedAt)), size_bytes: info.Offset },
      upload_status: uploadStatus(info),
      deliveries: await deliveries(opts.reportsFolder, id).catch((err: unknown) => {
        req.log.warn({ err, uploadId: id }, 'unreadable blob-file-copy reports');
        return null;
      }),
    };
    reply.type('application/json').send(`${JSON.stringify(body)}\n`);
  });
}
