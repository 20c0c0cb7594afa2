/**
 * The registry's closed set of errors, as the OCI distribution spec names them, and
 * the one conversion to its wire format (`{"errors":[{code,message,detail}]}`).
 */
import type { ServerResponse } from 'node:http';
import { isRuntimeError } from '../runtime/cri/errors.ts';

/** Error codes of the OCI distribution spec (and distribution's `PAGINATION_NUMBER_INVALID`). */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN' | 'BLOB_UPLOAD_INVALID' | 'BLOB_UPLOAD_UNKNOWN' | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN' | 'MANIFEST_INVALID' | 'MANIFEST_UNKNOWN' | 'NAME_INVALID' | 'NAME_UNKNOWN'
  | 'SIZE_INVALID' | 'UNAUTHORIZED' | 'DENIED' | 'UNSUPPORTED' | 'TOOMANYREQUESTS'
  | 'RANGE_INVALID' | 'PAGINATION_NUMBER_INVALID' | 'UNKNOWN';

/** A failure the registry reports to clients with an HTTP status and a spec error code. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    readonly status: number,
    message: string,
    readonly detail?: unknown,
    /** Extra response headers, e.g. `WWW-Authenticate` or `Range`. */
    readonly headers: Readonly<Record<string, string>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** The response body. */
  toBody(): { errors: { code: string; message: string; detail?: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail !== undefined && { detail: this.detail }) }] };
  }
}

const err = (code: RegistryErrorCode, status: number) =>
  (message: string, detail?: unknown, headers?: Record<string, string>): RegistryError => new RegistryError(code, status, message, detail, headers);

export const blobUnknown = err('BLOB_UNKNOWN', 404);
export const blobUploadUnknown = err('BLOB_UPLOAD_UNKNOWN', 404);
export const blobUploadInvalid = err('BLOB_UPLOAD_INVALID', 400);
export const digestInvalid = err('DIGEST_INVALID', 400);
export const manifestBlobUnknown = err('MANIFEST_BLOB_UNKNOWN', 400);
export const manifestInvalid = err('MANIFEST_INVALID', 400);
export const manifestUnknown = err('MANIFEST_UNKNOWN', 404);
export const nameInvalid = err('NAME_INVALID', 400);
export const nameUnknown = err('NAME_UNKNOWN', 404);
export const sizeInvalid = err('SIZE_INVALID', 400);
export const unauthorizedError = err('UNAUTHORIZED', 401);
export const denied = err('DENIED', 403);
export const unsupported = err('UNSUPPORTED', 405);
export const rangeInvalid = err('RANGE_INVALID', 416);
export const paginationNumberInvalid = err('PAGINATION_NUMBER_INVALID', 400);

/** Converts any error to a `RegistryError`; unexpected ones become 500 `UNKNOWN` (the cause is kept for the log). */
export function toRegistryError(e: unknown): RegistryError {
  if (e instanceof RegistryError) return e;
  if (isRuntimeError(e, 'NotFound')) return blobUnknown(e.message);
  return new RegistryError('UNKNOWN', 500, 'internal error', undefined, {}, { cause: e });
}

/** Sends `e` as the spec's error body; ends the response quietly if headers went already. */
export function sendRegistryError(res: ServerResponse, e: RegistryError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(e.toBody());
  res.statusCode = e.status;
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
