/**
 * The two non-apply PATCH formats kube-apiserver accepts for custom resources:
 * JSON merge patch (RFC 7386) and JSON patch (RFC 6902). Pure functions on parsed
 * JSON; inputs are never mutated and results never share structure with them.
 * Server-side apply lives in `managed-fields.ts`.
 */
import jsonpatch from 'fast-json-patch';
import { ApiError, badRequest } from '../errors.ts';

/**
 * The PATCH content types served, in kube's order, for the 415 message
 * (`the body of the request was in an unknown format - accepted media types include: …`).
 * Strategic merge patch is deliberately absent, as for custom resources.
 */
export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Sets an own property even when the key is `__proto__`. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

const copy = <T>(v: T): T => (v === undefined ? v : structuredClone(v));

/**
 * Applies a JSON merge patch (RFC 7386) to `target` and returns the result: an object
 * patch merges key by key (`null` deletes a key, nested objects merge recursively,
 * arrays and scalars replace); any other patch (array, scalar, `null`) replaces the
 * target whole. `target` and `patch` are left untouched.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return copy(patch);
  const out: Record<string, unknown> = {};
  if (isObject(target)) for (const [k, v] of Object.entries(target)) setOwn(out, k, copy(v));
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else setOwn(out, k, applyMergePatch(Object.prototype.hasOwnProperty.call(out, k) ? out[k] : undefined, v));
  }
  return out;
}

const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test'] as const;
type Op = (typeof OPS)[number];

/** A JSON pointer (RFC 6901): empty, or `/`-separated tokens where `~` is only `~0` or `~1`. */
const isPointer = (p: unknown): p is string => typeof p === 'string' && (p === '' || (p.startsWith('/') && !/~([^01]|$)/.test(p)));

/** Checks the patch document's shape; the problem is a 400, like a decode error in kube. */
function checkDocument(ops: unknown): asserts ops is { op: Op; path: string; from?: string; value?: unknown }[] {
  if (!Array.isArray(ops)) throw badRequest('invalid JSON patch: the patch document must be an array of operations');
  ops.forEach((o: unknown, i) => {
    const at = `invalid JSON patch: operation ${i}`;
    if (!isObject(o)) throw badRequest(`${at}: must be an object`);
    if (typeof o.op !== 'string' || !(OPS as readonly string[]).includes(o.op))
      throw badRequest(`${at}: unknown op ${JSON.stringify(o.op ?? null)}; must be one of ${OPS.join(', ')}`);
    if (o.path === undefined) throw badRequest(`${at} (${o.op}): missing "path"`);
    if (!isPointer(o.path)) throw badRequest(`${at} (${o.op}): invalid path ${JSON.stringify(o.path)}: must be a JSON pointer such as "/spec/image"`);
    if ((o.op === 'move' || o.op === 'copy') && o.from === undefined) throw badRequest(`${at} (${o.op} ${o.path}): missing "from"`);
    if ((o.op === 'move' || o.op === 'copy') && !isPointer(o.from))
      throw badRequest(`${at} (${o.op} ${o.path}): invalid from ${JSON.stringify(o.from)}: must be a JSON pointer`);
    if ((o.op === 'add' || o.op === 'replace' || o.op === 'test') && !('value' in o)) throw badRequest(`${at} (${o.op} ${o.path}): missing "value"`);
  });
}

const WHY: Record<string, (op: { path: string; from?: string }) => string> = {
  TEST_OPERATION_FAILED: (o) => `test failed: the value at ${JSON.stringify(o.path)} is not the expected value`,
  OPERATION_PATH_UNRESOLVABLE: (o) => `path ${JSON.stringify(o.path)} does not exist`,
  OPERATION_FROM_UNRESOLVABLE: (o) => `from ${JSON.stringify(o.from)} does not exist`,
  OPERATION_PATH_CANNOT_ADD: (o) => `cannot add at ${JSON.stringify(o.path)}: its parent does not exist`,
  OPERATION_PATH_ILLEGAL_ARRAY_INDEX: (o) => `${JSON.stringify(o.path)} has an invalid array index`,
  OPERATION_VALUE_OUT_OF_BOUNDS: (o) => `${JSON.stringify(o.path)} is out of the array's bounds`,
};

const REJECTED = 'the server rejected our request due to an error in our request';

function rejected(detail: string): ApiError {
  return new ApiError('Invalid', 422, `${REJECTED}: ${detail}`, { causes: [{ type: 'UnexpectedServerResponse', message: detail }] });
}

/**
 * Applies a JSON patch (RFC 6902) to `target` and returns the result. Operations apply
 * in order and all-or-nothing; `target` and `ops` are left untouched.
 *
 * @throws ApiError 400 BadRequest when the patch document is malformed (not an array,
 *   unknown `op`, missing or bad `path`/`from`, missing `value`).
 * @throws ApiError 422 Invalid when an operation does not apply (a `test` fails, a path
 *   does not exist, an index is out of bounds); the message and the single cause name
 *   the operation's index, op and path, after kube's
 *   `the server rejected our request due to an error in our request`.
 */
export function applyJsonPatch(target: unknown, ops: unknown): unknown {
  checkDocument(ops);
  const patch = copy(ops);
  patch.forEach((o, i) => {
    if (o.op === 'move' && o.from !== undefined && o.path.startsWith(`${o.from}/`))
      throw rejected(`json patch operation ${i} (move ${o.path}): cannot move ${JSON.stringify(o.from)} into one of its own children`);
  });
  let doc = copy(target);
  patch.forEach((o, i) => {
    try {
      doc = jsonpatch.applyOperation(doc, o as jsonpatch.Operation, true, true, true, i).newDocument;
    } catch (e) {
      const why = e instanceof jsonpatch.JsonPatchError ? (WHY[e.name]?.(o) ?? e.message.split('\n')[0]) : (e as Error).message;
      throw rejected(`json patch operation ${i} (${o.op} ${o.path}) failed: ${why}`);
    }
  });
  return doc;
}
