// Every target refuses a destination path that could leave its root. Paths are rendered from templates by the
// caller (path-template.ts already refuses these), but a target is the last line of defence: it writes files,
// objects and blobs, so it checks again rather than trusting its caller.

export class UnsafePathError extends Error {
  constructor(path: string, reason: string) {
    super(`refusing delivery path ${JSON.stringify(path)}: ${reason}`);
    this.name = 'UnsafePathError';
  }
}

/** Throws unless `p` is a non-empty relative path with no `..` segment, no NUL and no drive or root prefix. */
export function assertRelativePath(p: string): void {
  if (typeof p !== 'string' || p === '') throw new UnsafePathError(String(p), 'the path is empty');
  if (p.includes('\0')) throw new UnsafePathError(p, 'the path contains a NUL byte');
  if (p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:/.test(p)) throw new UnsafePathError(p, 'the path is absolute');
  const segments = p.split(/[\\/]/);
  if (segments.some((s) => s === '..')) throw new UnsafePathError(p, 'the path has a ".." segment');
  if (segments.every((s) => s === '' || s === '.')) throw new UnsafePathError(p, 'the path names no file');
}
