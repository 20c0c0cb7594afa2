import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError } from '../cri/errors.ts';
import type { CallOptions, Image, ImageConfig, ImageId, ImageRef } from '../cri/types.ts';
import type { RootfsSource, RunnableImage } from '../images/rootfs-source.ts';

/** The reference the fixture answers to. */
export const BUSYBOX_REF = 'busybox:latest';

export const BUSYBOX_IMAGE_CONFIG: ImageConfig = {
  cmd: ['sh'],
  env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
};

export interface BusyboxRootfsOptions {
  /** Where Debian's busybox-static lives. */
  readonly busybox?: string;
}

/**
 * A temporary `RootfsSource` for runtime tests until the image store lands: one
 * layer with /bin/busybox and a symlink per applet, /etc/passwd and /etc/group
 * (root, nobody, and `app` 1000:1000), /tmp, in a fresh temporary directory.
 * Build it once per test file and `dispose()` it after all tests.
 *
 * Answers to {@link BUSYBOX_REF}, `busybox` and its image ID; anything else is
 * `NotFound`. Records pins so tests can check that containers release them.
 */
export class BusyboxRootfs implements RootfsSource {
  readonly dir: string;
  readonly layerDir: string;
  readonly image: Image;
  /** imageId → container IDs pinning it. */
  readonly pins = new Map<string, Set<string>>();

  constructor(opts: BusyboxRootfsOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'berth-rt-test-busybox-'));
    this.layerDir = join(this.dir, 'layer');
    const bin = join(this.layerDir, 'bin');
    for (const d of ['bin', 'etc', 'tmp', 'root', 'home/app', 'proc', 'sys', 'dev', 'usr/bin', 'usr/sbin', 'sbin']) {
      mkdirSync(join(this.layerDir, d), { recursive: true });
    }
    const busybox = opts.busybox ?? '/bin/busybox';
    copyFileSync(busybox, join(bin, 'busybox'));
    execFileSync('chmod', ['1777', join(this.layerDir, 'tmp')]);
    const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const a of applets) if (a !== 'busybox') symlinkSync('busybox', join(bin, a));
    writeFileSync(
      join(this.layerDir, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    );
    writeFileSync(join(this.layerDir, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\nnogroup:x:65534:\n');
    this.image = {
      id: 'sha256:b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0' as ImageId,
      repoTags: ['docker.io/library/busybox:latest'],
      repoDigests: [],
      sizeBytes: 2_000_000,
      config: BUSYBOX_IMAGE_CONFIG,
    };
  }

  async resolveForRun(ref: ImageRef, opts?: CallOptions): Promise<RunnableImage> {
    opts?.signal?.throwIfAborted();
    if (![BUSYBOX_REF, 'busybox', this.image.id, ...this.image.repoTags].includes(ref)) {
      throw new RuntimeError('NotFound', `image "${ref}" not found`);
    }
    return { image: this.image, layerDirs: [this.layerDir] };
  }

  async pin(imageId: string, containerId: string): Promise<void> {
    let s = this.pins.get(imageId);
    if (!s) this.pins.set(imageId, (s = new Set()));
    s.add(containerId);
  }

  async unpin(imageId: string, containerId: string): Promise<void> {
    this.pins.get(imageId)?.delete(containerId);
  }

  /** Deletes the layer directory. */
  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
