/**
 * Decodes the few Kubernetes protobuf request bodies that kubectl sends to core
 * kinds. kubectl 1.32+ creates built-in kinds (`kubectl create namespace`) with
 * `Content-Type: application/vnd.kubernetes.protobuf`; berth answers in JSON, which
 * kubectl accepts. Format: the magic `k8s\0`, then a `runtime.Unknown` message
 * (1: TypeMeta{1 apiVersion, 2 kind}, 2: raw object bytes, 3: contentEncoding,
 * 4: contentType) whose raw bytes are the object's message.
 * Only what berth stores for the supported kinds is read; anything else is refused.
 */
import { badRequest, unsupportedMediaType } from '../errors.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** One field of a protobuf message: number, wire type, and its value (varint as bigint, bytes as Buffer). */
interface Field {
  readonly no: number;
  readonly wire: number;
  readonly varint?: bigint;
  readonly bytes?: Buffer;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw badRequest('protobuf body is truncated');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
  throw badRequest('protobuf body has a malformed varint');
}

/** Splits a message into its fields; fails on malformed input. */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const no = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos);
      out.push({ no, wire, varint: v });
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      const end = p2 + Number(len);
      if (end > buf.length) throw badRequest('protobuf body is truncated');
      out.push({ no, wire, bytes: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw badRequest(`protobuf body has unsupported wire type ${wire}`);
  }
  return out;
}

const str = (f: Field | undefined): string | undefined => f?.bytes?.toString('utf8');

/** A protobuf `map<string, string>` (or `map<string, bytes>` as base64, as JSON spells bytes). */
function stringMap(entries: Field[], values: 'utf8' | 'base64' = 'utf8'): Record<string, string> | undefined {
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = fields(e.bytes ?? Buffer.alloc(0));
    out[str(kv.find((f) => f.no === 1)) ?? ''] = kv.find((f) => f.no === 2)?.bytes?.toString(values) ?? '';
  }
  return out;
}

/** ObjectMeta: the client-settable fields (name, generateName, namespace, labels, annotations, finalizers). */
function objectMeta(buf: Buffer): Record<string, unknown> {
  const fs = fields(buf);
  const one = (no: number) => str(fs.find((f) => f.no === no));
  const meta: Record<string, unknown> = {};
  const name = one(1);
  const generateName = one(2);
  const namespace = one(3);
  if (name) meta.name = name;
  if (generateName) meta.generateName = generateName;
  if (namespace) meta.namespace = namespace;
  const labels = stringMap(fs.filter((f) => f.no === 11));
  const annotations = stringMap(fs.filter((f) => f.no === 12));
  const finalizers = fs.filter((f) => f.no === 14).map((f) => str(f)!);
  if (labels) meta.labels = labels;
  if (annotations) meta.annotations = annotations;
  if (finalizers.length) meta.finalizers = finalizers;
  return meta;
}

/** Decoders of the object messages berth accepts in protobuf, by apiVersion/kind. */
const DECODERS: Record<string, (raw: Buffer) => Record<string, unknown>> = {
  'v1/Namespace': (raw) => {
    const fs = fields(raw);
    const meta = fs.find((f) => f.no === 1);
    return { apiVersion: 'v1', kind: 'Namespace', metadata: meta?.bytes ? objectMeta(meta.bytes) : {} };
  },
  // Secret: 1 metadata, 2 data (map<string, bytes>), 3 type, 4 stringData, 5 immutable.
  'v1/Secret': (raw) => {
    const fs = fields(raw);
    const meta = fs.find((f) => f.no === 1);
    const out: Record<string, unknown> = { apiVersion: 'v1', kind: 'Secret', metadata: meta?.bytes ? objectMeta(meta.bytes) : {} };
    const data = stringMap(fs.filter((f) => f.no === 2), 'base64');
    const stringData = stringMap(fs.filter((f) => f.no === 4));
    const type = str(fs.find((f) => f.no === 3));
    const immutable = fs.find((f) => f.no === 5)?.varint;
    if (data) out.data = data;
    if (stringData) out.stringData = stringData;
    if (type) out.type = type;
    if (immutable !== undefined) out.immutable = immutable !== 0n;
    return out;
  },
};

/** Decodes a protobuf-encoded object body into its JSON form. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC))
    throw badRequest('protobuf body does not start with the Kubernetes magic prefix');
  const unknown = fields(body.subarray(MAGIC.length));
  const typeMeta = fields(unknown.find((f) => f.no === 1)?.bytes ?? Buffer.alloc(0));
  const apiVersion = str(typeMeta.find((f) => f.no === 1)) ?? '';
  const kind = str(typeMeta.find((f) => f.no === 2)) ?? '';
  const decode = DECODERS[`${apiVersion}/${kind}`];
  if (!decode) throw unsupportedMediaType(`${PROTOBUF_CONTENT_TYPE} for ${apiVersion}, Kind=${kind}`, ['application/json', 'application/yaml']);
  return decode(unknown.find((f) => f.no === 2)?.bytes ?? Buffer.alloc(0));
}
