/**
 * Pulling an image from a registry into the content store: resolve the
 * reference to a manifest (the host platform's, from an index), then store the
 * manifest, config and layers, layers concurrently (bounded), each verified by
 * digest as it is written and resumed with a `Range` request after a dropped
 * connection. Blobs already stored are not downloaded. The caller records the
 * image (`ImageStore.recordImage`) and releases the lease.
 */
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { RuntimeError, isRuntimeError } from '../cri/errors.ts';
import type { CallOptions, ImageId } from '../cri/types.ts';
import type { ImageProgress } from '../cri/image-service.ts';
import type { ContentStore, Lease } from '../images/content-store.ts';
import type { Digest } from '../images/digest.ts';
import { hostPlatform, isIndexMediaType, parseImageConfig, parseManifest, type Descriptor, type ImageManifest, type OciImageConfig, type Platform } from '../images/oci.ts';
import { formatReference, type ImageReference } from '../images/reference.ts';
import { repositoryScope } from './auth.ts';
import { fetchManifest, parseFetchedIndex, selectPlatform } from './manifest-fetch.ts';
import { header, type RegistryClient } from './registry-client.ts';
import { responseError, transportError } from './registry-errors.ts';

export interface PullDeps {
  readonly store: ContentStore;
  /** A client for the reference's registry. */
  readonly client: RegistryClient;
}

export interface PullRequest extends CallOptions {
  readonly ref: ImageReference;
  /** Every blob written is added to it. */
  readonly lease: Lease;
  /** Default `hostPlatform()`. */
  readonly platform?: Platform;
  /** Layers downloaded at once. Default 3 (Docker's `max-concurrent-downloads`). */
  readonly concurrency?: number;
  /** Connections tried per blob before giving up (the first included). Default 5. */
  readonly maxAttempts?: number;
  readonly onProgress?: (p: ImageProgress) => void;
}

/** What was stored: the input of `ImageStore.recordImage` (without refs and lease). */
export interface PulledImage {
  readonly manifest: Descriptor;
  readonly parsedManifest: ImageManifest;
  readonly configDigest: Digest;
  readonly config: OciImageConfig;
  /** The index the manifest was chosen from, when the reference named one. */
  readonly index?: Descriptor;
  readonly imageId: ImageId;
}

/** Bytes handed to the store per write: fewer, larger writes than the socket's chunks. */
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * See the module comment. Rejects `NotFound` (repository, tag or digest
 * unknown, or no manifest for the platform), `FailedPrecondition`
 * (unauthorized), `Unavailable` (unreachable, or still failing after
 * `maxAttempts` connections), `InvalidArgument` (digest mismatch, unsupported
 * content); messages start with `pull <reference>`.
 */
export async function pullFromRegistry(deps: PullDeps, req: PullRequest): Promise<PulledImage> {
  const { store, client } = deps;
  const { ref, lease } = req;
  const what = `pull ${formatReference(ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: 'latest' } : ref)}`;
  const call = req.signal ? { signal: req.signal } : {};
  let fetched = await fetchManifest(client, ref.path, ref.digest ?? ref.tag ?? 'latest', what, call);
  let index: Descriptor | undefined;
  if (isIndexMediaType(fetched.descriptor.mediaType)) {
    index = fetched.descriptor;
    const chosen = selectPlatform(parseFetchedIndex(fetched, what), req.platform ?? hostPlatform(), what);
    fetched = await fetchManifest(client, ref.path, chosen.digest, what, call);
    if (fetched.descriptor.digest !== chosen.digest)
      throw new RuntimeError('InvalidArgument', `${what}: index names manifest ${chosen.digest}, registry sent ${fetched.descriptor.digest}`);
  }
  const manifest = fetched.descriptor;
  const parsedManifest = parseManifest(fetched.bytes, `${what}: manifest ${manifest.digest}`);

  const blob = (d: Descriptor, label: string, onBytes?: (n: number) => void): Promise<unknown> =>
    store.writeBlob(() => blobChunks(client, ref.path, d, { what: `${what}: ${label} ${d.digest}`, maxAttempts: req.maxAttempts ?? 5, ...call }), {
      digest: d.digest, size: d.size, lease, what: `${what}: ${label}`, ...call, ...(onBytes && { onBytes }),
    });

  await blob(parsedManifest.config, 'config');
  const config = parseImageConfig(await store.readBlob(parsedManifest.config.digest), `${what}: config ${parsedManifest.config.digest}`);
  if (config.rootfs.diff_ids.length !== parsedManifest.layers.length)
    throw new RuntimeError('InvalidArgument', `${what}: manifest has ${parsedManifest.layers.length} layers, config has ${config.rootfs.diff_ids.length} diff IDs`);

  await forEachBounded(parsedManifest.layers, req.concurrency ?? 3, async (layer, i) => {
    const progress = (n: number): void => req.onProgress?.({ layer: layer.digest, currentBytes: n, totalBytes: layer.size });
    if (await store.hasBlob(layer.digest)) {
      lease.add(layer.digest);
      progress(layer.size);
      return;
    }
    progress(0);
    await blob(layer, `layer ${i}`, progress);
  });
  // The manifest last: a stored manifest means a complete image.
  await store.writeBlob(() => [fetched.bytes], { digest: manifest.digest, size: manifest.size, lease, what: `${what}: manifest`, ...call });
  return {
    manifest, parsedManifest, configDigest: parsedManifest.config.digest, config,
    imageId: parsedManifest.config.digest as string as ImageId,
    ...(index && { index }),
  };
}

/** Runs `fn` on every item with at most `limit` running; rejects with the first failure after the running ones settle. */
export async function forEachBounded<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.err;
}

interface BlobChunksOptions extends CallOptions {
  readonly what: string;
  readonly maxAttempts: number;
}

/**
 * The bytes of a blob, from as many connections as it takes: after a dropped
 * connection the next asks for the rest with `Range`; a registry that answers
 * 200 instead of 206 sends the whole blob again and the part already had is skipped.
 */
async function* blobChunks(client: RegistryClient, path: string, d: Descriptor, opts: BlobChunksOptions): AsyncGenerator<Buffer> {
  let received = 0;
  let failures = 0;
  const retry = async (err: unknown): Promise<void> => {
    opts.signal?.throwIfAborted();
    failures++;
    if (failures >= opts.maxAttempts)
      throw new RuntimeError('Unavailable', `${opts.what}: download failed after ${failures} attempts at byte ${received} of ${d.size}: ${(err as Error).message}`, { cause: err });
    await sleep(Math.min(2000, 100 * 2 ** (failures - 1)), undefined, opts.signal ? { signal: opts.signal } : {});
  };
  for (;;) {
    let res: IncomingMessage;
    try {
      res = await client.request({
        method: 'GET',
        path: `/v2/${path}/blobs/${d.digest}`,
        scopes: [repositoryScope(path, ['pull'])],
        followRedirects: true,
        headers: received > 0 ? { range: `bytes=${received}-` } : {},
        what: opts.what,
        ...(opts.signal && { signal: opts.signal }),
      });
    } catch (err) {
      if (isRuntimeError(err, 'Unavailable')) {
        await retry(err);
        continue;
      }
      throw err;
    }
    const status = res.statusCode ?? 0;
    let skip = 0;
    if (status === 206 && received > 0 && rangeStart(header(res.headers, 'content-range')) === received) skip = 0;
    else if (status === 200) skip = received;
    else {
      const err = await responseError(res, opts.what, client.endpoint.host);
      if (err.code === 'Unavailable') {
        await retry(err);
        continue;
      }
      throw err;
    }
    let batch: Buffer[] = [];
    let batchBytes = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        let c = chunk;
        if (skip > 0) {
          if (c.length <= skip) {
            skip -= c.length;
            continue;
          }
          c = c.subarray(skip);
          skip = 0;
        }
        batch.push(c);
        batchBytes += c.length;
        if (batchBytes >= WRITE_BATCH_BYTES) {
          const out = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
          batch = [];
          batchBytes = 0;
          received += out.length;
          yield out;
        }
      }
    } catch (err) {
      opts.signal?.throwIfAborted();
      if (batchBytes > 0) {
        received += batchBytes;
        yield batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      }
      await retry(transportError(err, opts.what, client.endpoint.host));
      continue;
    }
    if (batchBytes > 0) {
      received += batchBytes;
      yield batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
    }
    if (received >= d.size) return;
    // The connection ended cleanly but early (no Content-Length to catch it).
    await retry(new Error(`connection closed after ${received} of ${d.size} bytes`));
  }
}

/** `bytes 100-199/200` → 100. */
function rangeStart(contentRange: string | undefined): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}
