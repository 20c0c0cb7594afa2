import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.ts';

let cp: ControlPlane;
beforeAll(async () => {
  cp = await startControlPlane();
});
afterAll(async () => {
  await cp?.stop();
});

describe('discovery', () => {
  it('lists berth.dev and coordination.k8s.io in /apis', async () => {
    const res = await cp.request('GET', '/apis');
    expect(res.body.kind).toBe('APIGroupList');
    expect(res.body.groups.map((g: any) => g.name)).toEqual(['berth.dev', 'coordination.k8s.io']);
  });

  it('lists every berth kind with short names, scope and categories', async () => {
    const res = await cp.request('GET', '/apis/berth.dev/v1');
    const by = Object.fromEntries(res.body.resources.map((r: any) => [r.name, r]));
    expect(by.containers).toMatchObject({ kind: 'Container', namespaced: true, shortNames: ['ctr'], categories: ['all', 'berth'] });
    expect(by.images.shortNames).toEqual(['img']);
    expect(by.volumes.shortNames).toEqual(['vol']);
    expect(by.networks.shortNames).toEqual(['net']);
    expect(by.services).toMatchObject({ shortNames: ['bsvc'], categories: ['all', 'berth'] });
    expect(by.nodes.namespaced).toBe(false);
    expect(by['containers/status'].verbs).toEqual(['get', 'patch', 'update']);
  });

  it('negotiates aggregated discovery v2 and v2beta1 with a matching Content-Type', async () => {
    for (const v of ['v2', 'v2beta1']) {
      const accept = `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList,application/json`;
      const res = await cp.request('GET', '/apis', { accept });
      expect(res.headers['content-type']).toBe(`application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`);
      expect(res.body.apiVersion).toBe(`apidiscovery.k8s.io/${v}`);
      const berth = res.body.items.find((i: any) => i.metadata.name === 'berth.dev');
      expect(berth.versions[0].freshness).toBe('Current');
      const core = await cp.request('GET', '/api', { accept });
      expect(core.body.items[0].versions[0].resources.map((r: any) => r.resource)).toEqual(['namespaces', 'events', 'secrets']);
    }
  });

  it('serves /version with a plausible minor for the kubectl dispatcher', async () => {
    const res = await cp.request('GET', '/version');
    expect(res.body).toMatchObject({ major: '1', minor: '32' });
  });

  it('answers unknown paths with a NotFound Status', async () => {
    const res = await cp.request('GET', '/apis/nope.dev/v1');
    expect(res.status).toBe(404);
    expect(res.body.kind).toBe('Status');
  });
});
