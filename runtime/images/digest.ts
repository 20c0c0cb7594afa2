import { createHash, type Hash } from 'node:crypto';
import { RuntimeError } from '../cri/errors.ts';

/** A content digest, `sha256:<64 lowercase hex>`: the only algorithm the store accepts. */
export type Digest = string & { readonly __brand: 'Digest' };

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const ANY_ALGORITHM = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** True when `s` is a well-formed sha256 digest. */
export const isDigest = (s: unknown): s is Digest => typeof s === 'string' && SHA256.test(s);

/**
 * Returns `s` as a `Digest`. Rejects with `RuntimeError('InvalidArgument')` naming
 * `what` (e.g. `layer 0 of manifest sha256:…`) when it is malformed or not sha256.
 */
export function toDigest(s: unknown, what = 'digest'): Digest {
  if (isDigest(s)) return s;
  if (typeof s === 'string' && ANY_ALGORITHM.test(s) && !s.startsWith('sha256:'))
    throw new RuntimeError('InvalidArgument', `${what}: unsupported digest algorithm in "${s}" (only sha256)`);
  throw new RuntimeError('InvalidArgument', `${what}: invalid digest ${JSON.stringify(s)}`);
}

/** The 64 hex characters of a digest. */
export const digestHex = (d: Digest): string => d.slice('sha256:'.length);

/** sha256 of a buffer, as a `Digest`. */
export const sha256Of = (data: Uint8Array | string): Digest =>
  `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;

/** An incremental sha256 that also counts bytes. */
export class Digester {
  private readonly hash: Hash = createHash('sha256');
  /** Bytes seen so far. */
  bytes = 0;
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }
  /** Finishes the hash; call once. */
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}` as Digest;
  }
}
