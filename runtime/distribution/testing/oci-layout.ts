/**
 * OCI image layouts for distribution tests and benchmarks, written as
 * `skopeo copy oci:<dir>:<tag>` reads them: images of any number of layers
 * (each layer a tar of the given files, gzip or not), and multi-platform
 * indexes.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MEDIA_TYPE, type Descriptor, type Platform } from '../../images/oci.ts';
import { tarToBuffer } from '../../images/tar/writer.ts';
import type { Digest } from '../../images/digest.ts';

export interface LayerSpec {
  /** Path in the layer → content. */
  readonly files: Readonly<Record<string, Buffer>>;
  /** Default true. */
  readonly gzip?: boolean;
}

export interface ImageSpec {
  readonly layers: readonly LayerSpec[];
  /** Default linux/amd64. */
  readonly platform?: Platform;
  readonly cmd?: readonly string[];
}

export interface WrittenImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

const sha256 = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

/** An OCI image layout directory being filled. */
export class OciLayoutWriter {
  private readonly refs: { descriptor: Descriptor; tag: string }[] = [];

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  }

  /** Writes a blob; returns its descriptor. */
  blob(mediaType: string, bytes: Buffer, platform?: Platform): Descriptor {
    const digest = sha256(bytes);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length, ...(platform && { platform }) };
  }

  /** Writes an image (layers, config, manifest); returns its descriptors. */
  async image(spec: ImageSpec): Promise<WrittenImage> {
    const platform = spec.platform ?? { os: 'linux', architecture: 'amd64' };
    const layers: Descriptor[] = [];
    const diffIds: Digest[] = [];
    for (const l of spec.layers) {
      const names = Object.keys(l.files).sort();
      const tar = await tarToBuffer(names.map((n) => ({ header: { name: n, type: 'file' as const, mode: 0o644, size: l.files[n]!.length }, body: l.files[n]! })));
      diffIds.push(sha256(tar));
      const gz = l.gzip ?? true;
      layers.push(this.blob(gz ? MEDIA_TYPE.ociLayerGzip : MEDIA_TYPE.ociLayer, gz ? gzipSync(tar) : tar));
    }
    const config = this.blob(MEDIA_TYPE.ociConfig, json({
      architecture: platform.architecture, os: platform.os, ...(platform.variant && { variant: platform.variant }),
      created: '1970-01-01T00:00:00Z',
      config: { Cmd: spec.cmd ?? ['sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }));
    const manifest = this.blob(MEDIA_TYPE.ociManifest, json({
      schemaVersion: 2, mediaType: MEDIA_TYPE.ociManifest,
      config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }), platform);
    return { manifest, config, layers };
  }

  /** Writes an OCI index of `manifests` (descriptors with platforms). */
  index(manifests: readonly Descriptor[]): Descriptor {
    return this.blob(MEDIA_TYPE.ociIndex, json({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests }));
  }

  /** Names a manifest or index `tag` in index.json and writes index.json. */
  tag(descriptor: Descriptor, tag: string): void {
    this.refs.push({ descriptor, tag });
    writeFileSync(join(this.dir, 'index.json'), json({
      schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex,
      manifests: this.refs.map((r) => ({
        mediaType: r.descriptor.mediaType, digest: r.descriptor.digest, size: r.descriptor.size,
        annotations: { 'org.opencontainers.image.ref.name': r.tag },
      })),
    }));
  }

  /** A stored blob's bytes. */
  read(digest: string): Buffer {
    return readFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)));
  }
}
