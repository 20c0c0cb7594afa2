import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { RESOURCES } from '../api/registry/resources.ts';
import type { SchemaObject } from '../api/validation/openapi-spec.ts';
import { CRDS_DIR, PRINTER_COLUMN_PATHS, genCrds, renderCrds } from './gen-crds.ts';
import { genTypes } from './gen-types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/** Runs a script the way `npm run gen:check` does; resolves with its exit code and stderr. */
async function runScript(script: string, ...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-gen-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Silences the generators' progress lines while a test runs. */
function quiet(): void {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  onTestFinished(() => {
    out.mockRestore();
    err.mockRestore();
  });
}

describe('generated files', () => {
  it('api/types/gen/openapi.d.ts matches openapi.yaml (gen-types --check exits 0)', async () => {
    expect(await runScript('scripts/gen-types.ts', '--check')).toEqual({ code: 0, stderr: '' });
  });

  it('charts/berth/crds matches openapi.yaml (gen-crds --check exits 0)', async () => {
    expect(await runScript('scripts/gen-crds.ts', '--check')).toEqual({ code: 0, stderr: '' });
  });

  it('gen-types --check fails with a clear message when the types are stale', async () => {
    quiet();
    const file = join(tempDir(), 'openapi.d.ts');
    expect(await genTypes({ check: true, path: file })).toBe(1);
    expect(await genTypes({ check: false, path: file })).toBe(0);
    expect(await genTypes({ check: true, path: file })).toBe(0);
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n// edited by hand\n`);
    const err = vi.mocked(process.stderr.write);
    err.mockClear();
    expect(await genTypes({ check: true, path: file })).toBe(1);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/openapi\.d\.ts is stale: it does not match openapi\.yaml\. Run `npm run gen`/);
  });

  it('gen-crds --check fails on a missing, edited or leftover CRD', () => {
    quiet();
    const dir = tempDir();
    expect(genCrds({ check: true, dir })).toBe(1);
    expect(genCrds({ check: false, dir })).toBe(0);
    expect(genCrds({ check: true, dir })).toBe(0);
    writeFileSync(join(dir, 'gadgets.berth.dev.yaml'), 'kind: CustomResourceDefinition\n');
    expect(genCrds({ check: true, dir })).toBe(1);
    expect(genCrds({ check: false, dir })).toBe(0);
    expect(genCrds({ check: true, dir })).toBe(0);
    writeFileSync(join(dir, 'containers.berth.dev.yaml'), 'edited');
    expect(genCrds({ check: true, dir })).toBe(1);
  });
});

describe('CRDs', () => {
  const crds = [...renderCrds()].map(([file, text]) => ({ file, crd: parse(text) as Record<string, any> }));

  it('has one CRD per berth.dev kind, named <plural>.berth.dev', () => {
    const berth = RESOURCES.filter((r) => r.group === 'berth.dev');
    expect(crds.map((c) => c.file).sort()).toEqual(berth.map((r) => `${r.plural}.berth.dev.yaml`).sort());
    expect(CRDS_DIR).toMatch(/charts\/berth\/crds\/$/);
  });

  it.each(RESOURCES.filter((r) => r.group === 'berth.dev').map((r) => [r.kind, r] as const))('describes %s with its names, scope and status subresource', (_k, r) => {
    const { crd } = crds.find((c) => c.file === `${r.plural}.berth.dev.yaml`)!;
    expect(crd).toMatchObject({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${r.plural}.berth.dev` } });
    expect(crd.spec.names).toEqual({ kind: r.kind, listKind: r.listKind, plural: r.plural, singular: r.singular, shortNames: [...r.shortNames], categories: [...r.categories] });
    expect(crd.spec.scope).toBe(r.namespaced ? 'Namespaced' : 'Cluster');
    const [version] = crd.spec.versions;
    expect(version).toMatchObject({ name: 'v1', served: true, storage: true, subresources: { status: {} } });
    expect(version.additionalPrinterColumns).toContainEqual({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: expect.any(String) });
    expect(version.schema.openAPIV3Schema.properties.metadata).toEqual({ type: 'object' });
  });

  it('has structural schemas: no refs, a type on every node, nothing CRDs reject', () => {
    const problems: string[] = [];
    const walk = (s: SchemaObject, at: string, inAnyOf = false): void => {
      for (const k of ['$ref', 'allOf', 'oneOf', 'x-kubernetes-group-version-kind', 'example']) if (k in s) problems.push(`${at}: ${k}`);
      if (!s.type && !inAnyOf && !s['x-kubernetes-int-or-string'] && !s['x-kubernetes-preserve-unknown-fields']) problems.push(`${at}: no type`);
      if (s.properties && s.additionalProperties) problems.push(`${at}: properties and additionalProperties`);
      for (const [p, ps] of Object.entries((s.properties ?? {}) as Record<string, SchemaObject>)) walk(ps, `${at}.${p}`);
      if (s.items) walk(s.items, `${at}[]`);
      if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${at}{}`);
      for (const b of s.anyOf ?? []) walk(b, `${at}|`, true);
      if (s['x-kubernetes-list-type'] === 'map') {
        for (const key of s['x-kubernetes-list-map-keys']) {
          if (!s.items.required?.includes(key) && s.items.properties[key]?.default === undefined) problems.push(`${at}: list-map key ${key} neither required nor defaulted`);
        }
      }
    };
    for (const { file, crd } of crds) walk(crd.spec.versions[0].schema.openAPIV3Schema, file);
    expect(problems).toEqual([]);
  });

  it('maps printer columns only to columns RESOURCES has', () => {
    for (const [kind, columns] of Object.entries(PRINTER_COLUMN_PATHS)) {
      const r = RESOURCES.find((x) => x.kind === kind && x.group === 'berth.dev')!;
      expect(r, kind).toBeDefined();
      for (const name of Object.keys(columns)) expect(r.columns.map((c) => c.name), `${kind}/${name}`).toContain(name);
    }
  });
});
