import { describe, expect, it } from 'vitest';
import { normalizeImageReference, sameImageReference } from './image-reference.ts';

describe('normalizeImageReference', () => {
  const cases: { name: string; in: string; want: string }[] = [
    { name: 'an official image without tag', in: 'busybox', want: 'docker.io/library/busybox:latest' },
    { name: 'an official image with tag', in: 'busybox:1.36', want: 'docker.io/library/busybox:1.36' },
    { name: 'a fully qualified reference', in: 'docker.io/library/busybox:latest', want: 'docker.io/library/busybox:latest' },
    { name: 'a user repository on Docker Hub', in: 'team/app', want: 'docker.io/team/app:latest' },
    { name: 'the legacy index domain', in: 'index.docker.io/library/busybox', want: 'docker.io/library/busybox:latest' },
    { name: 'a registry with port', in: '127.0.0.1:5000/team/app', want: '127.0.0.1:5000/team/app:latest' },
    { name: 'a registry with port and tag', in: '127.0.0.1:5000/team/app:1.2', want: '127.0.0.1:5000/team/app:1.2' },
    { name: 'localhost', in: 'localhost/app', want: 'localhost/app:latest' },
    { name: 'a digest reference (no tag added)', in: 'busybox@sha256:abc', want: 'docker.io/library/busybox@sha256:abc' },
    { name: 'tag and digest', in: 'busybox:1@sha256:abc', want: 'docker.io/library/busybox:1@sha256:abc' },
  ];
  it.each(cases)('normalises $name', ({ in: ref, want }) => expect(normalizeImageReference(ref)).toBe(want));

  it('treats busybox, busybox:latest and docker.io/library/busybox:latest as the same image', () => {
    expect(sameImageReference('busybox', 'busybox:latest')).toBe(true);
    expect(sameImageReference('busybox:latest', 'docker.io/library/busybox:latest')).toBe(true);
    expect(sameImageReference('busybox', 'busybox:1.36')).toBe(false);
  });
});
