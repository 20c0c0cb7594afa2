import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.ts';
import { applyJsonPatch, applyMergePatch, PATCH_TYPES } from './patch.ts';

/** Freezes a value deeply, so that any mutation by the code under test throws. */
function frozen<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) frozen(x);
    Object.freeze(v);
  }
  return v;
}

function thrown(f: () => unknown): ApiError {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

describe('applyMergePatch', () => {
  // RFC 7386, Appendix A.
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('RFC 7386 A: %j patched with %j is %j', (target, patch, want) => {
    expect(applyMergePatch(frozen(target), frozen(patch))).toEqual(want);
  });

  it('merges the RFC 7386 section 3 example', () => {
    const target = { title: 'Goodbye!', author: { givenName: 'John', familyName: 'Doe' }, tags: ['example', 'sample'], content: 'This will be unchanged' };
    const patch = { title: 'Hello!', phoneNumber: '+01-123-456-7890', author: { familyName: null }, tags: ['example'] };
    expect(applyMergePatch(frozen(target), frozen(patch))).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });

  it('deletes a field kubectl apply sends as null and replaces lists whole', () => {
    const live = { spec: { image: 'a', command: ['sh'], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] } };
    expect(applyMergePatch(frozen(live), frozen({ spec: { command: null, env: [{ name: 'A', value: '3' }] } }))).toEqual({
      spec: { image: 'a', env: [{ name: 'A', value: '3' }] },
    });
  });

  it('returns a result that shares nothing with the patch', () => {
    const patch = { spec: { list: [{ a: 1 }], obj: { b: 2 } } };
    const out = applyMergePatch({}, patch) as { spec: { list: { a: number }[]; obj: { b: number } } };
    out.spec.list[0]!.a = 9;
    out.spec.obj.b = 9;
    expect(patch).toEqual({ spec: { list: [{ a: 1 }], obj: { b: 2 } } });
  });

  it('treats __proto__ as an ordinary key', () => {
    const patch = JSON.parse('{"__proto__":{"polluted":true}}') as unknown;
    const out = applyMergePatch({}, patch) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('applyJsonPatch', () => {
  // RFC 6902, Appendix A (the successful ones).
  it.each([
    ['adds an object member', { foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }], { baz: 'qux', foo: 'bar' }],
    ['adds an array element', { foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }], { foo: ['bar', 'qux', 'baz'] }],
    ['removes an object member', { baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }], { foo: 'bar' }],
    ['removes an array element', { foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }], { foo: ['bar', 'baz'] }],
    ['replaces a value', { baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }], { baz: 'boo', foo: 'bar' }],
    [
      'moves a value',
      { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } },
      [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }],
      { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } },
    ],
    ['moves an array element', { foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }], { foo: ['all', 'cows', 'eat', 'grass'] }],
    [
      'passes a test',
      { baz: 'qux', foo: ['a', 2, 'c'] },
      [
        { op: 'test', path: '/baz', value: 'qux' },
        { op: 'test', path: '/foo/1', value: 2 },
      ],
      { baz: 'qux', foo: ['a', 2, 'c'] },
    ],
    ['adds a nested member object', { foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }], { foo: 'bar', child: { grandchild: {} } }],
    ['ignores unknown members of an operation', { foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }], { foo: 'bar', baz: 'qux' }],
    ['handles ~0 and ~1 escapes', { '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }, { op: 'replace', path: '/~1', value: 1 }], { '/': 1, '~1': 10 }],
    ['adds an array value', { foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], { foo: ['bar', ['abc', 'def']] }],
    ['copies a value', { a: { b: 1 } }, [{ op: 'copy', from: '/a', path: '/c' }], { a: { b: 1 }, c: { b: 1 } }],
    ['replaces the whole document', { a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }], { b: 2 }],
    ['applies an empty patch', { a: 1 }, [], { a: 1 }],
  ])('%s', (_name, target, ops, want) => {
    expect(applyJsonPatch(frozen(target), frozen(ops))).toEqual(want);
  });

  it.each([
    ['a failed test', { baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }], 'json patch operation 0 (test /baz) failed: test failed: the value at "/baz" is not the expected value'],
    ['removing a missing member', { a: 1 }, [{ op: 'remove', path: '/spec/image' }], 'json patch operation 0 (remove /spec/image) failed: path "/spec/image" does not exist'],
    ['replacing a missing member', { a: 1 }, [{ op: 'add', path: '/b', value: 1 }, { op: 'replace', path: '/c', value: 1 }], 'json patch operation 1 (replace /c) failed: path "/c" does not exist'],
    ['adding under a missing parent', { foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }], 'json patch operation 0 (add /baz/bat) failed: cannot add at "/baz/bat": its parent does not exist'],
    ['adding past the end of an array', { foo: [1] }, [{ op: 'add', path: '/foo/5', value: 2 }], 'json patch operation 0 (add /foo/5) failed: "/foo/5" is out of the array\'s bounds'],
    ['copying from a missing member', { a: 1 }, [{ op: 'copy', from: '/x', path: '/y' }], 'json patch operation 0 (copy /y) failed: from "/x" does not exist'],
    ['moving a value into its own child', { a: { b: 1 } }, [{ op: 'move', from: '/a', path: '/a/b/c' }], 'json patch operation 0 (move /a/b/c): cannot move "/a" into one of its own children'],
  ])('rejects %s with 422 naming the operation', (_name, target, ops, detail) => {
    const e = thrown(() => applyJsonPatch(frozen(target), frozen(ops)));
    expect(e.code).toBe(422);
    expect(e.reason).toBe('Invalid');
    expect(e.message).toBe(`the server rejected our request due to an error in our request: ${detail}`);
    expect(e.details?.causes).toEqual([{ type: 'UnexpectedServerResponse', message: detail }]);
  });

  it.each([
    ['an object instead of a list', { op: 'add', path: '/a', value: 1 }, 'invalid JSON patch: the patch document must be an array of operations'],
    ['a non-object operation', ['add'], 'invalid JSON patch: operation 0: must be an object'],
    ['an unknown op', [{ op: 'merge', path: '/a' }], 'invalid JSON patch: operation 0: unknown op "merge"; must be one of add, remove, replace, move, copy, test'],
    ['a missing op', [{ path: '/a' }], 'invalid JSON patch: operation 0: unknown op null; must be one of add, remove, replace, move, copy, test'],
    ['a missing path', [{ op: 'remove' }], 'invalid JSON patch: operation 0 (remove): missing "path"'],
    ['a path without a leading slash', [{ op: 'remove', path: 'a' }], 'invalid JSON patch: operation 0 (remove): invalid path "a": must be a JSON pointer such as "/spec/image"'],
    ['a bad ~ escape', [{ op: 'remove', path: '/a~2' }], 'invalid JSON patch: operation 0 (remove): invalid path "/a~2": must be a JSON pointer such as "/spec/image"'],
    ['a missing value', [{ op: 'test', path: '/a' }, { op: 'add', path: '/b' }], 'invalid JSON patch: operation 0 (test /a): missing "value"'],
    ['a missing from', [{ op: 'move', path: '/a' }], 'invalid JSON patch: operation 0 (move /a): missing "from"'],
    ['a bad from', [{ op: 'copy', from: 'x', path: '/a' }], 'invalid JSON patch: operation 0 (copy /a): invalid from "x": must be a JSON pointer'],
  ])('rejects %s with 400', (_name, ops, message) => {
    const e = thrown(() => applyJsonPatch({ a: 1 }, ops));
    expect(e.code).toBe(400);
    expect(e.reason).toBe('BadRequest');
    expect(e.message).toBe(message);
  });

  it('applies all operations or none, leaving the target as it was', () => {
    const target = { spec: { image: 'a', env: [] as unknown[] } };
    expect(() =>
      applyJsonPatch(target, [
        { op: 'replace', path: '/spec/image', value: 'b' },
        { op: 'add', path: '/spec/env/-', value: { name: 'X' } },
        { op: 'test', path: '/spec/image', value: 'a' },
      ]),
    ).toThrow(ApiError);
    expect(target).toEqual({ spec: { image: 'a', env: [] } });
  });

  it('returns a result that shares nothing with the operations', () => {
    const ops = [{ op: 'add', path: '/x', value: { deep: [1] } }];
    const out = applyJsonPatch({}, ops) as { x: { deep: number[] } };
    out.x.deep.push(2);
    expect(ops[0]!.value).toEqual({ deep: [1] });
  });
});

describe('PATCH_TYPES', () => {
  it('lists the accepted media types in the order kube-apiserver names them', () => {
    expect(PATCH_TYPES).toEqual(['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml']);
  });
});
