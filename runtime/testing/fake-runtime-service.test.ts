import { describe, expect, it, onTestFinished } from 'vitest';
import { RuntimeError } from '../cri/errors.ts';
import type { ContainerEvent } from '../cri/types.ts';
import { runtimeConformance } from './conformance.ts';
import { FakeRuntimeService } from './fake-runtime-service.ts';

runtimeConformance(
  'FakeRuntimeService',
  async () => ({
    runtime: new FakeRuntimeService({ images: { busybox: { cmd: ['sh'] } } }),
    image: 'busybox',
    cleanup: async () => {},
  }),
  { eventLatencyMs: 100 },
);

describe('FakeRuntimeService', () => {
  const config = { name: 'c1', image: 'busybox', command: ['sleep', '3600'] };

  it('records calls in order', async () => {
    const rt = new FakeRuntimeService();
    const id = await rt.createContainer(config);
    await rt.startContainer(id);
    await rt.listContainers();
    expect(rt.calls).toEqual(['createContainer', 'startContainer', 'listContainers']);
    expect(rt.containers.size).toBe(1);
  });

  it('fails the next call of a method with an injected error, once', async () => {
    const rt = new FakeRuntimeService();
    rt.injectError('createContainer', new RuntimeError('Unavailable', 'boom'));
    await expect(rt.createContainer(config)).rejects.toThrow('boom');
    await expect(rt.createContainer(config)).resolves.toMatch(/^[0-9a-f]{64}$/);
  });

  it('accepts any image without an image list, and only listed images with one', async () => {
    await expect(new FakeRuntimeService().createContainer({ ...config, image: 'nginx:1' })).resolves.toBeTruthy();
    await expect(new FakeRuntimeService({ images: {} }).createContainer(config)).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('simulates an OOM kill: oom then exited events, reason OOMKilled', async () => {
    const rt = new FakeRuntimeService();
    const ac = new AbortController();
    onTestFinished(() => ac.abort());
    const events = rt.events({ signal: ac.signal })[Symbol.asyncIterator]();
    const id = await rt.createContainer(config);
    await rt.startContainer(id);
    rt.simulateExit(id, 137, { oom: true });
    const types: string[] = [];
    for (let i = 0; i < 4; i++) types.push(((await events.next()).value as ContainerEvent).type);
    expect(types).toEqual(['created', 'started', 'oom', 'exited']);
    expect(await rt.containerStatus(id)).toMatchObject({ state: 'exited', exitCode: 137, reason: 'OOMKilled' });
  });

  it('simulates a kill and a delete behind its back as exits, and a vanished container as removed', async () => {
    const rt = new FakeRuntimeService();
    const a = await rt.createContainer({ ...config, name: 'a' });
    const b = await rt.createContainer({ ...config, name: 'b' });
    const c = await rt.createContainer({ ...config, name: 'c' });
    for (const id of [a, b, c]) await rt.startContainer(id);
    rt.simulateKill(a);
    rt.simulateExternalDelete(b);
    rt.simulateVanish(c);
    await new Promise((r) => setImmediate(r));
    expect(await rt.containerStatus(a)).toMatchObject({ state: 'exited', exitCode: 137 });
    expect(await rt.containerStatus(b)).toMatchObject({ state: 'exited', exitCode: 137 });
    await expect(rt.containerStatus(c)).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('runs the command of the image when the config gives none, and a daemon-like program until SIGTERM', async () => {
    const rt = new FakeRuntimeService({ images: { web: { entrypoint: ['nginx'], cmd: ['-g', 'daemon off;'] } } });
    const id = await rt.createContainer({ name: 'web', image: 'web' });
    expect(rt.containers.get(id)!.args).toEqual(['nginx', '-g', 'daemon off;']);
    await rt.startContainer(id);
    await rt.stopContainer(id, 5);
    expect((await rt.containerStatus(id)).exitCode).toBe(143);
  });
});
