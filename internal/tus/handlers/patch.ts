import type { FastifyReply, FastifyRequest } from 'fastify';
import { isLengthDeclarer } from '../../storage/store.js';
import type { TusCore } from '../core.js';
import { errors } from '../errors.js';
import { OFFSET_CONTENT_TYPE, parseChecksum, parseUint, single } from '../headers.js';
import { closeAfterResponse } from '../respond.js';

/** Appends the body at the client's offset. */
export async function handlePatch(core: TusCore, req: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  const contentType = single(req.headers['content-type'])?.split(';')[0]?.trim().toLowerCase();
  if (contentType !== OFFSET_CONTENT_TYPE) throw errors.invalidContentType();
  const clientOffset = parseUint(single(req.headers['upload-offset']));
  if (clientOffset === undefined) throw errors.invalidOffset();
  const lengthHeader = single(req.headers['upload-length']);
  const declaredLength = lengthHeader === undefined ? undefined : parseUint(lengthHeader);
  if (lengthHeader !== undefined && declaredLength === undefined) throw errors.invalidUploadLength();
  const checksum = parseChecksum(single(req.headers['upload-checksum']));
  const contentLength = parseUint(single(req.headers['content-length']));

  await core.withLock(req, id, async (holder) => {
    let { upload, info } = await core.find(id);
    if (info.IsFinal) throw errors.modifyFinal();
    if (clientOffset !== info.Offset) throw errors.mismatchedOffset();

    if (declaredLength !== undefined) {
      if (!info.SizeIsDeferred) throw errors.invalidUploadLength('Upload-Length is already known');
      if (declaredLength < info.Offset) throw errors.invalidUploadLength('Upload-Length is smaller than the current offset');
      if (core.opts.maxSize > 0 && declaredLength > core.opts.maxSize) throw errors.maxSizeExceeded();
      if (!isLengthDeclarer(core.store)) throw errors.internal('the store cannot declare lengths');
      await core.store.declareLength(id, declaredLength);
      info = { ...info, Size: declaredLength, SizeIsDeferred: false };
    }

    if (contentLength !== undefined) {
      if (info.SizeIsDeferred) {
        if (core.opts.maxSize > 0 && info.Offset + contentLength > core.opts.maxSize) throw errors.maxSizeExceeded();
      } else if (info.Offset + contentLength > info.Size) {
        throw errors.uploadSizeExceeded();
      }
    }

    const wasFinished = core.isFinished(info);
    let stopError = null;
    // Even a finished upload reads a body of unknown length: any byte in it is a 413.
    if (contentLength !== 0) {
      const r = await core.writeBody(req, upload, info, holder, checksum);
      info = { ...info, Offset: r.offset, LastChunkAt: Date.now() };
      stopError = r.stopError;
      if (r.leftUnread) closeAfterResponse(reply);
    }

    // A body cut short may still have completed the upload: finish it before reporting the cut.
    if (!wasFinished && core.isFinished(info)) await core.finish(req, reply, upload, info);
    if (stopError) throw stopError;

    reply.header('Upload-Offset', String(info.Offset));
    const expires = core.expiresAt(info);
    if (expires !== undefined) reply.header('Upload-Expires', new Date(expires).toUTCString());
    reply.code(204).send();
  });
}
