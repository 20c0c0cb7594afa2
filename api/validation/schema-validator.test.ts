import { describe, expect, it } from 'vitest';
import type { FieldError } from '../errors.ts';
import { RESOURCES } from '../registry/resources.ts';
import { loadOpenApiSpec } from './openapi-spec.ts';
import { SchemaValidator, schemaValidator } from './schema-validator.ts';

const v = schemaValidator();
const strict = { unknownFields: 'Strict' } as const;
const T = '2026-01-02T03:04:05Z';
const ready = [{ type: 'Ready', status: 'True', reason: 'Running', observedGeneration: 1, lastTransitionTime: T }];

const container = () => ({
  apiVersion: 'berth.dev/v1',
  kind: 'Container',
  metadata: { name: 'web', namespace: 'default', labels: { app: 'web', 'app.kubernetes.io/name': 'web' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } },
  spec: {
    image: 'busybox',
    imagePullPolicy: 'IfNotPresent',
    command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    args: [],
    env: [{ name: 'GREETING', value: 'hello' }],
    workingDir: '/',
    user: '0',
    hostname: 'web',
    tty: false,
    stdin: false,
    state: 'Running',
    restartPolicy: 'Always',
    stopSignal: 'SIGTERM',
    stopGracePeriodSeconds: 10,
    resources: { memory: '64Mi', cpus: '0.5', pids: 64 },
    ports: [{ containerPort: 8080, hostPort: 18080, hostIP: '127.0.0.1', protocol: 'TCP' }],
    volumeMounts: [{ name: 'www', mountPath: '/www', readOnly: true }],
    networks: [{ name: 'backend', aliases: ['www'] }],
    healthcheck: { exec: ['nc', '-z', '127.0.0.1', '8080'], intervalSeconds: 5, timeoutSeconds: 2, retries: 3 },
    nodeName: '',
  },
  status: {
    phase: 'Running',
    containerID: 'abc',
    nodeName: 'node-1',
    ip: '10.89.0.7',
    startedAt: T,
    finishedAt: null,
    exitCode: null,
    reason: '',
    restartCount: 0,
    observedGeneration: 1,
    conditions: ready,
  },
});

const meta = (name: string, extra: object = {}) => ({ name, ...extra });

/** One valid object per kind, shaped as DESIGN.md sketches them. */
const validCases: { name: string; schema: string; obj: unknown }[] = [
  { name: 'a Container as in DESIGN.md', schema: 'Container', obj: container() },
  { name: 'a minimal Container', schema: 'Container', obj: { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: meta('x'), spec: { image: 'busybox' } } },
  {
    name: 'a Container with kubectl create --dry-run output quirks',
    schema: 'Container',
    obj: { apiVersion: 'berth.dev/v1', kind: 'Container', metadata: meta('x', { creationTimestamp: null }), spec: { image: 'b', resources: { memory: 67108864, cpus: 2 } }, status: {} },
  },
  {
    name: 'a stored Container with managedFields and owners',
    schema: 'Container',
    obj: {
      apiVersion: 'berth.dev/v1',
      kind: 'Container',
      metadata: {
        name: 'api-1',
        namespace: 'default',
        uid: 'u',
        resourceVersion: '12',
        generation: 2,
        creationTimestamp: T,
        deletionTimestamp: T,
        deletionGracePeriodSeconds: 10,
        finalizers: ['berth.dev/runtime'],
        ownerReferences: [{ apiVersion: 'berth.dev/v1', kind: 'Service', name: 'api', uid: 'u2', controller: true, blockOwnerDeletion: true }],
        managedFields: [{ manager: 'kubectl', operation: 'Apply', apiVersion: 'berth.dev/v1', time: T, fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:image': {} } } }],
      },
      spec: { image: 'busybox' },
    },
  },
  { name: 'an Image imported', schema: 'Image', obj: { apiVersion: 'berth.dev/v1', kind: 'Image', metadata: meta('busybox'), spec: { source: { import: { path: '/srv/images/busybox.tar' } }, tags: ['busybox:latest'], push: [{ reference: '127.0.0.1:5000/team/busybox:1.35', credentialsSecret: 'regcred' }] }, status: { phase: 'Ready', digest: 'sha256:0', size: 1234567, conditions: ready } } },
  { name: 'an Image pulled', schema: 'Image', obj: { spec: { source: { pull: { reference: '127.0.0.1:5000/team/app:1.2', credentialsSecret: 'regcred' } } } } },
  { name: 'an Image built from a path', schema: 'Image', obj: { spec: { source: { build: { context: { path: '/src/app' }, dockerfile: 'Dockerfile', buildArgs: { K: 'V', 'weird.key/x': 'y' }, target: 'final' } } } } },
  { name: 'an Image built from git', schema: 'Image', obj: { spec: { source: { build: { context: { git: { url: '/repos/app.git', ref: 'main', subPath: '.' } } } } } } },
  { name: 'an Image built from an upload', schema: 'Image', obj: { spec: { source: { build: { context: { archive: { digest: `sha256:${'a'.repeat(64)}` } } } } } } },
  { name: 'an Image committed', schema: 'Image', obj: { spec: { source: { commit: { container: 'web', pause: true, changes: { cmd: ['sh'], env: [{ name: 'A', value: 'b' }] } } } } } },
  { name: 'a Volume', schema: 'Volume', obj: { apiVersion: 'berth.dev/v1', kind: 'Volume', metadata: meta('www'), spec: { driver: 'local' }, status: { phase: 'Available', nodeName: 'n', mountpoint: '/var/lib/berth/volumes/www', observedGeneration: 1, conditions: ready } } },
  { name: 'a Network', schema: 'Network', obj: { apiVersion: 'berth.dev/v1', kind: 'Network', metadata: meta('backend'), spec: { driver: 'bridge', subnet: '10.90.0.0/24', outbound: false }, status: { phase: 'Ready', bridge: 'br-1', observedGeneration: 1, conditions: ready } } },
  {
    name: 'a Service',
    schema: 'Service',
    obj: {
      apiVersion: 'berth.dev/v1',
      kind: 'Service',
      metadata: meta('api'),
      spec: {
        mode: 'Replicated',
        replicas: 3,
        template: { metadata: { labels: { app: 'api' } }, spec: { image: 'busybox', command: ['sleep', '3600'] } },
        updateConfig: { parallelism: 1, delaySeconds: 5, failureAction: 'pause', order: 'stop-first', monitorSeconds: 5 },
        placement: { constraints: ['node.role==worker'] },
      },
      status: { replicas: 3, readyReplicas: 3, updatedReplicas: 3, observedGeneration: 1, conditions: ready },
    },
  },
  {
    name: 'a Node',
    schema: 'Node',
    obj: { apiVersion: 'berth.dev/v1', kind: 'Node', metadata: meta('node-1', { labels: { zone: 'a' } }), spec: { role: 'manager', availability: 'Active' }, status: { capacity: { cpu: '2', memory: '24Gi', pids: '4194304' }, runtime: { name: 'runc', version: '1.1.5' }, addresses: [{ type: 'InternalIP', address: '10.0.0.1' }], conditions: ready } },
  },
  { name: 'a Namespace', schema: 'Namespace', obj: { apiVersion: 'v1', kind: 'Namespace', metadata: meta('team-a'), spec: { finalizers: ['kubernetes'] }, status: { phase: 'Terminating' } } },
  {
    name: 'an Event',
    schema: 'Event',
    obj: { apiVersion: 'v1', kind: 'Event', metadata: meta('web.1'), involvedObject: { apiVersion: 'berth.dev/v1', kind: 'Container', namespace: 'default', name: 'web', uid: 'u' }, reason: 'Started', message: 'started', type: 'Normal', count: 2, firstTimestamp: T, lastTimestamp: T, eventTime: null, source: { component: 'berth-agent', host: 'node-1' }, reportingComponent: 'berth-agent', reportingInstance: 'node-1', action: 'Start', series: { count: 2, lastObservedTime: T } },
  },
  { name: 'a Lease', schema: 'Lease', obj: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: meta('node-1'), spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40, acquireTime: T, renewTime: '2026-01-02T03:04:05.123456Z', leaseTransitions: 0 } } },
  { name: 'a Secret', schema: 'Secret', obj: { apiVersion: 'v1', kind: 'Secret', metadata: meta('regcred'), type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'e30=' }, immutable: false } },
  { name: 'a ContainerList', schema: 'ContainerList', obj: { apiVersion: 'berth.dev/v1', kind: 'ContainerList', metadata: { resourceVersion: '5', continue: '' }, items: [container()] } },
  { name: 'a Status', schema: 'Status', obj: { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', reason: 'Invalid', code: 422, details: { name: 'x', causes: [{ reason: 'FieldValueRequired', field: 'spec.image', message: 'Required value' }] } } },
  { name: 'DeleteOptions', schema: 'DeleteOptions', obj: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, propagationPolicy: 'Foreground', preconditions: { resourceVersion: '3' }, dryRun: ['All'] } },
];

describe('SchemaValidator', () => {
  it.each(validCases)('accepts $name', ({ schema, obj }) => {
    expect(v.validate(schema, obj, strict)).toEqual({ errors: [], unknownFields: [] });
  });

  it('has a valid case for every served kind', () => {
    for (const r of RESOURCES) expect(validCases.map((c) => c.schema)).toContain(r.schema);
  });

  const ctr = (spec: object) => ({ apiVersion: 'berth.dev/v1', kind: 'Container', metadata: meta('x'), spec: { image: 'busybox', ...spec } });
  const errorCases: { name: string; schema: string; obj: unknown; want: FieldError[] }[] = [
    { name: 'a missing required field', schema: 'Container', obj: { metadata: meta('x'), spec: {} }, want: [{ reason: 'FieldValueRequired', field: 'spec.image', message: 'Required value' }] },
    { name: 'an empty required string', schema: 'Container', obj: ctr({ image: '' }), want: [{ reason: 'FieldValueRequired', field: 'spec.image', message: 'Required value' }] },
    { name: 'a missing spec', schema: 'Container', obj: { metadata: meta('x') }, want: [{ reason: 'FieldValueRequired', field: 'spec', message: 'Required value' }] },
    { name: 'a missing name in an array item', schema: 'Container', obj: ctr({ env: [{ name: 'A' }, { value: 'b' }] }), want: [{ reason: 'FieldValueRequired', field: 'spec.env[1].name', message: 'Required value' }] },
    {
      name: 'a value outside an enum',
      schema: 'Container',
      obj: ctr({ restartPolicy: 'Sometimes' }),
      want: [{ reason: 'FieldValueNotSupported', field: 'spec.restartPolicy', message: 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"' }],
    },
    {
      name: 'a string where an integer belongs',
      schema: 'Service',
      obj: { metadata: meta('s'), spec: { replicas: 'string', template: { spec: { image: 'b' } } } },
      want: [{ reason: 'FieldValueTypeInvalid', field: 'spec.replicas', message: 'Invalid value: "string": spec.replicas in body must be of type integer: "string"' }],
    },
    { name: 'a negative replica count', schema: 'Service', obj: { spec: { replicas: -1, template: { spec: { image: 'b' } } } }, want: [{ reason: 'FieldValueInvalid', field: 'spec.replicas', message: 'Invalid value: -1: must be greater than or equal to 0' }] },
    { name: 'a console size of no columns', schema: 'Container', obj: ctr({ tty: true, consoleSize: { width: 0, height: 24 } }), want: [{ reason: 'FieldValueInvalid', field: 'spec.consoleSize.width', message: 'Invalid value: 0: must be greater than or equal to 1' }] },
    { name: 'a port above 65535', schema: 'Container', obj: ctr({ ports: [{ containerPort: 70000 }] }), want: [{ reason: 'FieldValueInvalid', field: 'spec.ports[0].containerPort', message: 'Invalid value: 70000: must be less than or equal to 65535' }] },
    {
      name: 'a fraction where an integer belongs',
      schema: 'Container',
      obj: ctr({ stopGracePeriodSeconds: 1.5 }),
      want: [{ reason: 'FieldValueTypeInvalid', field: 'spec.stopGracePeriodSeconds', message: 'Invalid value: "number": spec.stopGracePeriodSeconds in body must be of type integer: "number"' }],
    },
    {
      name: 'a boolean where int-or-string belongs',
      schema: 'Container',
      obj: ctr({ resources: { memory: true } }),
      want: [{ reason: 'FieldValueTypeInvalid', field: 'spec.resources.memory', message: 'Invalid value: "boolean": spec.resources.memory in body must be of type integer or string: "boolean"' }],
    },
    { name: 'an object where an array belongs', schema: 'Container', obj: ctr({ command: 'sh -c x' }), want: [{ reason: 'FieldValueTypeInvalid', field: 'spec.command', message: 'Invalid value: "string": spec.command in body must be of type array: "string"' }] },
    {
      name: 'a bad timestamp',
      schema: 'Container',
      obj: { ...ctr({}), status: { startedAt: 'yesterday' } },
      want: [{ reason: 'FieldValueInvalid', field: 'status.startedAt', message: 'Invalid value: "yesterday": status.startedAt in body must be of type date-time: "yesterday"' }],
    },
    { name: 'a null that is not nullable', schema: 'Container', obj: ctr({ hostname: null }), want: [{ reason: 'FieldValueTypeInvalid', field: 'spec.hostname', message: 'Invalid value: "null": spec.hostname in body must be of type string: "null"' }] },
    { name: 'a non-string label value', schema: 'Container', obj: { metadata: meta('x', { labels: { n: 1 } }), spec: { image: 'b' } }, want: [{ reason: 'FieldValueTypeInvalid', field: 'metadata.labels.n', message: 'Invalid value: "integer": metadata.labels.n in body must be of type string: "integer"' }] },
    { name: 'an image with no source', schema: 'Image', obj: { spec: { source: {} } }, want: [{ reason: 'FieldValueRequired', field: 'spec.source', message: 'Required value: must specify exactly one of: import, pull, build, commit' }] },
    {
      name: 'an image with two sources',
      schema: 'Image',
      obj: { spec: { source: { pull: { reference: 'a' }, import: { path: '/x' } } } },
      want: [{ reason: 'FieldValueForbidden', field: 'spec.source', message: 'Forbidden: may not specify more than one of: import, pull' }],
    },
    { name: 'an empty healthcheck command', schema: 'Container', obj: ctr({ healthcheck: { exec: [] } }), want: [{ reason: 'FieldValueRequired', field: 'spec.healthcheck.exec', message: 'Required value' }] },
    { name: 'a bad archive digest', schema: 'Image', obj: { spec: { source: { build: { context: { archive: { digest: 'md5:x' } } } } } }, want: [{ reason: 'FieldValueInvalid', field: 'spec.source.build.context.archive.digest', message: `Invalid value: "md5:x": spec.source.build.context.archive.digest in body should match '^sha256:[a-f0-9]{64}$'` }] },
    { name: 'a condition status outside True/False/Unknown', schema: 'Node', obj: { status: { conditions: [{ type: 'Ready', status: 'true' }] } }, want: [{ reason: 'FieldValueNotSupported', field: 'status.conditions[0].status', message: 'Unsupported value: "true": supported values: "True", "False", "Unknown"' }] },
    { name: 'an Event without involvedObject', schema: 'Event', obj: { metadata: meta('e') }, want: [{ reason: 'FieldValueRequired', field: 'involvedObject', message: 'Required value' }] },
    {
      name: 'several bad fields, one error each',
      schema: 'Container',
      obj: ctr({ state: 'Dead', ports: [{ containerPort: 'http', protocol: 'SCTP' }], env: [{}] }),
      want: [
        { reason: 'FieldValueRequired', field: 'spec.env[0].name', message: 'Required value' },
        { reason: 'FieldValueNotSupported', field: 'spec.state', message: 'Unsupported value: "Dead": supported values: "Running", "Paused", "Stopped"' },
        { reason: 'FieldValueTypeInvalid', field: 'spec.ports[0].containerPort', message: 'Invalid value: "string": spec.ports[0].containerPort in body must be of type integer: "string"' },
        { reason: 'FieldValueNotSupported', field: 'spec.ports[0].protocol', message: 'Unsupported value: "SCTP": supported values: "TCP", "UDP"' },
      ],
    },
  ];

  it.each(errorCases)('rejects $name', ({ schema, obj, want }) => {
    const got = v.validate(schema, obj, strict);
    expect(got.unknownFields).toEqual([]);
    expect(new Set(got.errors.map((e) => JSON.stringify(e)))).toEqual(new Set(want.map((e) => JSON.stringify(e))));
  });

  const unknownCases: { name: string; schema: string; obj: unknown; want: string[] }[] = [
    { name: 'a top-level field', schema: 'Container', obj: { ...ctr({}), colour: 'red' }, want: ['colour'] },
    { name: 'a field in spec', schema: 'Container', obj: ctr({ colour: 'red' }), want: ['spec.colour'] },
    { name: 'a field in metadata', schema: 'Container', obj: { metadata: meta('x', { colour: 'red' }), spec: { image: 'b' } }, want: ['metadata.colour'] },
    { name: 'fields in array items', schema: 'Container', obj: ctr({ ports: [{ containerPort: 1 }, { containerPort: 2, colour: 'red' }], env: [{ name: 'A', valueFrom: {} }] }), want: ['spec.ports[1].colour', 'spec.env[0].valueFrom'] },
    {
      name: 'a field deep in a service template',
      schema: 'Service',
      obj: { spec: { template: { metadata: { labels: { a: 'b' }, name: 'x' }, spec: { image: 'b', healthcheck: { exec: ['true'], interval: 5 } } } } },
      want: ['spec.template.metadata.name', 'spec.template.spec.healthcheck.interval'],
    },
    { name: 'a misspelt image source (and no source)', schema: 'Image', obj: { spec: { source: { pul: { reference: 'x' } } } }, want: ['spec.source.pul'] },
  ];

  it.each(unknownCases)('reports unknown $name without failing on it', ({ schema, obj, want }) => {
    const got = v.validate(schema, obj, strict);
    expect(got.unknownFields.sort()).toEqual([...want].sort());
    expect(v.validate(schema, obj, { unknownFields: 'Warn' }).unknownFields.sort()).toEqual([...want].sort());
    if (schema !== 'Image') expect(got.errors).toEqual([]);
  });

  it('reports unknown fields under every policy, so that Ignore callers can prune them', () => {
    for (const unknownFields of ['Strict', 'Warn', 'Ignore'] as const)
      expect(v.validate('Container', ctr({ colour: 'red' }), { unknownFields })).toEqual({ errors: [], unknownFields: ['spec.colour'] });
  });

  it('does not flag keys of free-form maps: labels, annotations, buildArgs, options, capacity, fieldsV1', () => {
    const obj = {
      metadata: {
        name: 'x',
        labels: { anything: 'goes', 'example.com/k': 'v' },
        annotations: { 'a/b': 'c' },
        managedFields: [{ manager: 'm', fieldsV1: { 'f:spec': { 'f:anything': {} }, 'k:{"name":"x"}': {} } }],
      },
      spec: { source: { build: { context: { path: '/' }, buildArgs: { ANY_ARG: '1' } } } },
    };
    expect(v.validate('Image', obj, strict)).toEqual({ errors: [], unknownFields: [] });
    expect(v.validate('Volume', { spec: { options: { type: 'tmpfs', o: 'size=1m' } } }, strict)).toEqual({ errors: [], unknownFields: [] });
    expect(v.validate('Node', { status: { capacity: { 'example.com/gpu': '1' } } }, strict)).toEqual({ errors: [], unknownFields: [] });
  });

  it('prunes unknown fields in place and keeps everything declared', () => {
    const obj = ctr({ colour: 'red', ports: [{ containerPort: 1, colour: 'blue' }] }) as Record<string, any>;
    obj.metadata.labels = { keep: 'me' };
    obj.extra = { nested: true };
    expect(v.prune('Container', obj).sort()).toEqual(['extra', 'spec.colour', 'spec.ports[0].colour']);
    expect(obj).toEqual({ ...ctr({ ports: [{ containerPort: 1 }] }), metadata: meta('x', { labels: { keep: 'me' } }) });
    expect(v.validate('Container', obj, strict)).toEqual({ errors: [], unknownFields: [] });
  });

  it('prunes nothing from a valid object', () => {
    const obj = container();
    expect(v.prune('Container', obj)).toEqual([]);
    expect(obj).toEqual(container());
  });

  it('does not mutate the object it validates', () => {
    const obj = ctr({ colour: 'red', state: 'Dead' });
    v.validate('Container', obj, strict);
    expect(obj).toEqual(ctr({ colour: 'red', state: 'Dead' }));
  });

  it('fills schema defaults only where the parent object exists', () => {
    const obj: Record<string, any> = { metadata: meta('x'), spec: { image: 'b', ports: [{ containerPort: 80 }] } };
    v.applyDefaults('Container', obj);
    expect(obj.spec).toMatchObject({ state: 'Running', restartPolicy: 'Always', imagePullPolicy: 'IfNotPresent', stopGracePeriodSeconds: 10, ports: [{ containerPort: 80, protocol: 'TCP' }] });
    expect(obj.spec.healthcheck).toBeUndefined();
    expect(obj.status).toBeUndefined();
  });

  it('throws for a schema name openapi.yaml does not have', () => {
    expect(() => v.validate('Widget', {}, strict)).toThrow(/no schema "Widget"/);
  });

  it('compiles every schema of openapi.yaml in ajv strict mode', () => {
    const fresh = new SchemaValidator(loadOpenApiSpec());
    for (const name of fresh.schemaNames()) expect(() => fresh.validate(name, {}, strict)).not.toThrow();
  });

  it('validates a typical Container in well under 0.1 ms', () => {
    const obj = container();
    for (let i = 0; i < 1000; i++) v.validate('Container', obj, strict);
    const n = 20_000;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) v.validate('Container', obj, strict);
    const perCallMs = (performance.now() - t0) / n;
    expect(perCallMs).toBeLessThan(0.1);
  });
});
