/**
 * ApiError is the one error type the API server turns into a Kubernetes `Status`.
 * Inner layers throw `ApiError`, `StoreError` (store/) or `FieldError[]` (via `invalid`);
 * only `api/server` converts them to HTTP responses (see `toStatus`).
 */

/** The `reason` values of a failed `Status`, as kube-apiserver uses them. */
export type StatusReason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'MethodNotAllowed'
  | 'Gone'
  | 'Expired'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'NotAcceptable'
  | 'TooManyRequests'
  | 'Timeout'
  | 'InternalError'
  | 'ServiceUnavailable';

/** One cause of a failed request, usually one bad field. */
export interface StatusCause {
  readonly reason?: string;
  readonly type?: string;
  readonly message: string;
  readonly field?: string;
}

/** `Status.details`: which object the failure is about, and why. */
export interface StatusDetails {
  readonly name?: string;
  readonly group?: string;
  readonly kind?: string;
  readonly uid?: string;
  readonly causes?: readonly StatusCause[];
  readonly retryAfterSeconds?: number;
}

/** The wire shape of a Kubernetes `Status` (meta/v1). */
export interface Status {
  apiVersion: 'v1';
  kind: 'Status';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** An error the API server returns to clients as a Kubernetes `Status`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly reason: StatusReason,
    readonly code: number,
    message: string,
    readonly details?: StatusDetails,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** The `Status` body sent to clients. */
  toStatus(): Status {
    const s: Status = {
      apiVersion: 'v1',
      kind: 'Status',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** Names a resource for messages: `containers.berth.dev`, or `namespaces` for core. */
export interface GroupResource {
  readonly group: string;
  readonly resource: string;
}

/** `containers.berth.dev`, or just `namespaces` for the core group. */
export const qualified = (r: GroupResource): string => (r.group ? `${r.resource}.${r.group}` : r.resource);

/** A field-path validation error, as apimachinery's `field.Error`. */
export interface FieldError {
  /** e.g. `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueTypeInvalid`, `FieldValueTooLong`, `FieldValueForbidden`, `FieldValueDuplicate` */
  readonly reason: string;
  /** Dotted path with indices, e.g. `spec.env[0].name`. */
  readonly field: string;
  /** What is wrong, e.g. `Required value` or `Unsupported value: "x": supported values: "a", "b"`. */
  readonly message: string;
}

export const notFound = (r: GroupResource, name: string): ApiError =>
  new ApiError('NotFound', 404, `${qualified(r)} "${name}" not found`, { name, group: r.group, kind: r.resource });

export const alreadyExists = (r: GroupResource, name: string): ApiError =>
  new ApiError('AlreadyExists', 409, `${qualified(r)} "${name}" already exists`, { name, group: r.group, kind: r.resource });

export const conflict = (r: GroupResource, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError =>
  new ApiError('Conflict', 409, `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
    name,
    group: r.group,
    kind: r.resource,
  });

/** 422 Invalid with one cause per field; `kind` is the Kind (not the plural), as kubectl prints it. */
export const invalid = (group: string, kind: string, name: string, errors: readonly FieldError[]): ApiError => {
  const summary = errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join(', ');
  const gk = group ? `${kind}.${group}` : kind;
  return new ApiError('Invalid', 422, `${gk} "${name}" is invalid: ${summary}`, {
    name,
    group,
    kind,
    causes: errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field })),
  });
};

export const badRequest = (message: string, causes?: readonly StatusCause[]): ApiError =>
  new ApiError('BadRequest', 400, message, causes ? { causes } : undefined);

export const methodNotAllowed = (message: string): ApiError => new ApiError('MethodNotAllowed', 405, message);

export const gone = (message: string): ApiError => new ApiError('Expired', 410, message);

export const unsupportedMediaType = (contentType: string, accepted: readonly string[]): ApiError =>
  new ApiError(
    'UnsupportedMediaType',
    415,
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
    { causes: [{ type: 'UnsupportedMediaType', message: contentType }] },
  );

export const tooLarge = (limitBytes: number): ApiError =>
  new ApiError('RequestEntityTooLarge', 413, `the request body is larger than the limit of ${limitBytes} bytes`);

export const unauthorized = (): ApiError => new ApiError('Unauthorized', 401, 'Unauthorized');

export const forbidden = (message: string): ApiError => new ApiError('Forbidden', 403, message);

export const internalError = (cause: unknown): ApiError =>
  new ApiError('InternalError', 500, 'Internal error occurred: an unexpected error; see the server log', undefined, { cause });

export const isApiError = (err: unknown, reason?: StatusReason): err is ApiError =>
  err instanceof ApiError && (reason === undefined || err.reason === reason);

export const isNotFound = (err: unknown): boolean => isApiError(err, 'NotFound');
export const isConflict = (err: unknown): boolean => isApiError(err, 'Conflict');
