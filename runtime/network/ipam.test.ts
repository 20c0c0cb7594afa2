import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import { Ipam } from './ipam.ts';

async function tempFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bt8-ipam-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'ipam.json');
}

describe('Ipam', () => {
  it('hands out addresses after the gateway, one per owner, and the same one again to the same owner', async () => {
    const ipam = await Ipam.open(await tempFile());
    await ipam.ensurePool('default/a', '10.208.1.0/24', '10.208.1.1');
    expect(await ipam.allocate('default/a', 'c1')).toBe('10.208.1.2');
    expect(await ipam.allocate('default/a', 'c2')).toBe('10.208.1.3');
    expect(await ipam.allocate('default/a', 'c1')).toBe('10.208.1.2');
  });

  it('keeps allocations across a restart and never hands out an address twice', async () => {
    const path = await tempFile();
    const first = await Ipam.open(path);
    await first.ensurePool('n', '10.208.2.0/24', '10.208.2.1');
    const a = await first.allocate('n', 'c1');
    const b = await first.allocate('n', 'c2');
    await first.releaseOwner('c1');

    const second = await Ipam.open(path);
    expect(second.allocations('n')).toEqual({ [b]: 'c2' });
    const c = await second.allocate('n', 'c3');
    expect([a, b]).not.toContain(c); // round-robin: the released one is not reused at once
    expect(JSON.parse(await readFile(path, 'utf8')).pools.n.allocations).toEqual({ [b]: 'c2', [c]: 'c3' });
  });

  it('rejects with Unavailable when the subnet is full, and reuses a released address then', async () => {
    const ipam = await Ipam.open(await tempFile());
    await ipam.ensurePool('n', '10.208.3.0/30', '10.208.3.1'); // hosts .1 (gateway) and .2
    expect(await ipam.allocate('n', 'c1')).toBe('10.208.3.2');
    const err = await ipam.allocate('n', 'c2').catch((e: unknown) => e);
    expect(isRuntimeError(err, 'Unavailable')).toBe(true);
    await ipam.releaseOwner('c1');
    expect(await ipam.allocate('n', 'c2')).toBe('10.208.3.2');
  });

  const requested = [
    { name: 'a free address in the subnet is given as asked', ip: '10.208.4.50', want: '10.208.4.50' },
    { name: 'an address outside the subnet is InvalidArgument', ip: '10.208.5.5', code: 'InvalidArgument' as const },
    { name: 'the gateway is FailedPrecondition', ip: '10.208.4.1', code: 'FailedPrecondition' as const },
    { name: "another owner's address is FailedPrecondition", ip: '10.208.4.2', code: 'FailedPrecondition' as const },
  ];
  it.each(requested)('fixed addresses: $name', async ({ ip, want, code }) => {
    const ipam = await Ipam.open(await tempFile());
    await ipam.ensurePool('n', '10.208.4.0/24', '10.208.4.1');
    await ipam.allocate('n', 'other'); // takes .2
    const got = await ipam.allocate('n', 'me', ip).catch((e: unknown) => e);
    if (code) expect(isRuntimeError(got, code)).toBe(true);
    else expect(got).toBe(want);
  });

  it('refuses to change the subnet of a pool with allocations, and allows it once empty', async () => {
    const ipam = await Ipam.open(await tempFile());
    await ipam.ensurePool('n', '10.208.6.0/24', '10.208.6.1');
    await ipam.allocate('n', 'c1');
    const err = await ipam.ensurePool('n', '10.208.7.0/24', '10.208.7.1').catch((e: unknown) => e);
    expect(isRuntimeError(err, 'FailedPrecondition')).toBe(true);
    await ipam.releaseOwner('c1');
    await ipam.ensurePool('n', '10.208.7.0/24', '10.208.7.1');
    expect(await ipam.allocate('n', 'c1')).toBe('10.208.7.2');
  });
});
