import type { AddressInfo } from 'node:net';
import express from 'express';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RESOURCES } from '../registry/resources.ts';
import { loadOpenApiSpec, rewriteRefs } from '../validation/openapi-spec.ts';
import { OPENAPI_V2_PROTOBUF, PATCH_CONTENT_TYPES, openApiDocuments, openApiRouter } from './openapi.ts';

/** Starts a bare express app with only the OpenAPI router, on 127.0.0.1 and a free port. */
async function serve(): Promise<string> {
  const app = express();
  app.use(openApiRouter());
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const getJson = async (url: string, init?: RequestInit): Promise<{ res: Response; body: any }> => {
  const res = await fetch(url, { redirect: 'manual', ...init });
  return { res, body: res.status === 200 ? await res.json() : await res.text() };
};

const docs = openApiDocuments();
const gvPaths = ['apis/berth.dev/v1', 'api/v1', 'apis/coordination.k8s.io/v1'];

describe('openApiRouter', () => {
  it('serves the v3 index with one hashed URL per group-version', async () => {
    const base = await serve();
    const { res, body } = await getJson(`${base}/openapi/v3`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(body.paths)).toEqual(gvPaths);
    for (const p of gvPaths) expect(body.paths[p].serverRelativeURL).toMatch(new RegExp(`^/openapi/v3/${p.replace(/\./g, '\\.')}\\?hash=[0-9A-F]{128}$`));
  });

  it('serves each group-version document at its hashed URL as immutable for a year', async () => {
    const base = await serve();
    const { body: index } = await getJson(`${base}/openapi/v3`);
    for (const p of gvPaths) {
      const { res, body } = await getJson(`${base}${index.paths[p].serverRelativeURL}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, immutable, max-age=31536000');
      expect(body).toEqual(docs.groupVersions.get(p)!.document);
    }
  });

  it('redirects a stale hash to the current one and serves no hash uncached', async () => {
    const base = await serve();
    const current = docs.index.paths['apis/berth.dev/v1']!.serverRelativeURL;
    const stale = await getJson(`${base}/openapi/v3/apis/berth.dev/v1?hash=0123`);
    expect(stale.res.status).toBe(301);
    expect(stale.res.headers.get('location')).toBe(current);
    const bare = await getJson(`${base}/openapi/v3/apis/berth.dev/v1`);
    expect(bare.res.status).toBe(200);
    expect(bare.res.headers.get('cache-control')).toBe('no-cache, private');
    const etag = bare.res.headers.get('etag')!;
    const again = await fetch(`${base}/openapi/v3/apis/berth.dev/v1`, { headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);
  });

  it('answers an unknown group-version with a NotFound Status', async () => {
    const base = await serve();
    const res = await fetch(`${base}/openapi/v3/apis/example.com/v1`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
  });

  it('serves the exact tiny protobuf /openapi/v2 that kubectl 1.27 and 1.28 need', async () => {
    const base = await serve();
    const res = await fetch(`${base}/openapi/v2?timeout=32s`, { headers: { Accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(OPENAPI_V2_PROTOBUF);
    expect(Buffer.from(await res.arrayBuffer()).toString('hex')).toBe('0a03322e30120b0a05626572746812027631');
  });

  it('serves /openapi/v2 as swagger 2.0 JSON when JSON is asked for', async () => {
    const base = await serve();
    const { res, body } = await getJson(`${base}/openapi/v2`, { headers: { Accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(body.swagger).toBe('2.0');
    expect(body.definitions['dev.berth.v1.Container']['x-kubernetes-group-version-kind']).toEqual([{ group: 'berth.dev', version: 'v1', kind: 'Container' }]);
    expect(JSON.stringify(body)).not.toContain('#/components/');
  });
});

describe('openApiDocuments', () => {
  const berthDoc = docs.groupVersions.get('apis/berth.dev/v1')!.document;

  it.each(RESOURCES.map((r) => [r.kind, r] as const))('puts %s with its group-version-kind into its group-version document', (_k, r) => {
    const doc = docs.groupVersions.get(r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`)!.document;
    const pkg = r.group === 'berth.dev' ? 'dev.berth.v1' : r.group === '' ? 'io.k8s.api.core.v1' : 'io.k8s.api.coordination.v1';
    expect(doc.components.schemas[`${pkg}.${r.kind}`]?.['x-kubernetes-group-version-kind']).toEqual([{ group: r.group, version: r.version, kind: r.kind }]);
    expect(doc.components.schemas['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta']).toBeDefined();
  });

  it('lets PATCH operations advertise fieldValidation and never strategic merge', () => {
    let patches = 0;
    for (const { document } of docs.groupVersions.values()) {
      for (const item of Object.values(document.paths) as Record<string, any>[]) {
        if (!item.patch) continue;
        patches++;
        const op = item.patch;
        expect(op['x-kubernetes-action']).toBe('patch');
        expect(op['x-kubernetes-group-version-kind']).toEqual(expect.objectContaining({ version: 'v1', kind: expect.any(String) }));
        expect(op.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['fieldValidation', 'dryRun', 'fieldManager', 'force']));
        expect(Object.keys(op.requestBody.content)).toEqual([...PATCH_CONTENT_TYPES]);
      }
      expect(JSON.stringify(document)).not.toContain('strategic-merge-patch');
    }
    expect(patches).toBe(RESOURCES.length + RESOURCES.filter((r) => r.hasStatus).length);
  });

  it('generates namespaced, cluster-scoped, all-namespaces and status paths from RESOURCES', () => {
    const paths = Object.keys(berthDoc.paths);
    expect(paths).toContain('/apis/berth.dev/v1/namespaces/{namespace}/containers/{name}/status');
    expect(paths).toContain('/apis/berth.dev/v1/containers');
    expect(paths).toContain('/apis/berth.dev/v1/nodes/{name}');
    expect(paths.some((p) => p.includes('namespaces/{namespace}/nodes'))).toBe(false);
    const core = Object.keys(docs.groupVersions.get('api/v1')!.document.paths);
    expect(core).toContain('/api/v1/namespaces/{name}');
    expect(core).toContain('/api/v1/namespaces/{namespace}/events/{name}');
    expect(core.some((p) => p.startsWith('/api/v1/namespaces/{namespace}/events/{name}/status'))).toBe(false);
    const patch = (berthDoc.paths['/apis/berth.dev/v1/namespaces/{namespace}/containers/{name}'] as any).patch;
    expect(patch.operationId).toBe('patchBerthDevV1NamespacedContainer');
    expect(patch['x-kubernetes-group-version-kind']).toEqual({ group: 'berth.dev', version: 'v1', kind: 'Container' });
  });

  it('serves exactly the schemas of openapi.yaml, renamed and nothing else changed', () => {
    const yaml = loadOpenApiSpec().components.schemas;
    const byDefinition = new Map([...docs.definitionNames].map(([s, d]) => [d, s]));
    const seen = new Set<string>();
    for (const { document } of docs.groupVersions.values()) {
      for (const [def, served] of Object.entries(document.components.schemas)) {
        const name = byDefinition.get(def);
        expect(name, def).toBeDefined();
        seen.add(name!);
        const back = rewriteRefs(served, (d) => `#/components/schemas/${byDefinition.get(`${d}`)}`);
        expect(back, def).toEqual(yaml[name!]);
        for (const ref of JSON.stringify(served).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) expect(document.components.schemas[ref[1]!], ref[1]).toBeDefined();
      }
    }
    expect([...seen].sort()).toEqual(Object.keys(yaml).sort());
  });

  it('changes the hash when the document changes', () => {
    const spec = loadOpenApiSpec();
    spec.components.schemas.ContainerSpec!.description = 'changed';
    const other = openApiDocuments({ spec });
    expect(other.groupVersions.get('apis/berth.dev/v1')!.hash).not.toBe(docs.groupVersions.get('apis/berth.dev/v1')!.hash);
    expect(other.groupVersions.get('api/v1')!.hash).toBe(docs.groupVersions.get('api/v1')!.hash);
  });
});
