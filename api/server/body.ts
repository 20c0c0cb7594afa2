/**
 * Request bodies: read the raw bytes with a size limit, then decode JSON or YAML
 * by Content-Type. Every failure is a `Status` error (400, 413 or 415); nothing here
 * touches the store.
 */
import type { Request } from 'express';
import { parseAllDocuments } from 'yaml';
import { badRequest, tooLarge, unsupportedMediaType } from '../errors.ts';
import { PATCH_TYPES } from '../registry/patch.ts';
import { decodeProtobufObject, PROTOBUF_CONTENT_TYPE } from './protobuf.ts';

/** kube-apiserver's limit for one request body: 3 MiB. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;
/** Deeper documents are refused before anything recurses over them. */
export const MAX_DEPTH = 100;

/** Reads the whole body, refusing more than `limitBytes` (413) without buffering the rest. */
export async function readRawBody(req: Request, limitBytes = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    req.resume();
    throw tooLarge(limitBytes);
  }
  if (req.readableEnded) return Buffer.alloc(0);
  // Plain listeners: an async iterator over the request costs several times as much per request.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: unknown): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (err) {
        req.resume();
        reject(err);
      } else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) done(tooLarge(limitBytes));
      else chunks.push(chunk);
    };
    const onEnd = (): void => done();
    const onError = (err: Error): void => done(err);
    const onClose = (): void => {
      if (!req.readableEnded) done(new Error('the client closed the connection before sending the whole body'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** The media type of a Content-Type header, lower case, without parameters. */
export const mediaType = (header: string | undefined): string => (header ?? '').split(';')[0]!.trim().toLowerCase();

function depthOf(v: unknown, depth = 0): number {
  if (depth > MAX_DEPTH) return depth;
  if (v === null || typeof v !== 'object') return depth;
  let max = depth;
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    const d = depthOf(x, depth + 1);
    if (d > max) max = d;
    if (max > MAX_DEPTH) break;
  }
  return max;
}

/** Parses JSON or YAML text into one value; 400 with the parser's reason on failure. */
export function decodeDocument(raw: Buffer, type: 'json' | 'yaml'): unknown {
  const text = raw.toString('utf8');
  if (text.trim() === '') throw badRequest('the request body is empty; expected an object');
  let value: unknown;
  // JSON is valid YAML and much faster to parse: kubectl's apply-patch+yaml bodies are JSON.
  if (type === 'yaml' && text.trimStart().startsWith('{')) {
    try {
      value = JSON.parse(text);
      type = 'json';
    } catch {
      /* not JSON after all: parse as YAML */
    }
  }
  if (value !== undefined) {
    /* decoded above */
  } else if (type === 'json') {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw badRequest(`the body of the request could not be decoded as JSON: ${(e as Error).message}`);
    }
  } else {
    let docs;
    try {
      docs = parseAllDocuments(text, { uniqueKeys: true });
    } catch (e) {
      throw badRequest(`the body of the request could not be decoded as YAML: ${(e as Error).message}`);
    }
    const list = Array.isArray(docs) ? docs : [docs];
    if (list.length !== 1) throw badRequest(`the body of the request must hold exactly one YAML document, found ${list.length}`);
    const doc = list[0]!;
    if (doc.errors.length) throw badRequest(`the body of the request could not be decoded as YAML: ${doc.errors[0]!.message}`);
    value = doc.toJS({ maxAliasCount: 100 });
  }
  if (depthOf(value) > MAX_DEPTH) throw badRequest(`the body of the request is nested deeper than ${MAX_DEPTH} levels`);
  return value;
}

/** Decodes a create or update body (JSON or YAML). */
export async function readObjectBody(req: Request): Promise<unknown> {
  const type = mediaType(req.headers['content-type']);
  const raw = await readRawBody(req);
  if (type === '' || type === 'application/json') return decodeDocument(raw, 'json');
  if (type === 'application/yaml' || type === 'application/x-yaml' || type === 'text/yaml') return decodeDocument(raw, 'yaml');
  if (type === PROTOBUF_CONTENT_TYPE) return decodeProtobufObject(raw);
  throw unsupportedMediaType(type, ['application/json', 'application/yaml']);
}

/** Decodes a PATCH body and says which kind of patch it is; strategic merge is refused with 415. */
export async function readPatchBody(req: Request): Promise<{ type: 'merge' | 'json' | 'apply'; patch: unknown }> {
  const type = mediaType(req.headers['content-type']);
  const kinds: Record<string, 'merge' | 'json' | 'apply'> = {
    'application/merge-patch+json': 'merge',
    'application/json-patch+json': 'json',
    'application/apply-patch+yaml': 'apply',
  };
  const kind = kinds[type];
  if (!kind) {
    req.resume();
    throw unsupportedMediaType(type || '(none)', PATCH_TYPES);
  }
  const raw = await readRawBody(req);
  return { type: kind, patch: decodeDocument(raw, kind === 'apply' ? 'yaml' : 'json') };
}
