/**
 * Pushing an image from the content store to a registry: each blob (config and
 * layers) the registry lacks is mounted from another repository of the same
 * registry when one is known to hold it, else uploaded — in one PUT, or in
 * chunks (POST, PATCH…, PUT `?digest=`) when larger than the chunk size; then
 * the manifest, byte for byte, under the target's tag (or digest).
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions } from '../cri/types.ts';
import type { ImageProgress } from '../cri/image-service.ts';
import type { ContentStore } from '../images/content-store.ts';
import type { Digest } from '../images/digest.ts';
import type { Descriptor } from '../images/oci.ts';
import { formatReference, type ImageReference } from '../images/reference.ts';
import { repositoryScope } from './auth.ts';
import { forEachBounded } from './pull.ts';
import { header, type RegistryClient } from './registry-client.ts';
import { responseError } from './registry-errors.ts';

export interface PushDeps {
  readonly store: ContentStore;
  /** A client for the target's registry. */
  readonly client: RegistryClient;
}

export interface PushRequest extends CallOptions {
  /** Where to push; its tag (default `latest`) or digest names the manifest. */
  readonly target: ImageReference;
  readonly manifest: Descriptor;
  /** The stored manifest bytes, sent unchanged so the digest stays. */
  readonly manifestBytes: Buffer;
  /** Config and layers. */
  readonly blobs: readonly Descriptor[];
  /** Other repositories (paths) of the target registry that may hold the blobs: tried as mount sources. */
  readonly mountFrom?: readonly string[];
  /** Default 64 MiB. */
  readonly chunkSizeBytes?: number;
  /** Blobs uploaded at once. Default 3. */
  readonly concurrency?: number;
  readonly onProgress?: (p: ImageProgress) => void;
}

/** How each blob got there, for callers and tests. */
export type BlobPushOutcome = 'existed' | 'mounted' | 'uploaded' | 'uploaded-chunked';

export interface PushResult {
  readonly digest: Digest;
  readonly blobs: Readonly<Record<string, BlobPushOutcome>>;
}

const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * See the module comment. Idempotent. Rejects `FailedPrecondition`
 * (unauthorized, denied), `Unavailable`, `NotFound` (a local blob missing),
 * `InvalidArgument` (the registry refused the manifest); messages start with
 * `push <target>`.
 */
export async function pushToRegistry(deps: PushDeps, req: PushRequest): Promise<PushResult> {
  const { store, client } = deps;
  const target = req.target.tag === undefined && req.target.digest === undefined ? { ...req.target, tag: 'latest' } : req.target;
  const path = target.path;
  const what = `push ${formatReference(target)}`;
  const mountFrom = [...new Set(req.mountFrom ?? [])].filter((p) => p !== path);
  const scopes = [repositoryScope(path, ['pull', 'push']), ...mountFrom.map((p) => repositoryScope(p, ['pull']))];
  const base = { scopes, what, ...(req.signal && { signal: req.signal }) };
  const chunk = req.chunkSizeBytes ?? DEFAULT_CHUNK_BYTES;
  const outcomes: Record<string, BlobPushOutcome> = {};

  await forEachBounded(req.blobs, req.concurrency ?? 3, async (blob) => {
    const progress = (n: number): void => req.onProgress?.({ layer: blob.digest, currentBytes: n, totalBytes: blob.size });
    const head = await client.request({ ...base, method: 'HEAD', path: `/v2/${path}/blobs/${blob.digest}` });
    await check(client, head, [200, 404], what);
    if (head.statusCode === 200) {
      outcomes[blob.digest] = 'existed';
      progress(blob.size);
      return;
    }
    let location: string | undefined;
    for (const from of mountFrom) {
      const res = await client.request({
        ...base, method: 'POST',
        path: `/v2/${path}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`,
      });
      await check(client, res, [201, 202, 404], what);
      if (res.statusCode === 201) {
        outcomes[blob.digest] = 'mounted';
        progress(blob.size);
        return;
      }
      // 202: the registry could not mount and opened an ordinary upload instead.
      if (res.statusCode === 202) {
        location = locationOf(res, what);
        break;
      }
    }
    if (location === undefined) {
      const res = await client.request({ ...base, method: 'POST', path: `/v2/${path}/blobs/uploads/` });
      await check(client, res, [202], what);
      location = locationOf(res, what);
    }
    const file = store.blobPath(blob.digest);
    await store.blobSize(blob.digest);
    if (blob.size <= chunk) {
      const put = client.url(location);
      put.searchParams.set('digest', blob.digest);
      const res = await client.request({
        ...base, method: 'PUT', path: put.href,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
        body: () => counting(createReadStream(file), progress),
      });
      await check(client, res, [201], what);
      outcomes[blob.digest] = 'uploaded';
      return;
    }
    for (let start = 0; start < blob.size; start += chunk) {
      const end = Math.min(blob.size, start + chunk) - 1;
      const res = await client.request({
        ...base, method: 'PATCH', path: client.url(location).href,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(end - start + 1),
          'content-range': `${start}-${end}`,
        },
        body: () => counting(createReadStream(file, { start, end }), (n) => progress(start + n)),
      });
      await check(client, res, [202], what);
      location = locationOf(res, what);
    }
    const put = client.url(location);
    put.searchParams.set('digest', blob.digest);
    const res = await client.request({ ...base, method: 'PUT', path: put.href });
    await check(client, res, [201], what);
    outcomes[blob.digest] = 'uploaded-chunked';
  });

  const res = await client.request({
    ...base, method: 'PUT',
    path: `/v2/${path}/manifests/${target.digest ?? target.tag}`,
    headers: { 'content-type': req.manifest.mediaType },
    body: req.manifestBytes,
  });
  await check(client, res, [201], what);
  const echoed = header(res.headers, 'docker-content-digest');
  if (echoed !== undefined && echoed !== req.manifest.digest)
    throw new RuntimeError('Internal', `${what}: registry ${client.endpoint.host} stored the manifest as ${echoed}, want ${req.manifest.digest}`);
  return { digest: req.manifest.digest, blobs: outcomes };
}

/** Discards the body of a response with an expected status; rejects with the registry's error otherwise. */
async function check(client: RegistryClient, res: IncomingMessage, ok: readonly number[], what: string): Promise<void> {
  if (ok.includes(res.statusCode ?? 0)) {
    res.resume();
    return;
  }
  throw await responseError(res, what, client.endpoint.host);
}

function locationOf(res: IncomingMessage, what: string): string {
  const l = header(res.headers, 'location');
  if (!l) throw new RuntimeError('Unavailable', `${what}: the registry opened an upload without a Location`);
  return l;
}

/** Passes a stream through, reporting the bytes read so far. */
async function* counting(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const c of source) {
    n += c.length;
    yield c;
    onBytes(n);
  }
}
