import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseScopes, TokenSigner, type RegistryTokenClaims } from './token.ts';

describe('parseScopes', () => {
  it.each([
    { name: 'one repository scope', in: ['repository:team/app:pull,push'], want: [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }] },
    { name: 'several scopes in one parameter', in: ['repository:a:pull registry:catalog:*'], want: [{ type: 'repository', name: 'a', actions: ['pull'] }, { type: 'registry', name: 'catalog', actions: ['*'] }] },
    { name: 'a name with a port', in: ['repository:host:5000/a:pull'], want: [{ type: 'repository', name: 'host:5000/a', actions: ['pull'] }] },
    { name: 'a resource class', in: ['repository(plugin):a:pull'], want: [{ type: 'repository', name: 'a', actions: ['pull'] }] },
    { name: 'malformed scopes, skipped', in: ['nonsense', 'repository::pull', 'repository:a:'], want: [] },
  ])('parses $name', ({ in: input, want }) => {
    expect(parseScopes(input)).toEqual(want);
  });
});

describe('TokenSigner', () => {
  const claims = (nowS: number): RegistryTokenClaims => ({
    iss: 'berth', sub: 'admin', aud: 'berth', iat: nowS, nbf: nowS, exp: nowS + 300, jti: 'j', groups: ['system:masters'],
    access: [{ type: 'repository', name: 'a', actions: ['pull'] }],
  });

  it('verifies its own tokens until they expire, and only for their audience', () => {
    const s = TokenSigner.fromKey(randomBytes(32));
    const t = s.sign(claims(1_000));
    expect(s.verify(t, 'berth', 1_000_000)?.access).toEqual([{ type: 'repository', name: 'a', actions: ['pull'] }]);
    expect(s.verify(t, 'berth', 1_300_000)).toBeUndefined();
    expect(s.verify(t, 'other', 1_000_000)).toBeUndefined();
  });

  it.each([
    { name: 'another key', token: (t: string) => TokenSigner.fromKey(randomBytes(32)).sign(JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString())) },
    { name: 'a changed payload', token: (t: string) => { const [h, , sig] = t.split('.'); return `${h}.${Buffer.from(JSON.stringify({ ...claims(1_000), sub: 'x' })).toString('base64url')}.${sig}`; } },
    { name: 'garbage', token: () => 'a.b.c' },
    { name: 'no signature', token: (t: string) => t.split('.').slice(0, 2).join('.') },
  ])('rejects a token signed with $name', ({ token }) => {
    const s = TokenSigner.fromKey(randomBytes(32));
    expect(s.verify(token(s.sign(claims(1_000))), 'berth', 1_000_000)).toBeUndefined();
  });

  it('keeps its key in a 0600 file, so tokens survive a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-token-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'registry', 'token.key');
    const t = (await TokenSigner.open(path)).sign(claims(1_000));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await TokenSigner.open(path)).verify(t, 'berth', 1_000_000)).toBeDefined();
  });
});
