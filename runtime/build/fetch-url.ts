/**
 * Downloads an ADD source URL with Node's http(s) client into a temporary
 * file. There is no retry: a build on a machine without internet fails at once
 * with a message that names the URL and the reason.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, utimes } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';

export interface FetchedFile {
  /** Where the body was written. */
  readonly path: string;
  /** The file name ADD gives it: the last path segment of the URL (after redirects). */
  readonly name: string;
}

const MAX_REDIRECTS = 10;

/**
 * Fetches `url` (http or https, up to 10 redirects, `timeoutMs` per request,
 * default 30 s) into a new directory under `tmpDir`. Rejects `Unavailable`
 * naming the URL when it is unreachable, answers with a non-2xx status, or
 * times out; `InvalidArgument` when the URL has no file name.
 */
export async function fetchUrl(url: string, tmpDir: string, opts: CallOptions & { timeoutMs?: number } = {}): Promise<FetchedFile> {
  let current = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await request(current, opts.timeoutMs ?? 30_000, opts.signal);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      current = new URL(res.headers.location, current);
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new RuntimeError('Unavailable', `ADD ${url}: the server answered ${status} ${res.statusMessage ?? ''}`.trim());
    }
    const name = basename(current.pathname);
    if (name === '' || name === '/') {
      res.resume();
      throw new RuntimeError('InvalidArgument', `ADD ${url}: cannot determine a file name from the URL; use a URL that ends in a file name`);
    }
    const dir = await mkdtemp(join(tmpDir, 'url-'));
    const path = join(dir, name);
    await pipeline(res, createWriteStream(path, { mode: 0o600 }));
    const lastModified = res.headers['last-modified'] ? new Date(res.headers['last-modified']) : undefined;
    if (lastModified && !Number.isNaN(lastModified.getTime())) await utimes(path, lastModified, lastModified);
    return { path, name };
  }
  throw new RuntimeError('Unavailable', `ADD ${url}: too many redirects`);
}

function request(url: URL, timeoutMs: number, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsGet : url.protocol === 'http:' ? httpGet : undefined;
    if (!get) {
      reject(new RuntimeError('InvalidArgument', `ADD ${url.href}: only http and https URLs are supported`));
      return;
    }
    const req = get(url, { timeout: timeoutMs, ...(signal && { signal }) }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(new RuntimeError('Unavailable', `ADD ${url.href}: cannot download: ${err.code ? `${err.code} ` : ''}${err.message}`, { cause: err }));
    });
  });
}
