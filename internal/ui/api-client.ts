import type { Manifest } from '../manifest/validate.js';
import type { UploadInfoView } from './pages/status.js';

/** What the UI server asks of the upload API (over HTTP, as the browser would, so the API's own checks all apply). */
export interface UploadApi {
  /** Creates an upload of deferred length carrying `manifest` (tus POST). */
  create(manifest: Manifest, token?: string): Promise<CreateResult>;
  /** `GET /info/{id}`. */
  info(id: string, token?: string): Promise<InfoResult>;
}

export type CreateResult =
  | { ok: true; id: string }
  | { ok: false; status: number; validationErrors?: string[]; message: string };

export type InfoResult = { ok: true; info: UploadInfoView } | { ok: false; status: number; message: string };

/** Thrown when the API cannot be reached at all (the UI answers 502). */
export class ApiUnreachableError extends Error {
  constructor(url: string, cause: unknown) {
    super(`the upload API at ${url} could not be reached: ${(cause as Error).message}`);
    this.name = 'ApiUnreachableError';
  }
}

const TIMEOUT_MS = 15_000;

/** tus `Upload-Metadata`: `key base64(value)` pairs joined with `,`. */
export const encodeMetadata = (m: Manifest): string =>
  Object.entries(m)
    .map(([k, v]) => `${k} ${Buffer.from(v, 'utf8').toString('base64')}`)
    .join(',');

const auth = (token?: string): Record<string, string> => (token ? { Authorization: `Bearer ${token}` } : {});

/**
 * The upload API over HTTP at `base()` (UI_SERVER_INTERNAL_PROTOCOL://UI_SERVER_INTERNAL_HOST, or this process's own
 * API), with the tus path and the info path of the configuration.
 */
export class HttpUploadApi implements UploadApi {
  constructor(
    private readonly base: () => string,
    private readonly tusPath: string,
    private readonly infoPath: string,
  ) {}

  private async call(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      throw new ApiUnreachableError(url, err);
    }
  }

  async create(manifest: Manifest, token?: string): Promise<CreateResult> {
    const res = await this.call(`${this.base()}${this.tusPath}`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1', 'Upload-Metadata': encodeMetadata(manifest), ...auth(token) },
    });
    const text = await res.text();
    if (res.status === 201) {
      const location = res.headers.get('location') ?? '';
      const id = location.split('?')[0]!.split('/').filter(Boolean).pop();
      if (id) return { ok: true, id };
      return { ok: false, status: 502, message: 'the upload API created an upload but sent no Location' };
    }
    let validationErrors: string[] | undefined;
    try {
      const body = JSON.parse(text) as { validation_errors?: unknown };
      if (Array.isArray(body.validation_errors)) validationErrors = body.validation_errors.map(String);
    } catch {
      /* a tus error line */
    }
    return { ok: false, status: res.status, validationErrors, message: text.trim() };
  }

  async info(id: string, token?: string): Promise<InfoResult> {
    const res = await this.call(`${this.base()}${this.infoPath}${encodeURIComponent(id)}`, { headers: { Accept: 'application/json', ...auth(token) } });
    const text = await res.text();
    if (res.status !== 200) return { ok: false, status: res.status, message: text.trim() };
    try {
      return { ok: true, info: JSON.parse(text) as UploadInfoView };
    } catch {
      return { ok: false, status: 500, message: 'the upload API answered /info with something that is not JSON' };
    }
  }
}
