/**
 * Registry failures as `RuntimeError`s that name what was being done
 * (`pull 127.0.0.1:5000/app:1`). The distribution spec's error body
 * (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":…}]}`) gives the detail.
 */
import type { IncomingMessage } from 'node:http';
import { RuntimeError, isRuntimeError, type RuntimeErrorCode } from '../cri/errors.ts';

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Reads at most 64 KiB of a response body as text (the rest is discarded). */
export async function readErrorBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res as AsyncIterable<Buffer>) {
      if (n < MAX_ERROR_BODY_BYTES) chunks.push(c);
      n += c.length;
    }
  } catch {
    // a truncated error body still says enough
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, MAX_ERROR_BODY_BYTES);
}

/** `CODE: message` of the first distribution error in `body`, or a short excerpt of it. */
export function describeErrorBody(body: string): string {
  try {
    const doc = JSON.parse(body) as { errors?: { code?: string; message?: string }[] };
    const e = doc.errors?.[0];
    if (e) return [e.code, e.message].filter(Boolean).join(': ');
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200);
}

/** The runtime code for an HTTP status of a registry. */
export function codeForStatus(status: number): RuntimeErrorCode {
  if (status === 401 || status === 403) return 'FailedPrecondition';
  if (status === 404) return 'NotFound';
  if (status === 429 || status >= 500) return 'Unavailable';
  if (status === 400) return 'InvalidArgument';
  return 'FailedPrecondition';
}

/**
 * The error for a response with an unexpected status; consumes the body.
 * 401/403 → `FailedPrecondition` ("unauthorized"/"denied"), 404 → `NotFound`,
 * 429 and 5xx → `Unavailable`, 400 → `InvalidArgument`, others → `FailedPrecondition`.
 */
export async function responseError(res: IncomingMessage, what: string, host: string): Promise<RuntimeError> {
  const status = res.statusCode ?? 0;
  const detail = describeErrorBody(await readErrorBody(res));
  const word = status === 401 ? 'unauthorized' : status === 403 ? 'denied' : status === 404 ? 'not found' : `HTTP ${status}`;
  const suffix = detail ? ` (${detail})` : '';
  return new RuntimeError(codeForStatus(status), `${what}: ${word}: registry ${host} answered HTTP ${status}${suffix}`);
}

/** Wraps a transport failure (refused, reset, DNS, TLS, timeout) as `Unavailable`; prefixes `RuntimeError`s with `what`; passes aborts through. */
export function transportError(err: unknown, what: string, host: string): unknown {
  if ((err as Error)?.name === 'AbortError') return err;
  if (isRuntimeError(err)) return err.message.startsWith(`${what}: `) ? err : new RuntimeError(err.code, `${what}: ${err.message}`, { cause: err });
  const e = err as NodeJS.ErrnoException;
  return new RuntimeError('Unavailable', `${what}: cannot reach registry ${host}: ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`, { cause: err });
}
