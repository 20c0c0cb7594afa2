/**
 * Import of images from a path on this machine into the content store: an OCI
 * image layout directory, an OCI archive (a tar of a layout, gzip or not), or a
 * docker-archive (`docker save`: manifest.json, `<config>.json`, layer tars;
 * also a directory holding one). From an index the manifest for this node's
 * platform (linux/amd64 here) is chosen. Every blob is verified by digest as it
 * is stored; docker-archive images get a synthesised OCI manifest.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, realpath, rm, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { RuntimeError, isRuntimeError } from '../cri/errors.ts';
import type { ImageProgress } from '../cri/image-service.ts';
import type { CallOptions } from '../cri/types.ts';
import type { ContentStore, Lease } from './content-store.ts';
import { digestHex, sha256Of, toDigest, type Digest } from './digest.ts';
import {
  IMAGE_NAME_ANNOTATION, MEDIA_TYPE, REF_NAME_ANNOTATION, hostPlatform, isIndexMediaType, isManifestMediaType,
  parseImageConfig, parseIndex, parseManifest, type Descriptor, type ImageManifest, type OciImageConfig, type Platform,
} from './oci.ts';
import { decompress, detectCompression, extractTar } from './unpack.ts';

export interface ImportFromPathOptions extends CallOptions {
  readonly store: ContentStore;
  /** Scratch directory on the store's filesystem for extracting archives. */
  readonly tmpDir: string;
  /** Holds the stored blobs until the caller records the image. */
  readonly lease: Lease;
  /**
   * Names that select one image when the source holds several (matched against
   * index.json ref names and docker-archive RepoTags), e.g. the requested tags.
   */
  readonly selectors?: readonly string[];
  readonly onProgress?: (p: ImageProgress) => void;
}

/** What was imported. All blobs are in the store. */
export interface ImportedImage {
  readonly manifest: Descriptor;
  readonly parsedManifest: ImageManifest;
  readonly configDigest: Digest;
  readonly config: OciImageConfig;
  /** Image names the source carries (RepoTags, `io.containerd.image.name`, full-reference ref names), as written. */
  readonly names: readonly string[];
}

const MAX_JSON_BYTES = 16 << 20;

/** Imports the image at `path`. Rejects with `InvalidArgument` for unusable sources, `NotFound` for a missing path. */
export async function importFromPath(path: string, opts: ImportFromPathOptions): Promise<ImportedImage> {
  const st = await stat(path).catch((err: unknown) => {
    throw new RuntimeError('NotFound', `import source ${path} not found`, { cause: err });
  });
  if (st.isDirectory()) return importFromDir(path, `import source ${path}`, opts);
  if (!st.isFile()) throw new RuntimeError('InvalidArgument', `import source ${path}: not a file or directory`);
  await mkdir(opts.tmpDir, { recursive: true });
  const dir = join(opts.tmpDir, `import-${randomBytes(8).toString('hex')}`);
  await mkdir(dir, 0o700);
  try {
    const what = `archive ${path}`;
    const plain = await decompress(createReadStream(path), what);
    await extractTar(plain, dir, { what, whiteouts: 'keep', ...(opts.signal && { signal: opts.signal }) });
    return await importFromDir(dir, what, opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A file inside `root`, following symlinks only as long as they stay inside. */
async function fileIn(root: string, rel: string, what: string): Promise<string> {
  if (rel.startsWith('/') || rel.split('/').includes('..')) throw new RuntimeError('InvalidArgument', `${what}: path ${JSON.stringify(rel)} leaves the source`);
  const base = await realpath(root);
  let real: string;
  try {
    real = await realpath(join(root, rel));
  } catch (err) {
    throw new RuntimeError('InvalidArgument', `${what}: ${rel} is missing`, { cause: err });
  }
  if (!real.startsWith(base + sep)) throw new RuntimeError('InvalidArgument', `${what}: ${rel} points outside the source`);
  return real;
}

async function readSmall(path: string, what: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size > MAX_JSON_BYTES) throw new RuntimeError('InvalidArgument', `${what}: ${size} bytes is too large for a JSON document`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

const present = async (p: string): Promise<boolean> => stat(p).then(() => true, () => false);

async function importFromDir(dir: string, what: string, opts: ImportFromPathOptions): Promise<ImportedImage> {
  const hasIndex = await present(join(dir, 'index.json'));
  if (hasIndex && (await present(join(dir, 'oci-layout')))) {
    const dockerNames = (await present(join(dir, 'manifest.json'))) ? await dockerRepoTags(dir, what) : [];
    return importOciLayout(dir, what, dockerNames, opts);
  }
  if (await present(join(dir, 'manifest.json'))) return importDockerArchive(dir, what, opts);
  throw new RuntimeError('InvalidArgument', `${what}: neither an OCI image layout (oci-layout, index.json) nor a docker-archive (manifest.json)`);
}

/** Reads a blob from a layout, verifying digest and size against its descriptor. */
async function layoutJson(dir: string, d: Descriptor, what: string): Promise<Buffer> {
  const bytes = await readSmall(await fileIn(dir, `blobs/sha256/${digestHex(d.digest)}`, what), `${what}: blob ${d.digest}`);
  if (sha256Of(bytes) !== d.digest) throw new RuntimeError('InvalidArgument', `${what}: blob ${d.digest} has digest ${sha256Of(bytes)}`);
  if (bytes.length !== d.size) throw new RuntimeError('InvalidArgument', `${what}: blob ${d.digest} is ${bytes.length} bytes, descriptor says ${d.size}`);
  return bytes;
}

const platformString = (p?: Platform): string => (p ? `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}` : 'unknown');
const matchesHost = (p: Platform | undefined, host: Platform): boolean =>
  p !== undefined && p.os === host.os && p.architecture === host.architecture;

function refNameOf(d: Descriptor): string | undefined {
  return d.annotations?.[IMAGE_NAME_ANNOTATION] ?? d.annotations?.[REF_NAME_ANNOTATION];
}

/** Whether a selector (a tag like `busybox:1`, or a normalised ref) names this ref-name or RepoTag. */
function selects(selector: string, name: string): boolean {
  if (selector === name) return true;
  const tagOf = (s: string): string => (s.lastIndexOf(':') > s.lastIndexOf('/') ? s.slice(s.lastIndexOf(':') + 1) : 'latest');
  // OCI ref names are often just the tag.
  return !name.includes(':') && !name.includes('/') && tagOf(selector) === name;
}

function chooseTop(index: readonly Descriptor[], what: string, selectors: readonly string[], host: Platform): Descriptor {
  if (index.length === 0) throw new RuntimeError('InvalidArgument', `${what}: index.json lists no images`);
  const distinct = [...new Map(index.map((d) => [d.digest, d])).values()];
  if (distinct.length === 1) return distinct[0]!;
  const named = index.filter((d) => selectors.some((s) => refNameOf(d) !== undefined && selects(s, refNameOf(d)!)));
  if (new Set(named.map((d) => d.digest)).size === 1) return named[0]!;
  const forHost = distinct.filter((d) => matchesHost(d.platform, host));
  if (forHost.length === 1) return forHost[0]!;
  const names = index.map((d) => refNameOf(d) ?? d.digest).join(', ');
  throw new RuntimeError('InvalidArgument', `${what}: holds several images (${names}); tag the import with one of their names to choose`);
}

async function importOciLayout(dir: string, what: string, extraNames: readonly string[], opts: ImportFromPathOptions): Promise<ImportedImage> {
  const host = hostPlatform();
  const index = parseIndex(await readSmall(await fileIn(dir, 'index.json', what), `${what}: index.json`), `${what}: index.json`);
  let desc = chooseTop(index.manifests, what, opts.selectors ?? [], host);
  const names = [...extraNames];
  for (const d of index.manifests) {
    if (d.digest !== desc.digest) continue;
    const full = d.annotations?.[IMAGE_NAME_ANNOTATION];
    const refName = d.annotations?.[REF_NAME_ANNOTATION];
    if (full) names.push(full);
    // A ref name that is a whole reference (not just a tag) names the image.
    else if (refName && /[:/]/.test(refName)) names.push(refName);
  }
  for (let depth = 0; isIndexMediaType(desc.mediaType); depth++) {
    if (depth > 4) throw new RuntimeError('InvalidArgument', `${what}: indexes nested too deep`);
    const child = parseIndex(await layoutJson(dir, desc, what), `${what}: index ${desc.digest}`);
    const images = child.manifests.filter((m) => isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType));
    const pick = images.find((m) => matchesHost(m.platform, host)) ?? (images.length === 1 && !images[0]!.platform ? images[0] : undefined);
    if (pick === undefined)
      throw new RuntimeError('InvalidArgument', `${what}: no ${platformString(host)} image in index ${desc.digest} (has ${images.map((m) => platformString(m.platform)).join(', ') || 'none'})`);
    desc = pick;
  }
  if (!isManifestMediaType(desc.mediaType)) throw new RuntimeError('InvalidArgument', `${what}: ${desc.digest} has unsupported media type ${desc.mediaType}`);
  const manifestBytes = await layoutJson(dir, desc, what);
  const manifest = parseManifest(manifestBytes, `${what}: manifest ${desc.digest}`);
  const configBytes = await layoutJson(dir, manifest.config, what);
  const config = checkConfig(parseImageConfig(configBytes, `${what}: config ${manifest.config.digest}`), manifest, what, host);

  await opts.store.writeBlob(() => [configBytes], { digest: manifest.config.digest, size: configBytes.length, what: `${what}: config`, lease: opts.lease });
  for (const [i, layer] of manifest.layers.entries()) {
    const file = await fileIn(dir, `blobs/sha256/${digestHex(layer.digest)}`, what);
    await storeLayer(opts, () => createReadStream(file), layer.digest, layer.size, `${what}: layer ${i}`);
  }
  await opts.store.writeBlob(() => [manifestBytes], { digest: desc.digest, size: manifestBytes.length, what: `${what}: manifest`, lease: opts.lease });
  return {
    manifest: { mediaType: desc.mediaType, digest: desc.digest, size: manifestBytes.length },
    parsedManifest: manifest,
    configDigest: manifest.config.digest,
    config,
    names,
  };
}

function checkConfig(config: OciImageConfig, manifest: ImageManifest, what: string, host: Platform): OciImageConfig {
  if (config.rootfs.diff_ids.length !== manifest.layers.length)
    throw new RuntimeError('InvalidArgument', `${what}: config lists ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
  if ((config.os !== '' && config.os !== host.os) || (config.architecture !== '' && config.architecture !== host.architecture))
    throw new RuntimeError('InvalidArgument', `${what}: image is for ${config.os}/${config.architecture}, this node runs ${platformString(host)}`);
  return config;
}

async function storeLayer(
  opts: ImportFromPathOptions, source: () => AsyncIterable<Uint8Array>, digest: Digest | undefined, size: number, what: string,
  key?: string,
): Promise<Digest> {
  const layer = digest ?? key ?? what;
  let last = -1;
  const report = (currentBytes: number): void => {
    if (currentBytes !== size && currentBytes - last < 1 << 20) return;
    last = currentBytes;
    opts.onProgress?.({ layer, currentBytes, totalBytes: size });
  };
  report(0);
  const r = await opts.store.writeBlob(source, {
    ...(digest && { digest }), size, what, lease: opts.lease, onBytes: report, ...(opts.signal && { signal: opts.signal }),
  });
  if (r.existed) opts.onProgress?.({ layer, currentBytes: r.size, totalBytes: r.size });
  return r.digest;
}

interface DockerManifestEntry {
  readonly Config: string;
  readonly RepoTags?: readonly string[] | null;
  readonly Layers: readonly string[];
}

async function dockerManifest(dir: string, what: string): Promise<DockerManifestEntry[]> {
  let doc: unknown;
  try {
    doc = JSON.parse((await readSmall(await fileIn(dir, 'manifest.json', what), `${what}: manifest.json`)).toString('utf8'));
  } catch (err) {
    if (isRuntimeError(err)) throw err;
    throw new RuntimeError('InvalidArgument', `${what}: manifest.json is not valid JSON`, { cause: err });
  }
  const ok = Array.isArray(doc) && doc.every((e) =>
    typeof e === 'object' && e !== null && typeof e.Config === 'string' && Array.isArray(e.Layers) && e.Layers.every((l: unknown) => typeof l === 'string'));
  if (!ok) throw new RuntimeError('InvalidArgument', `${what}: manifest.json is not a docker-archive manifest`);
  return doc as DockerManifestEntry[];
}

async function dockerRepoTags(dir: string, what: string): Promise<string[]> {
  return (await dockerManifest(dir, what)).flatMap((e) => e.RepoTags ?? []);
}

async function importDockerArchive(dir: string, what: string, opts: ImportFromPathOptions): Promise<ImportedImage> {
  const host = hostPlatform();
  const entries = await dockerManifest(dir, what);
  if (entries.length === 0) throw new RuntimeError('InvalidArgument', `${what}: manifest.json lists no images`);
  let entry = entries[0]!;
  if (entries.length > 1) {
    const chosen = entries.filter((e) => (e.RepoTags ?? []).some((t) => (opts.selectors ?? []).some((s) => selects(s, t) || s.endsWith(`/${t}`) || s === `docker.io/library/${t}`)));
    if (chosen.length !== 1) {
      throw new RuntimeError('InvalidArgument', `${what}: holds several images (${entries.map((e) => (e.RepoTags ?? []).join(' ') || e.Config).join(', ')}); tag the import with one of their names to choose`);
    }
    entry = chosen[0]!;
  }
  const configBytes = await readSmall(await fileIn(dir, entry.Config, what), `${what}: ${entry.Config}`);
  const configDigest = sha256Of(configBytes);
  const diffIds = parseImageConfig(configBytes, `${what}: ${entry.Config}`).rootfs.diff_ids;
  const layers: Descriptor[] = [];
  for (const [i, rel] of entry.Layers.entries()) {
    const file = await fileIn(dir, rel, what);
    const head = Buffer.alloc(6);
    const fh = await open(file, 'r');
    try {
      await fh.read(head, 0, 6, 0);
    } finally {
      await fh.close();
    }
    const gz = detectCompression(head) === 'gzip';
    const size = (await stat(file)).size;
    // An uncompressed layer's digest is its diff ID; a docker 25+ archive also names blobs by digest.
    const named = rel.match(/^blobs\/sha256\/([a-f0-9]{64})$/);
    const expected = named ? toDigest(`sha256:${named[1]}`) : gz ? undefined : diffIds[i];
    const digest = await storeLayer(opts, () => createReadStream(file), expected, size, `${what}: layer ${i} (${rel})`, rel);
    layers.push({ mediaType: gz ? MEDIA_TYPE.ociLayerGzip : MEDIA_TYPE.ociLayer, digest, size });
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config: { mediaType: MEDIA_TYPE.ociConfig, digest: configDigest, size: configBytes.length },
    layers,
  };
  const config = checkConfig(parseImageConfig(configBytes, `${what}: ${entry.Config}`), manifest, what, host);
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  await opts.store.writeBlob(() => [configBytes], { digest: configDigest, what: `${what}: config`, lease: opts.lease });
  const m = await opts.store.writeBlob(() => [manifestBytes], { what: `${what}: manifest`, lease: opts.lease });
  return {
    manifest: { mediaType: MEDIA_TYPE.ociManifest, digest: m.digest, size: manifestBytes.length },
    parsedManifest: manifest,
    configDigest,
    config,
    names: [...(entry.RepoTags ?? [])],
  };
}
