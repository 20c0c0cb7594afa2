/**
 * The image and objects of the container benchmarks: the busybox test fixture
 * (`test/fixtures/busybox-image.ts`) as an OCI layout for berth and as a plain root
 * filesystem for raw runc and podman, the `Image` that imports it, and the Containers.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildBusyboxImage } from '../test/fixtures/busybox-image.ts';
import { ApiClient } from './api-client.ts';
import { BENCH_NAMESPACE } from './fixtures.ts';
import { sleep } from './stats.ts';

/** The fixture on disk. */
export interface BusyboxFixture {
  /** OCI image layout directory (what the `Image` imports). */
  readonly layoutDir: string;
  /** The image's single layer unpacked: bin/busybox, applet links, etc/passwd, … */
  readonly rootfsDir: string;
}

/** Builds the busybox fixture under `dir` and unpacks its layer into `<dir>/rootfs`. */
export async function buildFixture(dir: string): Promise<BusyboxFixture> {
  const image = await buildBusyboxImage(dir);
  const rootfsDir = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfsDir, { recursive: true });
  const layer = path.join(image.layoutDir, 'blobs', 'sha256', image.layerDigest.slice('sha256:'.length));
  execFileSync('tar', ['-C', rootfsDir, '--numeric-owner', '-xzf', layer]);
  return { layoutDir: image.layoutDir, rootfsDir };
}

export const imagesPath = (namespace: string): string => `/apis/berth.dev/v1/namespaces/${namespace}/images`;

/**
 * Creates the `Image` `busybox` (tag `busybox:latest`) importing `layoutDir` and waits
 * until it is `Ready`. Rejects after `timeoutMs` with the Image's last status.
 */
export async function importImage(client: ApiClient, layoutDir: string, timeoutMs = 60_000): Promise<void> {
  const body = {
    apiVersion: 'berth.dev/v1',
    kind: 'Image',
    metadata: { name: 'busybox' },
    spec: { source: { import: { path: layoutDir } }, tags: ['busybox:latest'] },
  };
  await client.expectOk('POST', imagesPath(BENCH_NAMESPACE), { body: JSON.stringify(body) });
  const deadline = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < deadline) {
    const img = JSON.parse((await client.expectOk('GET', `${imagesPath(BENCH_NAMESPACE)}/busybox`)).body) as { status?: { phase?: string } };
    if (img.status?.phase === 'Ready') return;
    last = JSON.stringify(img.status ?? {});
    await sleep(100);
  }
  throw new Error(`Image busybox not Ready after ${timeoutMs} ms: ${last}`);
}

/**
 * A Container of the `busybox` image running `command`. The grace period is 0 so that
 * deleting a `sleep` (PID 1 of its namespace ignores SIGTERM) does not wait 10 s. Its
 * network is `none` (a namespace with loopback only), as the baselines' are: `runc run`
 * of the default spec and `podman run --network none`; `network: 'default'` joins
 * berth's default bridge network instead, as a plain `docker run` does.
 */
export function benchContainer(
  name: string, command: readonly string[], restartPolicy: 'Always' | 'Never' = 'Always', network: 'none' | 'default' = 'none',
): Record<string, unknown> {
  return {
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: { name, labels: { app: 'bench-containers' } },
    spec: { image: 'busybox', command, restartPolicy, stopGracePeriodSeconds: 0, ...(network === 'none' ? { networks: [{ name: 'none' }] } : {}) },
  };
}
