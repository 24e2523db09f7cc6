/** The one event type (dex-pipeline.md §3.1). Key order and the capitalised `Metadata` are the wire format. */
export interface FileReady {
  id: string;
  type: 'FileReady';
  retry_count: number;
  upload_id: string;
  src_url: string;
  path: string;
  deliver_target: string;
  Metadata: Record<string, string>;
}

export function fileReady(e: { uploadId: string; path: string; target: string; metadata: Record<string, string>; srcUrl?: string }): FileReady {
  const Metadata: Record<string, string> = {};
  for (const k of Object.keys(e.metadata).sort()) Metadata[k] = e.metadata[k]!;
  return { id: '', type: 'FileReady', retry_count: 0, upload_id: e.uploadId, src_url: e.srcUrl ?? '', path: e.path, deliver_target: e.target, Metadata };
}

/** Decodes a message body; anything that is not a FileReady is refused (a poison message). */
export function decodeFileReady(body: unknown): FileReady {
  const v = (typeof body === 'string' ? JSON.parse(body) : body) as Partial<FileReady> | null;
  if (!v || typeof v !== 'object' || v.type !== 'FileReady' || typeof v.upload_id !== 'string' || typeof v.deliver_target !== 'string') {
    throw new Error('not a FileReady event');
  }
  return {
    id: typeof v.id === 'string' ? v.id : '',
    type: 'FileReady',
    retry_count: typeof v.retry_count === 'number' ? v.retry_count : 0,
    upload_id: v.upload_id,
    src_url: typeof v.src_url === 'string' ? v.src_url : '',
    path: typeof v.path === 'string' ? v.path : '',
    deliver_target: v.deliver_target,
    Metadata: v.Metadata && typeof v.Metadata === 'object' ? (v.Metadata as Record<string, string>) : {},
  };
}
