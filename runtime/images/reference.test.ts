import { describe, expect, it } from 'vitest';
import { isRuntimeError } from '../cri/errors.ts';
import { familiarString, normalizeReference, parseReference } from './reference.ts';

const D64 = 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';
const H64 = '3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6';

// Cases mirror github.com/distribution/reference normalize_test.go and reference_test.go.
const valid: { name: string; input: string; want: string }[] = [
  { name: 'official image gets library/ and latest', input: 'busybox', want: 'docker.io/library/busybox:latest' },
  { name: 'user image gets latest', input: 'user/app', want: 'docker.io/user/app:latest' },
  { name: 'explicit tag is kept', input: 'busybox:1.36', want: 'docker.io/library/busybox:1.36' },
  { name: 'uppercase tag is allowed', input: 'lowercase:Uppercase', want: 'docker.io/library/lowercase:Uppercase' },
  { name: 'docker.io without library gets it', input: 'docker.io/ubuntu', want: 'docker.io/library/ubuntu:latest' },
  { name: 'index.docker.io becomes docker.io', input: 'index.docker.io/library/ubuntu', want: 'docker.io/library/ubuntu:latest' },
  { name: 'library/ prefix without domain', input: 'library/ubuntu', want: 'docker.io/library/ubuntu:latest' },
  { name: 'host with port', input: '127.0.0.1:5000/a/b:1.2', want: '127.0.0.1:5000/a/b:1.2' },
  { name: 'host with port, no tag', input: 'test:5000/repo', want: 'test:5000/repo:latest' },
  { name: 'localhost is a domain', input: 'localhost/x', want: 'localhost/x:latest' },
  { name: 'localhost with port', input: 'localhost:5000/foo/bar', want: 'localhost:5000/foo/bar:latest' },
  { name: 'dotted first component is a domain', input: 'test.com/repo:tag', want: 'test.com/repo:tag' },
  { name: 'name that looks like host:port is name:tag', input: 'test.com:5000', want: 'docker.io/library/test.com:5000' },
  { name: 'underscore domain-looking name stays a name', input: 'foo_bar.com:8080', want: 'docker.io/library/foo_bar.com:8080' },
  { name: 'undotted first component is a namespace', input: 'foo/foo_bar.com:8080', want: 'docker.io/foo/foo_bar.com:8080' },
  { name: 'deep path', input: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag', want: 'sub-dom1.foo.com/bar/baz/quux:some-long-tag' },
  { name: 'dots in path and tag', input: 'b.gcr.io/test.example.com/my-app:test.example.com', want: 'b.gcr.io/test.example.com/my-app:test.example.com' },
  { name: 'punycode domain', input: 'xn--n3h.com/myimage:xn--n3h.com', want: 'xn--n3h.com/myimage:xn--n3h.com' },
  { name: 'IPv6 registry', input: '[2001:db8::1]:5000/repo:tag', want: '[2001:db8::1]:5000/repo:tag' },
  { name: 'separators: __, -- and .', input: 'a__b/c--d.e_f', want: 'docker.io/a__b/c--d.e_f:latest' },
  { name: 'digest only: no latest added', input: `busybox@sha256:${D64}`, want: `docker.io/library/busybox@sha256:${D64}` },
  { name: 'tag and digest both kept', input: `test:5000/repo:tag@sha256:${D64}`, want: `test:5000/repo:tag@sha256:${D64}` },
  { name: 'sha512 digest', input: `xn--7o8h.com/myimage@sha512:${'f'.repeat(128)}`, want: `xn--7o8h.com/myimage@sha512:${'f'.repeat(128)}` },
  { name: '64-hex with a tag is a name', input: `${H64}:1`, want: `docker.io/library/${H64}:1` },
  { name: 'uppercase domain stays a domain', input: 'Docker.io/library/x', want: 'Docker.io/library/x:latest' },
];

const rejected: { name: string; input: string; want: string }[] = [
  { name: 'empty', input: '', want: 'reference is empty' },
  { name: 'only a tag', input: ':justtag', want: 'repository name is empty' },
  { name: 'only a digest', input: `@sha256:${D64}`, want: 'repository name is empty' },
  { name: 'uppercase repository', input: 'Uppercase:tag', want: 'repository name "library/Uppercase" must be lowercase' },
  { name: 'uppercase path under a registry', input: 'test:5000/Uppercase/lowercase:tag', want: 'repository name "Uppercase/lowercase" must be lowercase' },
  { name: 'invalid characters in path', input: 'aa/asdf$$^/aa', want: 'invalid repository path component "asdf$$^"' },
  { name: 'leading separator in component', input: 'a/-b', want: 'invalid repository path component "-b"' },
  { name: 'empty path component', input: 'a//b', want: 'invalid repository path component ""' },
  { name: 'name too long', input: `${'a/'.repeat(128)}a:tag`, want: 'must not be more than 255 characters' },
  { name: 'invalid tag', input: 'busybox:-x', want: 'invalid tag "-x"' },
  { name: 'tag too long', input: `busybox:${'t'.repeat(129)}`, want: 'invalid tag' },
  { name: 'unknown digest algorithm', input: `validname@invaliddigest:${D64}`, want: 'unsupported digest algorithm "invaliddigest"' },
  { name: 'short sha256 digest', input: `busybox@sha256:${'f'.repeat(32)}`, want: 'want 64 lowercase hex characters' },
  { name: 'uppercase digest hex', input: `busybox@sha256:${D64.toUpperCase()}`, want: 'want 64 lowercase hex characters' },
  { name: 'malformed digest', input: 'busybox@sha256:xyz', want: 'invalid digest "sha256:xyz"' },
  { name: 'bare 64-hex identifier', input: H64, want: 'cannot specify 64-byte hexadecimal strings' },
  { name: 'bad registry host', input: '-bad.com:5000/repo', want: 'invalid registry host "-bad.com:5000"' },
  { name: 'non-numeric port', input: 'localhost:abc/repo', want: 'invalid registry host "localhost:abc"' },
  { name: 'registry without repository', input: 'localhost:5000/', want: 'repository path is empty' },
];

describe('normalizeReference', () => {
  it.each(valid)('normalises $name: $input', ({ input, want }) => {
    expect(normalizeReference(input)).toBe(want);
  });

  it.each(rejected)('rejects $name with InvalidArgument naming the bad part', ({ input, want }) => {
    let err: unknown;
    try {
      normalizeReference(input);
    } catch (e) {
      err = e;
    }
    expect(isRuntimeError(err, 'InvalidArgument')).toBe(true);
    expect((err as Error).message).toContain(want);
    expect((err as Error).message).toContain(`invalid reference ${JSON.stringify(input)}`);
  });
});

describe('parseReference', () => {
  it('splits domain, path, tag and digest', () => {
    expect(parseReference(`127.0.0.1:5000/a/b:1.2@sha256:${D64}`)).toEqual({
      domain: '127.0.0.1:5000', path: 'a/b', tag: '1.2', digest: `sha256:${D64}`,
    });
  });

  it('leaves the tag out when none is written', () => {
    expect(parseReference('busybox')).toEqual({ domain: 'docker.io', path: 'library/busybox' });
  });
});

describe('familiarString', () => {
  it.each([
    { input: 'busybox', want: 'busybox' },
    { input: 'docker.io/library/busybox:1', want: 'busybox:1' },
    { input: 'user/app:2', want: 'user/app:2' },
    { input: 'library/a/b', want: 'library/a/b' },
    { input: '127.0.0.1:5000/a/b:1.2', want: '127.0.0.1:5000/a/b:1.2' },
  ])('prints $input as $want', ({ input, want }) => {
    expect(familiarString(parseReference(input))).toBe(want);
  });
});
