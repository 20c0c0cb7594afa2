import type { Writable } from 'node:stream';
/**
 * `FakeImageService`: an in-memory `ImageService` for controller tests. Images are
 * added by `addImage` or by `importImage` of a path made importable with
 * `addArchive`; references are normalised as Docker does. `pin` marks an image as used
 * by a container, so `removeImage` refuses with `FailedPrecondition` as the real store does.
 */
import { createHash } from 'node:crypto';
import { RuntimeError, type ImageService, type ImportOptions } from '../../../runtime/cri/index.ts';
import type { AuthConfig, CallOptions, FilesystemUsage, Image, ImageFilter, ImageId, ImageRef } from '../../../runtime/cri/index.ts';
import { normalizeImageReference } from '../image-reference.ts';

interface Record_ {
  readonly id: ImageId;
  readonly sizeBytes: number;
  readonly repoDigests: string[];
}

/** See the module comment. `calls` records method names in order. */
export class FakeImageService implements ImageService {
  readonly calls: string[] = [];
  private readonly images = new Map<ImageId, Record_>();
  private readonly refs = new Map<string, ImageId>();
  private readonly archives = new Map<string, { id: ImageId; sizeBytes: number; repoDigests: string[] }>();
  private readonly pins = new Map<ImageId, Set<string>>();

  /** Adds an image answering to `refs`; returns its ID. */
  addImage(refs: readonly string[], opts: { sizeBytes?: number } = {}): ImageId {
    const id = idOf(refs.join(','));
    this.images.set(id, { id, sizeBytes: opts.sizeBytes ?? 1_000_000, repoDigests: [] });
    for (const r of refs) this.refs.set(normalizeImageReference(r), id);
    return id;
  }

  /** Makes `path` importable as an image with this content. */
  addArchive(path: string, opts: { sizeBytes?: number; manifestDigest?: string } = {}): ImageId {
    const id = idOf(path);
    this.archives.set(path, { id, sizeBytes: opts.sizeBytes ?? 2_000_000, repoDigests: opts.manifestDigest ? [opts.manifestDigest] : [] });
    return id;
  }

  /** Marks the image `ref` resolves to as used by `containerId`. */
  pin(ref: string, containerId: string): void {
    const id = this.resolve(ref);
    if (!id) throw new Error(`no image ${ref}`);
    const s = this.pins.get(id) ?? new Set();
    s.add(containerId);
    this.pins.set(id, s);
  }

  unpin(ref: string, containerId: string): void {
    const id = this.resolve(ref);
    if (id) this.pins.get(id)?.delete(containerId);
  }

  async listImages(filter?: ImageFilter, _opts?: CallOptions): Promise<Image[]> {
    this.calls.push('listImages');
    const ids = filter?.ref !== undefined ? [this.resolve(filter.ref)].filter((x): x is ImageId => !!x) : [...this.images.keys()];
    return ids.map((id) => this.toImage(id));
  }

  async imageStatus(ref: ImageRef, _opts?: CallOptions): Promise<Image | undefined> {
    this.calls.push('imageStatus');
    const id = this.resolve(ref);
    return id ? this.toImage(id) : undefined;
  }

  async pullImage(ref: ImageRef, _auth?: AuthConfig, _opts?: CallOptions): Promise<ImageId> {
    this.calls.push('pullImage');
    throw new RuntimeError('Unavailable', `cannot pull ${JSON.stringify(ref)}: the fake image service has no registry; import the image instead`);
  }

  async exportImages(refs: readonly ImageRef[], _format: string, _out: Writable, _opts?: CallOptions): Promise<void> {
    this.calls.push('exportImages');
    throw new RuntimeError('Unavailable', `cannot export ${refs.join(', ')}: the fake image service stores no content`);
  }

  async checkRegistryLogin(registry: string, _auth: AuthConfig, _opts?: CallOptions): Promise<void> {
    this.calls.push('checkRegistryLogin');
    throw new RuntimeError('Unavailable', `cannot log in to ${registry}: the fake image service has no registry`);
  }

  async pushImage(ref: ImageRef, target: ImageRef, _opts?: CallOptions): Promise<string> {
    this.calls.push('pushImage');
    throw new RuntimeError('Unavailable', `cannot push ${JSON.stringify(ref)} to ${JSON.stringify(target)}: the fake image service has no registry`);
  }

  async importImage(path: string, opts: ImportOptions = {}): Promise<ImageId> {
    this.calls.push('importImage');
    const a = this.archives.get(path);
    if (!a) throw new RuntimeError('NotFound', `no such file or directory: ${path}`);
    const repoDigests = a.repoDigests.flatMap((d) => (opts.tags ?? []).map((t) => `${normalizeImageReference(t).replace(/:[^:/]+$/, '')}@${d}`));
    this.images.set(a.id, { id: a.id, sizeBytes: a.sizeBytes, repoDigests });
    for (const t of opts.tags ?? []) this.refs.set(normalizeImageReference(t), a.id);
    return a.id;
  }

  async tagImage(ref: ImageRef, newRef: ImageRef, _opts?: CallOptions): Promise<void> {
    this.calls.push('tagImage');
    const id = this.resolve(ref);
    if (!id) throw new RuntimeError('NotFound', `image ${JSON.stringify(ref)} not found`);
    this.refs.set(normalizeImageReference(newRef), id);
  }

  async removeImage(ref: ImageRef, _opts?: CallOptions): Promise<void> {
    this.calls.push('removeImage');
    const id = this.resolve(ref);
    if (!id) return;
    const byId = ref === id;
    const mine = [...this.refs.entries()].filter(([, v]) => v === id).map(([k]) => k);
    const drop = byId ? mine : [normalizeImageReference(ref)];
    if (mine.every((r) => drop.includes(r))) {
      const pins = this.pins.get(id);
      if (pins?.size) throw new RuntimeError('FailedPrecondition', `image ${JSON.stringify(ref)} (${id}) is in use by container ${[...pins].join(', ')}`);
      this.images.delete(id);
    }
    for (const r of drop) this.refs.delete(r);
  }

  async imageFsInfo(_opts?: CallOptions): Promise<FilesystemUsage[]> {
    return [{ mountpoint: '/fake/images', usedBytes: [...this.images.values()].reduce((n, i) => n + i.sizeBytes, 0), inodesUsed: this.images.size }];
  }

  private resolve(ref: string): ImageId | undefined {
    if (this.images.has(ref as ImageId)) return ref as ImageId;
    return this.refs.get(normalizeImageReference(ref));
  }

  private toImage(id: ImageId): Image {
    const r = this.images.get(id)!;
    return {
      id,
      repoTags: [...this.refs.entries()].filter(([, v]) => v === id).map(([k]) => k),
      repoDigests: r.repoDigests,
      sizeBytes: r.sizeBytes,
      config: { cmd: ['sh'] },
    };
  }
}

const idOf = (seed: string): ImageId => `sha256:${createHash('sha256').update(seed).digest('hex')}` as ImageId;
