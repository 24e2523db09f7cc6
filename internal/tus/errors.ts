// Protocol errors carry tusd's codes; the HTTP layer renders them as `<CODE>: <message>\n`.
export class TusError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'TusError';
  }
}

const e = (status: number, code: string, message: string, headers?: Record<string, string>) =>
  new TusError(status, code, message, headers);

export const errors = {
  unsupportedVersion: () =>
    e(412, 'ERR_UNSUPPORTED_VERSION', 'missing, invalid or unsupported Tus-Resumable header', { 'Tus-Version': '1.0.0' }),
  invalidUploadLength: (why = 'missing or invalid Upload-Length header') => e(400, 'ERR_INVALID_UPLOAD_LENGTH', why),
  ambiguousUploadLength: () =>
    e(400, 'ERR_AMBIGUOUS_UPLOAD_LENGTH', 'either Upload-Length or Upload-Defer-Length must be specified, not both'),
  invalidOffset: () => e(400, 'ERR_INVALID_OFFSET', 'missing or invalid Upload-Offset header'),
  invalidMetadata: (why: string) => e(400, 'ERR_INVALID_METADATA', `invalid Upload-Metadata header: ${why}`),
  invalidConcat: (why = 'invalid Upload-Concat header') => e(400, 'ERR_INVALID_CONCAT', why),
  uploadNotFinished: () => e(400, 'ERR_UPLOAD_NOT_FINISHED', 'one of the partial uploads is not finished'),
  unsupportedChecksumAlgorithm: () =>
    e(400, 'ERR_UNSUPPORTED_CHECKSUM_ALGORITHM', 'unsupported checksum algorithm'),
  invalidChecksumHeader: () => e(400, 'ERR_INVALID_CHECKSUM_HEADER', 'invalid Upload-Checksum header'),
  uploadInterrupted: () => e(400, 'ERR_UPLOAD_INTERRUPTED', 'upload has been interrupted by another request for this upload resource'),
  terminationRejected: (why = 'upload termination has been rejected by server') =>
    e(400, 'ERR_UPLOAD_TERMINATION_REJECTED', why),
  modifyFinal: () => e(403, 'ERR_MODIFY_FINAL', 'modifying a final upload is not allowed'),
  originNotAllowed: () => e(403, 'ERR_ORIGIN_NOT_ALLOWED', 'origin is not allowed'),
  notFound: () => e(404, 'ERR_UPLOAD_NOT_FOUND', 'upload not found'),
  methodNotAllowed: (allow: string) => e(405, 'ERR_METHOD_NOT_ALLOWED', 'method not allowed', { Allow: allow }),
  mismatchedOffset: () => e(409, 'ERR_MISMATCHED_OFFSET', 'mismatched offset'),
  expired: () => e(410, 'ERR_UPLOAD_EXPIRED', 'upload has expired'),
  maxSizeExceeded: () => e(413, 'ERR_MAX_SIZE_EXCEEDED', 'maximum size exceeded'),
  uploadSizeExceeded: () => e(413, 'ERR_UPLOAD_SIZE_EXCEEDED', "upload's size exceeded"),
  invalidContentType: () =>
    e(415, 'ERR_INVALID_CONTENT_TYPE', 'missing or invalid Content-Type header, expected application/offset+octet-stream'),
  checksumMismatch: () => e(460, 'ERR_CHECKSUM_MISMATCH', 'checksum mismatch'),
  lockTimeout: () => e(500, 'ERR_LOCK_TIMEOUT', 'failed to acquire lock before timeout'),
  readTimeout: () => e(500, 'ERR_READ_TIMEOUT', 'timeout while reading request body'),
  internal: (why = 'an internal server error occurred') => e(500, 'ERR_INTERNAL_SERVER_ERROR', why),
  serverShutdown: () => e(503, 'ERR_SERVER_SHUTDOWN', 'request has been interrupted because the server is shutting down'),
  storageUnavailable: () => e(503, 'ERR_STORAGE_UNAVAILABLE', 'storage is unavailable'),
};
