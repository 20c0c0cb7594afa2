import { describe, expect, it } from 'vitest';
import type { Container, Image } from '../../api/types/index.ts';
import { isStopped, prunableImages, pruneWarning } from './prune.ts';

const ctr = (image: string, status: Container['status'] = {}, state?: 'Running' | 'Stopped') => ({ metadata: { name: 'c' }, spec: { image, ...(state ? { state } : {}) }, status }) as Container;
const img = (name: string, tags: string[] | undefined, phase = 'Ready') => ({ metadata: { name }, spec: { source: {}, ...(tags ? { tags } : {}) }, status: { phase } }) as Image;

describe('system prune', () => {
  it.each([
    [{ phase: 'Running' }, undefined, false],
    [{ phase: 'Paused' }, undefined, false],
    [{ phase: 'Exited' }, undefined, true],
    [{ phase: 'Created' }, undefined, true],
    [{ phase: 'Exited', reason: 'BackOff' }, 'Running', false],
    [{ phase: 'Exited', reason: 'BackOff' }, 'Stopped', true],
  ] as const)('a container with status %j and state %s is stopped: %s', (status, state, want) => {
    expect(isStopped(ctr('busybox', status, state))).toBe(want);
  });

  it('removes dangling images, and with -a every image no container uses', () => {
    const images = [img('busybox', ['busybox:latest']), img('app', ['app:1']), img('broken', ['x:1'], 'Failed'), img('untagged', [])];
    const containers = [ctr('docker.io/library/busybox')];
    expect(prunableImages(images, containers, false).map((i) => i.metadata.name)).toEqual(['broken', 'untagged']);
    expect(prunableImages(images, containers, true).map((i) => i.metadata.name)).toEqual(['app', 'broken', 'untagged']);
  });

  it('warns as Docker does', () => {
    expect(pruneWarning(false, true)).toBe('WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all volumes not used by at least one container\n  - all dangling images\n\nAre you sure you want to continue?');
  });
});
