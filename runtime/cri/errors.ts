/** The runtime's closed set of failures, as containerd's errdefs. Reconcilers turn them into conditions and Events. */
export type RuntimeErrorCode = 'NotFound' | 'AlreadyExists' | 'FailedPrecondition' | 'InvalidArgument' | 'Unavailable' | 'Internal';

/** A failure of a runtime call, by code; `cause` keeps the underlying error (a runc exit, an errno). */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export const isRuntimeError = (err: unknown, code?: RuntimeErrorCode): err is RuntimeError =>
  err instanceof RuntimeError && (code === undefined || err.code === code);
