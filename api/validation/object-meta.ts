/**
 * Validation of `metadata` that a JSON schema cannot express: name syntax,
 * label keys and values, immutable fields. Rules follow apimachinery's
 * `ValidateObjectMeta` and report `FieldError`s with Kubernetes' messages.
 */
import type { FieldError } from '../errors.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const err = (reason: string, field: string, message: string): FieldError => ({ reason, field, message });
const invalidValue = (field: string, value: unknown, detail: string): FieldError =>
  err('FieldValueInvalid', field, `Invalid value: ${JSON.stringify(value)}: ${detail}`);

/** Checks a name as a DNS-1123 subdomain (most kinds) or label (namespaces). */
export function validateName(name: string, field: string, rule: 'subdomain' | 'label'): FieldError[] {
  if (rule === 'label') {
    if (name.length > 63) return [invalidValue(field, name, 'must be no more than 63 characters')];
    if (!DNS1123_LABEL.test(name))
      return [
        invalidValue(
          field,
          name,
          "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
      ];
    return [];
  }
  if (name.length > 253) return [invalidValue(field, name, 'must be no more than 253 characters')];
  if (!DNS1123_SUBDOMAIN.test(name))
    return [
      invalidValue(
        field,
        name,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
      ),
    ];
  return [];
}

/** Checks a label or annotation key: an optional DNS subdomain prefix and `/`, then a qualified name. */
export function validateQualifiedKey(key: string, field: string): FieldError[] {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const out: FieldError[] = [];
  if (slash >= 0 && (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)))
    out.push(invalidValue(field, key, 'prefix part must be a lowercase RFC 1123 subdomain'));
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name))
    out.push(
      invalidValue(
        field,
        key,
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') and be at most 63 characters",
      ),
    );
  return out;
}

const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Validates names, labels and annotations of an object about to be stored. */
export function validateObjectMeta(meta: Record<string, any>, opts: { nameRule: 'subdomain' | 'label'; namespaced: boolean }): FieldError[] {
  const out: FieldError[] = [];
  if (typeof meta.name === 'string' && meta.name !== '') out.push(...validateName(meta.name, 'metadata.name', opts.nameRule));
  if (opts.namespaced && typeof meta.namespace === 'string') out.push(...validateName(meta.namespace, 'metadata.namespace', 'label'));
  for (const [k, v] of Object.entries((meta.labels ?? {}) as Record<string, unknown>)) {
    out.push(...validateQualifiedKey(k, `metadata.labels`));
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v))
      out.push(
        invalidValue(
          `metadata.labels`,
          v,
          "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?') and be at most 63 characters",
        ),
      );
  }
  let annBytes = 0;
  for (const [k, v] of Object.entries((meta.annotations ?? {}) as Record<string, unknown>)) {
    out.push(...validateQualifiedKey(k.toLowerCase(), `metadata.annotations`));
    annBytes += k.length + (typeof v === 'string' ? v.length : 0);
  }
  if (annBytes > MAX_ANNOTATIONS_BYTES)
    out.push(err('FieldValueTooLong', 'metadata.annotations', `Too long: must have at most ${MAX_ANNOTATIONS_BYTES} bytes`));
  for (const [i, f] of ((meta.finalizers ?? []) as unknown[]).entries()) {
    if (typeof f !== 'string' || validateQualifiedKey(f, '').length > 0)
      out.push(invalidValue(`metadata.finalizers[${i}]`, f, 'name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\''));
  }
  return out;
}
