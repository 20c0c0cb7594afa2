import { describe, expect, it } from 'vitest';
import type { ContainerConfig, ContainerId } from '../cri/types.ts';
import { FakeRuntimeService } from './fake-runtime-service.ts';

const owner = (name: string) => ({ 'berth.dev/namespace': 'default', 'berth.dev/name': name, 'berth.dev/node': 'n1' });
const config = (name: string, gen = 1): ContainerConfig => ({ name: `default_${name}_${gen}`, image: 'busybox', command: ['sleep', '3600'], labels: owner(name) });
const ids = async (rt: FakeRuntimeService, labels: Record<string, string>) => (await rt.listContainers({ labels })).map((c) => c.id);

describe('FakeRuntimeService listing', () => {
  it('lists one owner\'s containers among many, oldest first, through create, remove and vanish', async () => {
    const rt = new FakeRuntimeService();
    const byOwner = new Map<string, ContainerId[]>();
    for (let i = 0; i < 200; i++) {
      const name = `c${i % 50}`;
      byOwner.set(name, [...(byOwner.get(name) ?? []), await rt.createContainer(config(name, i))]);
    }
    expect(await ids(rt, owner('c7'))).toEqual(byOwner.get('c7'));
    expect(await ids(rt, { 'berth.dev/node': 'n1' })).toHaveLength(200);

    const [first, second, third, fourth] = byOwner.get('c7')!;
    await rt.removeContainer(first!);
    rt.simulateVanish(third!);
    expect(await ids(rt, owner('c7'))).toEqual([second, fourth]);
    expect(await ids(rt, { 'berth.dev/node': 'n1' })).toHaveLength(198);
    expect((await rt.listContainers()).map((c) => c.id)).toEqual([...rt.containers.keys()]);
  });

  it('lists a container with its state and labels as they are now, filtered by state too', async () => {
    const rt = new FakeRuntimeService();
    const a = await rt.createContainer(config('web'));
    const b = await rt.createContainer(config('web', 2));
    await rt.startContainer(b);
    expect(await rt.listContainers({ labels: owner('web'), state: 'running' })).toEqual([
      expect.objectContaining({ id: b, name: 'default_web_2', state: 'running', labels: owner('web'), annotations: {} }),
    ]);
    expect((await rt.listContainers({ labels: owner('web'), state: 'created' })).map((c) => c.id)).toEqual([a]);
    expect(await rt.listContainers({ id: a, labels: owner('db') })).toEqual([]);
  });

  it('refuses a second live container of a name, and accepts the name again once the first exited or was removed', async () => {
    const rt = new FakeRuntimeService();
    const a = await rt.createContainer(config('web'));
    await expect(rt.createContainer(config('web'))).rejects.toMatchObject({ code: 'AlreadyExists' });
    await rt.stopContainer(a, 0);
    const b = await rt.createContainer(config('web'));
    await rt.removeContainer(a);
    await rt.removeContainer(b);
    await expect(rt.createContainer(config('web'))).resolves.toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps the latest calls, at most twice callLogLimit, in order', async () => {
    const rt = new FakeRuntimeService({ callLogLimit: 10 });
    for (let i = 0; i < 100; i++) await rt.version();
    await rt.listContainers();
    expect(rt.calls.length).toBeGreaterThanOrEqual(10);
    expect(rt.calls.length).toBeLessThanOrEqual(20);
    expect(rt.calls.at(-1)).toBe('listContainers');
    expect(rt.calls.slice(0, -1).every((m) => m === 'version')).toBe(true);
  });
});
