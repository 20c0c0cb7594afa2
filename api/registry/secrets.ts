/**
 * What the API server does to a core/v1 `Secret` on every write, as kube-apiserver
 * does: `stringData` is merged into `data` (base64) and never stored; `type`
 * defaults to `Opaque` and cannot change; an `immutable` secret keeps its data;
 * data keys are checked; a `kubernetes.io/dockerconfigjson` secret must carry a
 * JSON `.dockerconfigjson`.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.ts';

/** The Secret fields this module reads and writes. */
export interface SecretLike {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  immutable?: boolean;
}

const KEY = /^[-._a-zA-Z0-9]+$/;
const MAX_TOTAL_BYTES = 1 << 20;

/** Secret type of registry credentials, a Docker `config.json` under `.dockerconfigjson`. */
export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';

/**
 * Normalises `next` in place (the secret being written; `old` the stored one on an
 * update) and returns what is invalid about it, one error per field.
 */
export function prepareSecret(next: SecretLike, old?: SecretLike): FieldError[] {
  const errs: FieldError[] = [];
  if (next.stringData !== undefined) {
    if (next.stringData !== null && typeof next.stringData === 'object') {
      const data = { ...(next.data ?? {}) };
      for (const [k, v] of Object.entries(next.stringData)) if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64');
      next.data = data;
    }
    delete next.stringData;
  }
  next.type ||= 'Opaque';
  let total = 0;
  for (const [k, v] of Object.entries(next.data ?? {})) {
    if (!KEY.test(k) || k === '.' || k === '..' || k.length > 253)
      errs.push({ reason: 'FieldValueInvalid', field: `data[${k}]`, message: `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'` });
    if (typeof v === 'string') total += Buffer.byteLength(v, 'base64');
  }
  if (total > MAX_TOTAL_BYTES) errs.push({ reason: 'FieldValueTooLong', field: 'data', message: `Too long: must have at most ${MAX_TOTAL_BYTES} bytes` });
  if (next.type === DOCKER_CONFIG_JSON_TYPE) {
    const raw = next.data?.['.dockerconfigjson'];
    if (raw === undefined) errs.push({ reason: 'FieldValueRequired', field: 'data[.dockerconfigjson]', message: 'Required value' });
    else {
      try {
        JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
      } catch (e) {
        errs.push({ reason: 'FieldValueInvalid', field: 'data[.dockerconfigjson]', message: `Invalid value: "<secret contents redacted>": ${(e as Error).message}` });
      }
    }
  }
  if (old) {
    if ((old.type || 'Opaque') !== next.type) errs.push({ reason: 'FieldValueInvalid', field: 'type', message: `Invalid value: "${next.type}": field is immutable` });
    if (old.immutable === true) {
      if (!isDeepStrictEqual(old.data ?? {}, next.data ?? {}))
        errs.push({ reason: 'FieldValueForbidden', field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' });
      if (next.immutable !== true) errs.push({ reason: 'FieldValueForbidden', field: 'immutable', message: 'Forbidden: field is immutable when `immutable` is set' });
    }
  }
  return errs;
}
