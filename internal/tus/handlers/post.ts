import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isConcater, isCreatorWithData, NotFoundError, type UploadInfo } from '../../storage/store.js';
import { UPLOAD_ID, type TusCore } from '../core.js';
import { errors } from '../errors.js';
import { OFFSET_CONTENT_TYPE, parseConcat, parseMetadata, parseUint, single, type ConcatHeader } from '../headers.js';
import { closeAfterResponse } from '../respond.js';

interface Plan {
  size: number;
  deferred: boolean;
  partials: UploadInfo[];
}

/** Creation (with upload, deferred length, partial and final concatenation). */
export async function handlePost(core: TusCore, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const concat = parseConcat(single(req.headers['upload-concat']));
  const contentType = single(req.headers['content-type'])?.split(';')[0]?.trim().toLowerCase();
  const hasBody = contentType === OFFSET_CONTENT_TYPE;
  const plan = concat.kind === 'final' ? await planFinal(core, req, concat, hasBody) : planLength(core, req);
  const { values, order } = parseMetadata(single(req.headers['upload-metadata']));
  const contentLength = parseUint(single(req.headers['content-length']));
  if (hasBody && !plan.deferred && contentLength !== undefined && contentLength > plan.size) throw errors.uploadSizeExceeded();

  const id = randomUUID();
  const draft: UploadInfo = {
    ID: id,
    Size: plan.size,
    SizeIsDeferred: plan.deferred,
    Offset: 0,
    MetaData: values,
    MetaDataOrder: order,
    IsPartial: concat.kind === 'partial',
    IsFinal: concat.kind === 'final',
    PartialUploads: concat.kind === 'final' ? plan.partials.map((p) => p.ID) : null,
    Storage: null,
    CreatedAt: Date.now(),
  };

  const pre = await core.hooks.preCreate(core.hookEvent(req, draft));
  if (pre.reject) {
    const r = pre.reject;
    core.stats.error(r.status, 'ERR_UPLOAD_REJECTED');
    if (hasBody) closeAfterResponse(reply);
    reply.code(r.status).headers(r.headers ?? {}).header('Content-Type', r.contentType ?? 'text/plain; charset=utf-8').send(r.body);
    return;
  }
  const metadata = pre.metadata ?? values;
  const metadataOrder = pre.metadata ? Object.keys(pre.metadata) : order;

  const newUpload = {
    id,
    size: plan.size,
    sizeIsDeferred: plan.deferred,
    metadata,
    metadataOrder,
    isPartial: draft.IsPartial,
    isFinal: draft.IsFinal,
    partialUploads: draft.PartialUploads,
  };
  // A small body that has all arrived goes in with the upload's files (one write, not a creation and an append).
  const arrived = hasBody && !plan.deferred ? await core.readArrivedBody(req, plan.size) : undefined;
  const upload = arrived && isCreatorWithData(core.store) ? await core.store.createWithData(newUpload, arrived.data) : await core.store.create(newUpload);
  core.stats.uploadsCreated++;
  let info = await upload.getInfo();
  core.log.info({ uploadId: id, size: plan.deferred ? null : plan.size, partial: info.IsPartial, final: info.IsFinal }, 'upload created');
  core.hooks.emit('postCreate', core.hookEvent(req, info));

  reply.header('Location', core.uploadUrl(req, id));

  if (concat.kind === 'final') {
    if (!isConcater(core.store)) throw errors.internal('the store cannot concatenate uploads');
    await core.store.concat(id, plan.partials.map((p) => p.ID));
    info = await upload.getInfo();
    await core.finish(req, reply, upload, info);
    reply.code(201).send();
    return;
  }

  if (arrived) {
    core.createdWithBytes(req, info);
    if (core.isFinished(info)) await core.withLock(req, id, () => core.finish(req, reply, upload, info));
    if (arrived.stopError) throw arrived.stopError;
    reply.header('Upload-Offset', String(info.Offset));
  } else if (hasBody || core.isFinished(info)) {
    await core.withLock(req, id, async (holder) => {
      let stopError = null;
      if (hasBody) {
        const r = await core.writeBody(req, upload, info, holder);
        info = { ...info, Offset: r.offset };
        stopError = r.stopError;
        if (r.leftUnread) closeAfterResponse(reply);
      }
      if (core.isFinished(info)) await core.finish(req, reply, upload, info);
      // The upload exists: its Location matters even when the body was cut (the client resumes from HEAD).
      if (stopError) throw stopError;
      if (hasBody) reply.header('Upload-Offset', String(info.Offset));
    });
  }
  const expires = core.expiresAt(info);
  if (expires !== undefined) reply.header('Upload-Expires', new Date(expires).toUTCString());
  reply.code(201).send();
}

function planLength(core: TusCore, req: FastifyRequest): Plan {
  const lengthHeader = single(req.headers['upload-length']);
  const deferHeader = single(req.headers['upload-defer-length']);
  if (lengthHeader !== undefined && deferHeader !== undefined) throw errors.ambiguousUploadLength();
  if (deferHeader !== undefined) {
    if (deferHeader !== '1') throw errors.invalidUploadLength('Upload-Defer-Length must be 1');
    return { size: 0, deferred: true, partials: [] };
  }
  const size = parseUint(lengthHeader);
  if (size === undefined) throw errors.invalidUploadLength();
  if (core.opts.maxSize > 0 && size > core.opts.maxSize) throw errors.maxSizeExceeded();
  return { size, deferred: false, partials: [] };
}

async function planFinal(core: TusCore, req: FastifyRequest, concat: Extract<ConcatHeader, { kind: 'final' }>, hasBody: boolean): Promise<Plan> {
  if (single(req.headers['upload-length']) !== undefined || single(req.headers['upload-defer-length']) !== undefined) {
    throw errors.invalidConcat('a final upload must not declare its length');
  }
  if (hasBody) throw errors.modifyFinal();
  const partials: UploadInfo[] = [];
  for (const url of concat.urls) {
    const id = partialId(core, url);
    let info: UploadInfo;
    try {
      info = await (await core.store.get(id)).getInfo();
    } catch (err) {
      if (err instanceof NotFoundError) throw errors.notFound();
      throw err;
    }
    if (!info.IsPartial) throw errors.invalidConcat('a final upload may only name partial uploads');
    if (!core.isFinished(info)) throw errors.uploadNotFinished();
    partials.push(info);
  }
  const size = partials.reduce((sum, p) => sum + p.Size, 0);
  if (core.opts.maxSize > 0 && size > core.opts.maxSize) throw errors.maxSizeExceeded();
  return { size, deferred: false, partials };
}

/** `http://host/files/<id>`, `/files/<id>/` → `<id>`; anything not naming one of our uploads is a 404. */
function partialId(core: TusCore, url: string): string {
  let path: string;
  try {
    path = new URL(url, 'http://placeholder').pathname;
  } catch {
    throw errors.notFound();
  }
  if (!path.startsWith(core.opts.basePath)) throw errors.notFound();
  const id = path.slice(core.opts.basePath.length).replace(/\/$/, '');
  if (!UPLOAD_ID.test(id)) throw errors.notFound();
  return id;
}
