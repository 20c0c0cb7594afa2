import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startControlPlane } from '../../test/harness/control-plane.ts';
import { connect } from './connection.ts';
import { pull } from './images.ts';

const REF = 'registry.example:5000/team/app:1';
const NAME = 'registry.example-5000-team-app-1';
const IMAGES = '/apis/berth.dev/v1/namespaces/default/images';
const SPEC = { source: { pull: { reference: REF } }, tags: [REF] };

/** A control plane without an agent: the test plays the Image controller. */
async function setUp() {
  const cp = await startControlPlane();
  const conn = connect({ kubeconfig: cp.server.kubeconfigPath, namespace: 'default' });
  onTestFinished(async () => {
    conn.close();
    await cp.stop();
  });
  const image = async () => (await cp.request('GET', `${IMAGES}/${NAME}`)).body;
  const setStatus = async (status: Record<string, unknown>) => {
    const cur = await image();
    const res = await cp.request('PUT', `${IMAGES}/${NAME}/status`, { body: { ...cur, status: { observedGeneration: cur.metadata.generation, ...status } } });
    expect(res.status).toBe(200);
  };
  return { cp, conn, image, setStatus };
}

describe('pull', () => {
  it('makes an Image that failed with the same spec anew, instead of reporting its old failure', async () => {
    const { cp, conn, image, setStatus } = await setUp();
    expect((await cp.request('POST', IMAGES, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: NAME }, spec: SPEC } })).status).toBe(201);
    await setStatus({ phase: 'Failed', message: 'manifest unknown' });
    const old = await image();

    let printed = '';
    const pulling = pull(conn, REF, (s) => (printed += s));
    await vi.waitFor(async () => expect((await image()).metadata.uid).not.toBe(old.metadata.uid), { timeout: 10_000 });
    const fresh = await image();
    expect(fresh.spec).toEqual(SPEC);
    expect(fresh.status?.phase).toBeUndefined();
    await setStatus({ phase: 'Ready', digest: 'sha256:1111111111111111111111111111111111111111111111111111111111111111', id: 'sha256:22' });
    await expect(pulling).resolves.toBe(0);
    expect(printed).toBe(`Digest: sha256:${'1'.repeat(64)}\nStatus: Downloaded image for ${REF}\n${REF}\n`);
  });

  it('keeps a Ready Image of the same spec, and updates a Failed one whose spec differs', async () => {
    const { cp, conn, image, setStatus } = await setUp();
    const other = { source: { pull: { reference: REF, credentialsSecret: 'gone' } }, tags: [REF] };
    expect((await cp.request('POST', IMAGES, { body: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name: NAME }, spec: other } })).status).toBe(201);
    await setStatus({ phase: 'Failed', message: 'secret gone' });
    const old = await image();
    const pulling = pull(conn, REF, () => {});
    await vi.waitFor(async () => expect((await image()).metadata.generation).toBe(2), { timeout: 10_000 });
    expect((await image()).metadata.uid).toBe(old.metadata.uid);
    await setStatus({ phase: 'Ready', digest: `sha256:${'3'.repeat(64)}` });
    await expect(pulling).resolves.toBe(0);

    // Ready with this spec: nothing to do, the same object.
    await expect(pull(conn, REF, () => {})).resolves.toBe(0);
    expect((await image()).metadata.uid).toBe(old.metadata.uid);
  });
});
