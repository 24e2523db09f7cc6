import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TusCore } from '../core.js';
import type { UploadInfo } from '../../storage/store.js';
import { encodeMetadata } from '../headers.js';

// Stores hand out the same metadata object for an upload until it changes: encode it once, not on every HEAD.
const encoded = new WeakMap<UploadInfo['MetaData'], string>();
function metadataHeader(info: UploadInfo): string {
  let v = encoded.get(info.MetaData);
  if (v === undefined) {
    v = encodeMetadata(info.MetaData, info.MetaDataOrder);
    encoded.set(info.MetaData, v);
  }
  return v;
}

/** Offset retrieval. Takes the lock, so it also pre-empts a stale PATCH of the same upload. */
export async function handleHead(core: TusCore, req: FastifyRequest, reply: FastifyReply, id: string): Promise<void> {
  await core.withLock(req, id, async () => {
    const { info } = await core.find(id);
    reply.header('Cache-Control', 'no-store');
    reply.header('Upload-Offset', String(info.Offset));
    if (info.SizeIsDeferred) reply.header('Upload-Defer-Length', '1');
    else reply.header('Upload-Length', String(info.Size));
    const metadata = metadataHeader(info);
    if (metadata !== '') reply.header('Upload-Metadata', metadata);
    if (info.IsPartial) reply.header('Upload-Concat', 'partial');
    if (info.IsFinal && info.PartialUploads) {
      reply.header('Upload-Concat', `final;${info.PartialUploads.map((p) => core.uploadUrl(req, p)).join(' ')}`);
    }
    const expires = core.expiresAt(info);
    if (expires !== undefined) reply.header('Upload-Expires', new Date(expires).toUTCString());
    reply.code(200).send();
  });
}
