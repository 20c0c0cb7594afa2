/**
 * The error every `ApiClient` call rejects with when the server answers with a
 * Kubernetes `Status` (or any HTTP error). Network failures reject with Node's own
 * errors instead.
 */
import type { Status } from '../../api/types/index.ts';

/** An HTTP error from the API server, with the `Status` reason and code. */
export class ApiStatusError extends Error {
  override readonly name = 'ApiStatusError';

  constructor(
    /** HTTP status code, e.g. 404. */
    readonly code: number,
    /** `Status.reason`, e.g. `NotFound`, `Conflict`, `AlreadyExists`, `Expired`; '' when the body had none. */
    readonly reason: string,
    message: string,
    /** The `Status` body, when the server sent one. */
    readonly status?: Status,
  ) {
    super(message);
  }

  /** Builds the error from a response's status code and parsed body. */
  static fromResponse(code: number, body: unknown, what: string): ApiStatusError {
    const st = body && typeof body === 'object' && (body as { kind?: unknown }).kind === 'Status' ? (body as Status) : undefined;
    const reason = st?.reason ?? '';
    const message = st?.message ?? (typeof body === 'string' && body ? body.slice(0, 500) : `HTTP ${code}`);
    return new ApiStatusError(code, reason, `${what}: ${message}`, st);
  }
}

const reasonIs = (err: unknown, reason: string, code: number): boolean =>
  err instanceof ApiStatusError && (err.reason === reason || (err.reason === '' && err.code === code));

/** The object (or namespace, or resource) does not exist. */
export const isNotFound = (err: unknown): boolean => reasonIs(err, 'NotFound', 404);
/** The write used a stale resourceVersion; read again and retry (the loop requeues). */
export const isConflict = (err: unknown): boolean => reasonIs(err, 'Conflict', 409);
/** A create found an object of that name already there. */
export const isAlreadyExists = (err: unknown): boolean => err instanceof ApiStatusError && err.reason === 'AlreadyExists';
/** The resourceVersion is too old (410): re-list. */
export const isGone = (err: unknown): boolean =>
  err instanceof ApiStatusError && (err.code === 410 || err.reason === 'Expired' || err.reason === 'Gone');
/** The request was invalid (422): retrying the same write cannot succeed. */
export const isInvalid = (err: unknown): boolean => reasonIs(err, 'Invalid', 422);
