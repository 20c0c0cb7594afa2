import { describe, expect, it } from 'vitest';
import { decodeProtobufObject } from './protobuf.ts';

/** A minimal protobuf encoder for the test: fields are [number, string | Buffer]. */
const varint = (n: number): Buffer => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return Buffer.from(out);
};
const msg = (...fields: [number, string | Buffer][]): Buffer =>
  Buffer.concat(
    fields.map(([no, v]) => {
      const bytes = typeof v === 'string' ? Buffer.from(v) : v;
      return Buffer.concat([varint((no << 3) | 2), varint(bytes.length), bytes]);
    }),
  );
const envelope = (apiVersion: string, kind: string, raw: Buffer) =>
  Buffer.concat([Buffer.from('k8s\0', 'binary'), msg([1, msg([1, apiVersion], [2, kind])], [2, raw], [4, 'application/vnd.kubernetes.protobuf'])]);

describe('decodeProtobufObject', () => {
  it('decodes a Namespace as kubectl create namespace sends it', () => {
    const meta = msg([1, 'team-a'], [11, msg([1, 'env'], [2, 'prod'])], [12, msg([1, 'note'], [2, 'hi'])]);
    const obj = decodeProtobufObject(envelope('v1', 'Namespace', msg([1, meta], [2, Buffer.alloc(0)])));
    expect(obj).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { env: 'prod' }, annotations: { note: 'hi' } } });
  });

  it.each([
    ['a body without the magic prefix', Buffer.from('{"kind":"Namespace"}')],
    ['a truncated message', Buffer.concat([Buffer.from('k8s\0', 'binary'), Buffer.from([0x0a, 0x20, 0x01])])],
  ])('refuses %s with 400', (_name, body) => {
    expect(() => decodeProtobufObject(body)).toThrow(expect.objectContaining({ code: 400 }));
  });

  it('refuses kinds it does not decode with 415', () => {
    expect(() => decodeProtobufObject(envelope('v1', 'ConfigMap', msg([1, msg([1, 'x'])])))).toThrow(expect.objectContaining({ code: 415 }));
  });
});
