import type { KubeObject } from '../../api/types/index.ts';
import { describe, expect, it } from 'vitest';
import { resourceKind } from '../../controllers/framework/resource-kind.ts';
import { appliedByBerth, describeText, forDiff, parseManifests, parseTimeoutMs, parseWaitFor, qualifiedName, renderServerTable, resolveResource, waitSatisfied, type ApiResource, appliedNothing } from './declarative.ts';

const RESOURCES: ApiResource[] = [
  { kind: resourceKind('berth.dev', 'v1', 'containers', 'Container', true), singular: 'container', shortNames: ['ctr'] },
  { kind: resourceKind('berth.dev', 'v1', 'images', 'Image', true), singular: 'image', shortNames: ['img'] },
  { kind: resourceKind('', 'v1', 'secrets', 'Secret', true), singular: 'secret', shortNames: [] },
  { kind: resourceKind('berth.dev', 'v1', 'nodes', 'Node', false), singular: 'node', shortNames: [] },
];

describe('manifests', () => {
  it('reads every document of a stream, expands Lists and skips empty documents', () => {
    const text = 'apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n---\n{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"berth.dev/v1","kind":"Volume","metadata":{"name":"v"}}]}\n';
    expect(parseManifests(text, 'f.yaml').map((m) => `${m.object.kind}/${m.object.metadata.name}`)).toEqual(['Secret/s', 'Volume/v']);
  });

  it.each([
    ['kind: Secret\nmetadata: {name: s}\n', /f\.yaml: document 1: apiVersion and kind are required/],
    ['apiVersion: v1\nkind: Secret\n', /f\.yaml: document 1: metadata\.name is required \(Secret\)/],
    ['a: [\n', /f\.yaml: document 1:/],
  ])('names the file and document of a bad manifest (%j)', (text, want) => {
    expect(() => parseManifests(text, 'f.yaml')).toThrow(want);
  });
});

describe('resource names', () => {
  it.each([
    ['containers', 'containers'], ['container', 'containers'], ['ctr', 'containers'], ['Container', 'containers'],
    ['containers.berth.dev', 'containers'], ['img', 'images'], ['secret', 'secrets'], ['nodes', 'nodes'],
  ])('%s names %s', (type, plural) => {
    expect(resolveResource(RESOURCES, type).kind.plural).toBe(plural);
  });

  it('refuses an unknown type as kubectl words it', () => {
    expect(() => resolveResource(RESOURCES, 'pods')).toThrow('the server doesn\'t have a resource type "pods"');
  });

  it('qualifies names as kubectl prints them', () => {
    expect(qualifiedName(RESOURCES[0]!, 'web')).toBe('container.berth.dev/web');
    expect(qualifiedName(RESOURCES[2]!, 's')).toBe('secret/s');
  });
});

describe('wait --for and --timeout', () => {
  const obj = { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'w' }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } };
  it.each([
    ['condition=Ready', obj, true],
    ['condition=Ready=False', obj, false],
    ['condition=ready', obj, true],
    ['jsonpath={.status.phase}=Running', obj, true],
    ["jsonpath='{.status.phase}'=Exited", obj, false],
    ['jsonpath={.status.phase}', obj, true],
    ['delete', obj, false],
    ['delete', undefined, true],
    ['condition=Ready', undefined, false],
  ])('%s on %j is %s', (f, o, want) => {
    expect(waitSatisfied(o, parseWaitFor(f))).toBe(want);
  });

  it('refuses other conditions', () => {
    expect(() => parseWaitFor('ready')).toThrow(/expected delete, condition=TYPE/);
  });

  it.each([['30s', 30_000], ['2m', 120_000], ['1h30m', 5_400_000], ['500ms', 500], ['5', 5_000]])('--timeout %s is %d ms', (v, ms) => {
    expect(parseTimeoutMs(v)).toBe(ms);
  });

  it('refuses a timeout it cannot read', () => {
    expect(() => parseTimeoutMs('soon')).toThrow(/--timeout "soon"/);
  });
});

describe('output', () => {
  it('prints a server Table with kubectl headers, hiding priority columns unless wide', () => {
    const table = { columnDefinitions: [{ name: 'Name' }, { name: 'Status' }, { name: 'Node', priority: 1 }], rows: [{ cells: ['web', 'Running', 'n1'] }, { cells: ['db', 'Exited', 'n1'] }] };
    expect(renderServerTable([{ table }], false, false)).toBe('NAME      STATUS\nweb       Running\ndb        Exited\n');
    expect(renderServerTable([{ table }], true, true)).toBe('web       Running   n1\ndb        Exited    n1\n');
  });

  it('leaves managedFields, resourceVersion and generation out of diffs', () => {
    expect(forDiff({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', resourceVersion: '5', generation: 2, managedFields: [{ manager: 'x' }] } })).toBe('apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n');
    expect(forDiff(undefined)).toBe('');
  });

  it('prunes only what berth apply applied', () => {
    const o = (manager: string, operation: 'Apply' | 'Update') => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', managedFields: [{ manager, operation }] } });
    expect(appliedByBerth(o('berth', 'Apply'))).toBe(true);
    expect(appliedByBerth(o('berth-compose', 'Apply'))).toBe(false);
    expect(appliedByBerth(o('berth', 'Update'))).toBe(false);
  });

  it('describes an object with its labels, spec, status and events', () => {
    const text = describeText(
      { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: { name: 'web', namespace: 'default', labels: { app: 'x' }, creationTimestamp: '2026-11-28T05:00:00Z' }, spec: { image: 'busybox' }, status: { phase: 'Running' } },
      [{ type: 'Normal', reason: 'Started', lastTimestamp: '2026-11-28T05:00:00Z', message: 'started', reportingComponent: 'agent' }],
      Date.parse('2026-11-28T05:00:30Z'),
    );
    expect(text).toBe([
      'Name:         web', 'Namespace:    default', 'Labels:       app=x', 'Annotations:  <none>', 'API Version:  berth.dev/v1', 'Kind:         Container', 'Created:      2026-11-28T05:00:00Z',
      'Spec:', '  image: busybox', 'Status:', '  phase: Running', 'Events:',
      '  Type      Reason    Age       From      Message', '  ----      ------    ----      ----      -------', '  Normal    Started   30s       agent     started', '',
    ].join('\n'));
  });
});

describe('appliedNothing (apply prints unchanged)', () => {
  const obj = (rv: string, opts: { gen?: number; labels?: Record<string, string>; time?: string; manager?: string } = {}) => ({
    apiVersion: 'berth.dev/v1',
    kind: 'Container',
    metadata: {
      name: 'a', resourceVersion: rv, generation: opts.gen ?? 1, ...(opts.labels ? { labels: opts.labels } : {}),
      managedFields: [{ manager: opts.manager ?? 'berth', operation: 'Apply', time: opts.time ?? 't1', fieldsType: 'FieldsV1', fieldsV1: {} }],
    },
  }) as unknown as KubeObject;

  it('is true for the same object, and when only someone else wrote it meanwhile (a status write)', () => {
    expect(appliedNothing(obj('5'), obj('5'))).toBe(true);
    expect(appliedNothing(obj('5'), obj('6'))).toBe(true);
  });

  it('is false when the apply changed the spec, labels or its own fields, or the object was not applied by berth before', () => {
    expect(appliedNothing(obj('5'), obj('6', { gen: 2 }))).toBe(false);
    expect(appliedNothing(obj('5'), obj('6', { labels: { app: 'x' } }))).toBe(false);
    expect(appliedNothing(obj('5'), obj('6', { time: 't2' }))).toBe(false);
    expect(appliedNothing(obj('5', { manager: 'kubectl' }), obj('6'))).toBe(false);
  });
});
