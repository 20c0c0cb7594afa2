import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.ts';
import {
  LAST_APPLIED_ANNOTATION,
  recordUpdate,
  serverSideApply,
  type ManagedFieldsEntry,
  type ServerSideApplyOptions,
} from './managed-fields.ts';

const V = 'berth.dev/v1';
const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-02T00:00:00Z';
const T2 = '2026-01-03T00:00:00Z';

const KEYS: Record<string, readonly string[]> = {
  'spec.env': ['name'],
  'spec.ports': ['containerPort', 'protocol'],
  'metadata.ownerReferences': ['uid'],
  'status.conditions': ['type'],
};
const listMapKeys = (p: readonly string[]) => KEYS[p.join('.')];

type Obj = Record<string, any>;

/** An apply configuration for Container `web`. */
const config = (spec: Obj, metadata: Obj = {}): Obj => ({
  apiVersion: V,
  kind: 'Container',
  metadata: { name: 'web', namespace: 'default', ...metadata },
  spec,
});

/** A stored Container, as the registry keeps it (server-set metadata, a status). */
const stored = (spec: Obj, metadata: Obj = {}): Obj => ({
  apiVersion: V,
  kind: 'Container',
  metadata: { name: 'web', namespace: 'default', uid: 'u-1', resourceVersion: '7', generation: 1, creationTimestamp: T0, ...metadata },
  spec,
  status: { phase: 'Running' },
});

/** Freezes a value deeply, so that any mutation by the code under test throws. */
function frozen<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) frozen(x);
    Object.freeze(v);
  }
  return v;
}

function apply(live: Obj | undefined, applied: Obj, manager: string, more: Partial<ServerSideApplyOptions> = {}): Obj {
  return serverSideApply({
    live: live === undefined ? undefined : frozen(structuredClone(live)),
    applied: frozen(structuredClone(applied)),
    manager,
    force: false,
    apiVersion: V,
    now: T1,
    listMapKeys,
    ...more,
  }) as Obj;
}

/** Stores `updated` after a write by an Update manager: the object with its new managedFields. */
function update(live: Obj | undefined, updated: Obj, manager: string, now = T0, more: Obj = {}): Obj {
  const managedFields = recordUpdate({
    live: live === undefined ? undefined : frozen(structuredClone(live)),
    updated: frozen(structuredClone(updated)),
    manager,
    apiVersion: V,
    now,
    listMapKeys,
    ...more,
  });
  const out = structuredClone(updated);
  out.metadata.managedFields = managedFields;
  if (!managedFields.length) delete out.metadata.managedFields;
  return out;
}

/** `manager/operation` → fieldsV1, for compact assertions. */
const owners = (o: Obj): Record<string, object> =>
  Object.fromEntries(((o.metadata?.managedFields ?? []) as ManagedFieldsEntry[]).map((e) => [`${e.manager}/${e.operation}${e.subresource ? `/${e.subresource}` : ''}`, e.fieldsV1]));

function thrown(f: () => unknown): ApiError {
  try {
    f();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

describe('serverSideApply', () => {
  it('creates an object from a configuration and records the applier as owner of every applied field', () => {
    const out = apply(undefined, config({ image: 'nginx:1.25', command: ['sh'] }, { labels: { app: 'x' } }), 'kubectl', { now: '2026-01-02T00:00:00.517Z' });
    expect(out).toEqual({
      apiVersion: V,
      kind: 'Container',
      metadata: {
        name: 'web',
        namespace: 'default',
        labels: { app: 'x' },
        managedFields: [
          {
            manager: 'kubectl',
            operation: 'Apply',
            apiVersion: V,
            time: T1,
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:metadata': { 'f:labels': { 'f:app': {} } }, 'f:spec': { 'f:command': {}, 'f:image': {} } },
          },
        ],
      },
      spec: { image: 'nginx:1.25', command: ['sh'] },
    });
  });

  it('returns the live object unchanged, time included, when the same configuration is applied again', () => {
    const cfg = config({ image: 'nginx:1.25', env: [{ name: 'A', value: '1' }] }, { labels: { app: 'x' } });
    const live = { ...apply(stored({}), cfg, 'kubectl'), status: { phase: 'Running' } };
    expect(apply(live, cfg, 'kubectl', { now: T2 })).toEqual(live);
  });

  it('removes a field the applier applied before and omits now', () => {
    const live = apply(stored({}), config({ image: 'a', command: ['sh'], tty: true }), 'kubectl');
    const out = apply(live, config({ image: 'a' }), 'kubectl', { now: T2 });
    expect(out.spec).toEqual({ image: 'a' });
    expect(owners(out)).toEqual({ 'kubectl/Apply': { 'f:spec': { 'f:image': {} } } });
    expect(out.metadata.managedFields[0].time).toBe(T2);
  });

  it('removes an omitted map entry, a whole omitted object and an omitted keyed list item', () => {
    const live = apply(
      stored({}),
      config({ image: 'a', resources: { memory: '64Mi' }, env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }, { labels: { app: 'x', tier: 'y' } }),
      'kubectl',
    );
    const out = apply(live, config({ image: 'a', env: [{ name: 'B', value: '2' }] }, { labels: { app: 'x' } }), 'kubectl');
    expect(out.spec).toEqual({ image: 'a', env: [{ name: 'B', value: '2' }] });
    expect(out.metadata.labels).toEqual({ app: 'x' });
  });

  it('keeps an omitted field that another manager also owns', () => {
    let live = apply(stored({}), config({ image: 'a', command: ['sh'] }), 'kubectl');
    live = update(live, { ...live, spec: { ...live.spec, command: ['sh'], tty: true } }, 'editor');
    live = apply(live, config({ command: ['sh'] }), 'helm');
    const out = apply(live, config({ image: 'a' }), 'kubectl');
    expect(out.spec).toEqual({ image: 'a', command: ['sh'], tty: true });
  });

  it('never removes server-set metadata or status, and keeps the live status', () => {
    const live = apply(stored({}), config({ image: 'a' }, { labels: { app: 'x' } }), 'kubectl');
    const out = apply(live, { ...config({ image: 'a' }), status: { phase: 'Exited' } }, 'kubectl');
    expect(out.metadata).toMatchObject({ name: 'web', namespace: 'default', uid: 'u-1', resourceVersion: '7', generation: 1, creationTimestamp: T0 });
    expect(out.metadata.labels).toBeUndefined();
    expect(out.status).toEqual({ phase: 'Running' });
    expect(owners(out)).toEqual({ 'kubectl/Apply': { 'f:spec': { 'f:image': {} } } });
  });

  it('applies status and owns only status through the status subresource', () => {
    const live = apply(stored({ image: 'a' }), config({ image: 'a' }), 'kubectl');
    const out = apply(live, { ...config({ image: 'zzz' }), status: { phase: 'Exited', exitCode: 0 } }, 'agent', { subresource: 'status' });
    expect(out.spec).toEqual({ image: 'a' });
    expect(out.status).toEqual({ phase: 'Exited', exitCode: 0 });
    expect(owners(out)).toEqual({
      'kubectl/Apply': { 'f:spec': { 'f:image': {} } },
      'agent/Apply/status': { 'f:status': { 'f:exitCode': {}, 'f:phase': {} } },
    });
  });

  it('refuses to change a field another manager owns, with kube\'s message and causes', () => {
    const live = update(undefined, stored({ image: 'nginx:1.25' }), 'kubectl-client-side-apply');
    const e = thrown(() => apply(live, config({ image: 'nginx:1.27' }), 'kubectl'));
    expect(e.code).toBe(409);
    expect(e.reason).toBe('Conflict');
    expect(e.message).toBe('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using berth.dev/v1: .spec.image');
    expect(e.details).toEqual({
      causes: [{ type: 'FieldManagerConflict', message: 'conflict with "kubectl-client-side-apply" using berth.dev/v1', field: '.spec.image' }],
    });
  });

  it('lists several conflicts grouped by manager, appliers without an apiVersion', () => {
    let live = apply(stored({}), config({ image: 'a', tty: true }), 'helm');
    live = update(live, { ...live, spec: { ...live.spec, command: ['x'], user: '0' } }, 'editor');
    const e = thrown(() => apply(live, config({ image: 'b', command: ['y'], user: '1' }), 'flux'));
    expect(e.message).toBe(
      'Apply failed with 3 conflicts: conflicts with "editor" using berth.dev/v1:\n- .spec.command\n- .spec.user\nconflicts with "helm":\n- .spec.image',
    );
    expect(e.details?.causes?.map((c) => [c.message, c.field])).toEqual([
      ['conflict with "editor" using berth.dev/v1', '.spec.command'],
      ['conflict with "editor" using berth.dev/v1', '.spec.user'],
      ['conflict with "helm"', '.spec.image'],
    ]);
  });

  it('takes ownership of conflicting fields when forced', () => {
    const live = update(undefined, stored({ image: 'nginx:1.25', command: ['sh'] }), 'kubectl-client-side-apply');
    const out = apply(live, config({ image: 'nginx:1.27' }), 'kubectl', { force: true });
    expect(out.spec).toEqual({ image: 'nginx:1.27', command: ['sh'] });
    expect(owners(out)).toEqual({
      'kubectl/Apply': { 'f:spec': { 'f:image': {} } },
      'kubectl-client-side-apply/Update': { 'f:spec': { '.': {}, 'f:command': {} } },
    });
  });

  it('drops a manager whose every field was taken', () => {
    const live = apply(stored({}), config({ image: 'a' }), 'helm');
    const out = apply(live, config({ image: 'b' }), 'kubectl', { force: true });
    expect(Object.keys(owners(out))).toEqual(['kubectl/Apply']);
  });

  it('shares ownership without conflict when the applied value is the live one', () => {
    const live = apply(stored({}), config({ image: 'a', tty: true }), 'helm');
    const out = apply(live, config({ image: 'a' }), 'flux', { now: T2 });
    expect(out.spec).toEqual({ image: 'a', tty: true });
    expect(owners(out)).toEqual({
      'helm/Apply': { 'f:spec': { 'f:image': {}, 'f:tty': {} } },
      'flux/Apply': { 'f:spec': { 'f:image': {} } },
    });
    // And a shared field stays when one of its owners stops applying it.
    const after = apply(out, config({ tty: true }), 'helm');
    expect(after.spec).toEqual({ image: 'a', tty: true });
  });

  describe('switching from client-side to server-side apply (CSA→SSA)', () => {
    const csaConfig = config({ image: 'nginx:1.25' }, { labels: { app: 'x' }, annotations: {} });
    const lastApplied = `${JSON.stringify({ apiVersion: V, kind: 'Container', metadata: { annotations: {}, labels: { app: 'x' }, name: 'web', namespace: 'default' }, spec: { image: 'nginx:1.25' } })}\n`;
    const csaLive = () => update(undefined, stored({ image: 'nginx:1.25' }, { labels: { app: 'x' }, annotations: { [LAST_APPLIED_ANNOTATION]: lastApplied } }), 'kubectl-client-side-apply');

    it('lets kubectl take fields whose live value is still the last-applied one, and rewrites the annotation', () => {
      expect(csaConfig.spec.image).toBe('nginx:1.25');
      const out = apply(csaLive(), config({ image: 'nginx:1.27' }, { labels: { app: 'x' } }), 'kubectl');
      expect(out.spec.image).toBe('nginx:1.27');
      expect(out.metadata.annotations[LAST_APPLIED_ANNOTATION]).toBe(
        '{"apiVersion":"berth.dev/v1","kind":"Container","metadata":{"labels":{"app":"x"},"name":"web","namespace":"default"},"spec":{"image":"nginx:1.27"}}\n',
      );
      expect(owners(out)).toEqual({
        'kubectl/Apply': { 'f:metadata': { 'f:labels': { 'f:app': {} } }, 'f:spec': { 'f:image': {} } },
        'kubectl-client-side-apply/Update': {
          'f:metadata': { 'f:annotations': { '.': {}, [`f:${LAST_APPLIED_ANNOTATION}`]: {} }, 'f:labels': { '.': {}, 'f:app': {} } },
          // The creator still owns `spec` itself (kube's Compare adds a new object's own path).
          'f:spec': {},
        },
      });
    });

    it('rewrites the annotation on every kubectl apply, even without conflicts', () => {
      const live = apply(csaLive(), config({ image: 'nginx:1.25' }, { labels: { app: 'x' }, annotations: { note: 'n' } }), 'kubectl');
      expect(JSON.parse(live.metadata.annotations[LAST_APPLIED_ANNOTATION])).toEqual({
        apiVersion: V,
        kind: 'Container',
        metadata: { annotations: { note: 'n' }, labels: { app: 'x' }, name: 'web', namespace: 'default' },
        spec: { image: 'nginx:1.25' },
      });
      expect(live.metadata.annotations.note).toBe('n');
    });

    it('still conflicts on a field changed since the last client-side apply', () => {
      const edited = csaLive();
      const live = update(edited, { ...edited, spec: { image: 'nginx:1.26' } }, 'kubectl-edit');
      const e = thrown(() => apply(live, config({ image: 'nginx:1.27' }), 'kubectl'));
      expect(e.message).toBe('Apply failed with 1 conflict: conflict with "kubectl-edit" using berth.dev/v1: .spec.image');
    });

    it('reports only the conflicts the annotation does not explain', () => {
      const live = update(csaLive(), { ...csaLive(), spec: { image: 'nginx:1.25', tty: true } }, 'kubectl-edit');
      const e = thrown(() => apply(live, config({ image: 'nginx:1.27', tty: false }), 'kubectl'));
      expect(e.message).toBe('Apply failed with 1 conflict: conflict with "kubectl-edit" using berth.dev/v1: .spec.tty');
    });

    it('does not apply the rule to other managers, nor touch their annotation', () => {
      const e = thrown(() => apply(csaLive(), config({ image: 'nginx:1.27' }), 'helm'));
      expect(e.code).toBe(409);
      const out = apply(csaLive(), config({ image: 'nginx:1.25' }), 'helm');
      expect(out.metadata.annotations[LAST_APPLIED_ANNOTATION]).toBe(lastApplied);
    });

    it('lets kubectl-last-applied share the rewritten annotation, then keeps a managedFields rewrite as sent', () => {
      const live = apply(csaLive(), config({ image: 'nginx:1.27' }, { labels: { app: 'x' } }), 'kubectl');
      const annotation = live.metadata.annotations[LAST_APPLIED_ANNOTATION];
      const justAnnotation = { apiVersion: V, kind: 'Container', metadata: { name: 'web', namespace: 'default', annotations: { [LAST_APPLIED_ANNOTATION]: annotation } } };
      const out = apply(live, justAnnotation, 'kubectl-last-applied', { now: T2 });
      expect(out.metadata.annotations[LAST_APPLIED_ANNOTATION]).toBe(annotation);
      expect(owners(out)['kubectl-last-applied/Apply']).toEqual({ 'f:metadata': { 'f:annotations': { [`f:${LAST_APPLIED_ANNOTATION}`]: {} } } });

      // kubectl then folds the client-side entry into its own with a JSON patch on managedFields.
      const migrated = [{ ...out.metadata.managedFields[0], fieldsV1: { 'f:metadata': { 'f:labels': { 'f:app': {} } }, 'f:spec': { 'f:image': {} } } }];
      const sent = { ...out, metadata: { ...out.metadata, managedFields: migrated } };
      expect(recordUpdate({ live: out, updated: sent, manager: 'kubectl', apiVersion: V, now: T2 })).toEqual(migrated);
    });

    it('does not add the annotation when the object has none', () => {
      const out = apply(stored({}), config({ image: 'a' }), 'kubectl');
      expect(out.metadata.annotations).toBeUndefined();
    });
  });

  describe('keyed lists', () => {
    it('owns env entries one by one, by name', () => {
      let live = apply(stored({}), config({ env: [{ name: 'A', value: '1' }] }), 'alice');
      live = apply(live, config({ env: [{ name: 'B', value: '2' }] }), 'bob');
      expect(live.spec.env).toEqual([
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ]);
      expect(owners(live)).toEqual({
        'alice/Apply': { 'f:spec': { 'f:env': { 'k:{"name":"A"}': { '.': {}, 'f:name': {}, 'f:value': {} } } } },
        'bob/Apply': { 'f:spec': { 'f:env': { 'k:{"name":"B"}': { '.': {}, 'f:name': {}, 'f:value': {} } } } },
      });

      const e = thrown(() => apply(live, config({ env: [{ name: 'A', value: '9' }] }), 'bob'));
      expect(e.message).toBe('Apply failed with 1 conflict: conflict with "alice": .spec.env[name="A"].value');

      const out = apply(live, config({}), 'alice');
      expect(out.spec.env).toEqual([{ name: 'B', value: '2' }]);
      expect(Object.keys(owners(out))).toEqual(['bob/Apply']);
    });

    it('keys ports by containerPort and protocol and prints both in conflicts', () => {
      const live = apply(stored({}), config({ ports: [{ containerPort: 80, protocol: 'TCP', hostPort: 8080 }] }), 'alice');
      expect(owners(live)['alice/Apply']).toEqual({
        'f:spec': { 'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {}, 'f:hostPort': {}, 'f:protocol': {} } } },
      });
      const e = thrown(() => apply(live, config({ ports: [{ containerPort: 80, protocol: 'TCP', hostPort: 9090 }] }), 'bob'));
      expect(e.details?.causes?.[0]?.field).toBe('.spec.ports[containerPort=80,protocol="TCP"].hostPort');
    });

    it('keys an item that leaves a key field out with its default, matching the stored, defaulted item (protocol: TCP)', () => {
      const listMapKeyDefaults = (p: readonly string[]) => (p.join('.') === 'spec.ports' ? { protocol: 'TCP' } : undefined);
      // as stored after defaulting: the applied {containerPort: 80} got protocol TCP
      const live = apply(stored({}), config({ ports: [{ containerPort: 80, hostPort: 8080 }] }), 'alice', { listMapKeyDefaults });
      expect(owners(live)['alice/Apply']).toEqual({
        'f:spec': { 'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {}, 'f:hostPort': {} } } },
      });
      const defaulted = structuredClone(live);
      defaulted.spec.ports[0].protocol = 'TCP';
      const again = apply(defaulted, config({ ports: [{ containerPort: 80, hostPort: 9090 }] }), 'alice', { listMapKeyDefaults });
      expect(again.spec.ports).toEqual([{ containerPort: 80, hostPort: 9090, protocol: 'TCP' }]); // the same item, not a second one
      // without the defaults the two are different items: the old one is dropped and the new one lacks the protocol
      expect(apply(defaulted, config({ ports: [{ containerPort: 80, hostPort: 9090 }] }), 'alice').spec.ports).toEqual([{ containerPort: 80, hostPort: 9090 }]);
    });

    it('merges applied items into the live order as structured-merge-diff does', () => {
      const env = (...names: string[]) => names.map((name) => ({ name }));
      const live = update(undefined, stored({ env: env('A', 'B', 'C') }), 'editor');
      expect(apply(live, config({ env: env('C', 'A') }), 'kubectl').spec.env).toEqual(env('B', 'C', 'A'));
      expect(apply(live, config({ env: env('D', 'B') }), 'kubectl').spec.env).toEqual(env('A', 'D', 'B', 'C'));
    });

    it('treats a list without a key hint as atomic, replaced and owned whole', () => {
      const live = apply(stored({}), config({ command: ['a', 'b'] }), 'alice');
      expect(owners(live)['alice/Apply']).toEqual({ 'f:spec': { 'f:command': {} } });
      const e = thrown(() => apply(live, config({ command: ['a'] }), 'bob'));
      expect(e.details?.causes?.[0]?.field).toBe('.spec.command');
    });

    it.each([
      ['a repeated key', [{ name: 'A' }, { name: 'A' }], 'failed to create typed patch object: .spec.env: duplicate entries for key [name="A"]'],
      ['an item without its key', [{ value: '1' }], 'failed to create typed patch object: .spec.env: associative list with keys has an element that omits all key fields ["name"]'],
    ])('rejects a configuration with %s as 422', (_name, env, message) => {
      const e = thrown(() => apply(stored({}), config({ env }), 'kubectl'));
      expect(e.code).toBe(422);
      expect(e.message).toBe(message);
    });
  });

  it.each([
    ['carries managedFields', { ...config({}), metadata: { name: 'web', managedFields: [] } }, 'metadata.managedFields must be nil in an apply configuration'],
    ['names another version', { ...config({}), apiVersion: 'berth.dev/v2' }, 'Incorrect version specified in apply patch. Specified patch version: berth.dev/v2, expected: berth.dev/v1'],
  ])('rejects a configuration that %s with 400', (_name, cfg, message) => {
    const e = thrown(() => apply(stored({}), cfg, 'kubectl'));
    expect(e.code).toBe(400);
    expect(e.message).toBe(message);
  });

  it('treats null in a configuration as not applied', () => {
    const live = apply(stored({}), config({ image: 'a', command: ['sh'] }), 'kubectl');
    const out = apply(live, config({ image: 'a', command: null }), 'kubectl');
    expect(out.spec).toEqual({ image: 'a' });
  });
});

describe('recordUpdate', () => {
  it('gives a creator every field it set, except server-set metadata and status', () => {
    const obj = stored({ image: 'a', env: [{ name: 'A', value: '1' }] }, { labels: { app: 'x' } });
    expect(recordUpdate({ live: undefined, updated: obj, manager: 'kubectl-create', apiVersion: V, now: '2026-01-01T00:00:00.999Z', listMapKeys })).toEqual([
      {
        manager: 'kubectl-create',
        operation: 'Update',
        apiVersion: V,
        time: T0,
        fieldsType: 'FieldsV1',
        fieldsV1: {
          'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
          'f:spec': { '.': {}, 'f:env': { '.': {}, 'k:{"name":"A"}': { '.': {}, 'f:name': {}, 'f:value': {} } }, 'f:image': {} },
        },
      },
    ]);
  });

  // A create (no live object) takes a shortcut; an empty live object goes the general way.
  it.each([
    ['a Container with keyed and atomic lists', stored({ image: 'a', command: ['sh'], env: [{ name: 'A', value: '1' }, { name: 'B' }], ports: [{ containerPort: 80, protocol: 'TCP' }] }, { labels: { app: 'x' }, annotations: { a: 'b' } })],
    ['empty objects and lists, which own nothing or are owned whole', stored({ image: 'a', resources: {}, env: [], command: [], nested: { empty: {} } })],
    ['a keyed list with a repeated key, owned whole', stored({ env: [{ name: 'A' }, { name: 'A', value: '2' }] })],
    ['only server-set metadata', { apiVersion: V, kind: 'Container', metadata: { name: 'web', uid: 'u' } }],
    ['nothing but type meta', { apiVersion: V, kind: 'Container' }],
    ['undefined members and a generateName', { apiVersion: V, kind: 'Container', metadata: { generateName: 'web-', labels: undefined }, spec: { image: undefined, tty: false } }],
    ['a status through the status subresource', stored({ image: 'a' }), { subresource: 'status' }],
  ] as [string, Obj, Obj?][])('gives a creator of %s the fields the general path gives', (_name, obj, more = {}) => {
    const opts = { updated: frozen(structuredClone(obj)), manager: 'm', apiVersion: V, now: T0, listMapKeys, ...more };
    expect(recordUpdate({ ...opts, live: undefined })).toEqual(recordUpdate({ ...opts, live: {} }));
  });

  it('moves a changed field from its applier to the updater, dropping emptied entries', () => {
    const live = apply(stored({}), config({ image: 'a' }), 'kubectl');
    const out = update(live, { ...live, spec: { image: 'b' } }, 'kubectl-edit', T2);
    expect(owners(out)).toEqual({ 'kubectl-edit/Update': { 'f:spec': { 'f:image': {} } } });
    expect(out.metadata.managedFields[0].time).toBe(T2);
  });

  it('adds to an updater\'s earlier fields and keeps the other managers\' untouched ones', () => {
    let live = apply(stored({}), config({ image: 'a', tty: true }), 'kubectl');
    live = update(live, { ...live, spec: { ...live.spec, user: '0' } }, 'editor', T1);
    const out = update(live, { ...live, spec: { ...live.spec, image: 'b' } }, 'editor', T2);
    expect(owners(out)).toEqual({
      'kubectl/Apply': { 'f:spec': { 'f:tty': {} } },
      'editor/Update': { 'f:spec': { 'f:image': {}, 'f:user': {} } },
    });
  });

  it('takes removed fields away from every manager', () => {
    const live = apply(stored({}), config({ image: 'a', env: [{ name: 'A', value: '1' }, { name: 'B' }] }), 'kubectl');
    const out = update(live, { ...live, spec: { image: 'a', env: [{ name: 'B' }] } }, 'editor');
    expect(owners(out)).toEqual({ 'kubectl/Apply': { 'f:spec': { 'f:env': { 'k:{"name":"B"}': { '.': {}, 'f:name': {} } }, 'f:image': {} } } });
  });

  it('changes nothing, not even times, when nothing changed', () => {
    const live = apply(stored({}), config({ image: 'a' }), 'kubectl');
    expect(update(live, live, 'editor', T2)).toEqual(live);
  });

  it('records status writers separately and ignores spec through the status subresource', () => {
    const live = apply(stored({}), config({ image: 'a' }), 'kubectl');
    const out = update(live, { ...live, spec: { image: 'ignored' }, status: { phase: 'Exited', conditions: [{ type: 'Ready', status: 'False' }] } }, 'agent', T2, {
      subresource: 'status',
    });
    expect(owners(out)).toEqual({
      'kubectl/Apply': { 'f:spec': { 'f:image': {} } },
      'agent/Update/status': { 'f:status': { 'f:conditions': { '.': {}, 'k:{"type":"Ready"}': { '.': {}, 'f:status': {}, 'f:type': {} } }, 'f:phase': {} } },
    });
  });

  it('starts from the managedFields the client sent, so that [{}] resets ownership', () => {
    const live = apply(stored({}), config({ image: 'a' }), 'kubectl');
    const sent = { ...live, metadata: { ...live.metadata, managedFields: [{}] }, spec: { image: 'a', tty: true } };
    expect(recordUpdate({ live, updated: sent, manager: 'editor', apiVersion: V, now: T2, listMapKeys }).map((e) => e.manager)).toEqual(['editor']);
    const same = { ...live, metadata: { ...live.metadata, managedFields: [{}] } };
    expect(recordUpdate({ live, updated: same, manager: 'editor', apiVersion: V, now: T2 })).toEqual([]);
  });

  it('uses the live managedFields when the client sends malformed ones', () => {
    const live = apply(stored({}), config({ image: 'a' }), 'kubectl');
    const sent = { ...live, metadata: { ...live.metadata, managedFields: [{ manager: 'x', operation: 'Bogus', fieldsV1: { 'f:spec': {} } }] } };
    expect(recordUpdate({ live, updated: sent, manager: 'editor', apiVersion: V, now: T2 })).toEqual(live.metadata.managedFields);
  });

  it('keeps Apply entries before Update entries, oldest first', () => {
    let live = update(undefined, stored({ image: 'a' }), 'zeta', T0);
    live = update(live, { ...live, spec: { image: 'a', tty: true } }, 'alpha', T2);
    live = apply(live, config({ user: '0' }), 'kubectl');
    expect((live.metadata.managedFields as ManagedFieldsEntry[]).map((e) => e.manager)).toEqual(['kubectl', 'zeta', 'alpha']);
  });
});
