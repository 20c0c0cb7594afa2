import { describe, expect, it } from 'vitest';
import { RESOURCES } from '../registry/resources.ts';
import { loadOpenApiSpec, refClosure, type SchemaObject } from './openapi-spec.ts';

const spec = loadOpenApiSpec();
const schemas = spec.components.schemas;
const berth = RESOURCES.filter((r) => r.group === 'berth.dev');

/** The schema a property resolves to, through an `allOf: [{$ref}]` wrapper. */
const deref = (s: SchemaObject): SchemaObject => {
  const ref = s.$ref ?? s.allOf?.[0]?.$ref;
  return ref ? schemas[String(ref).split('/').pop()!]! : s;
};

describe('openapi.yaml', () => {
  it('is OpenAPI 3.0.3', () => {
    expect(spec.openapi).toBe('3.0.3');
  });

  it.each(RESOURCES.map((r) => [r.kind, r] as const))('has a %s schema and list, each marked with its group-version-kind', (_k, r) => {
    expect(schemas[r.schema]?.['x-kubernetes-group-version-kind']).toEqual([{ group: r.group, version: r.version, kind: r.kind }]);
    expect(schemas[r.listKind]?.['x-kubernetes-group-version-kind']).toEqual([{ group: r.group, version: r.version, kind: r.listKind }]);
    expect(deref(schemas[r.listKind]!.properties.items.items)).toBe(schemas[r.schema]);
    expect(deref(schemas[r.schema]!.properties.metadata)).toBe(schemas.ObjectMeta);
  });

  it.each(berth.map((r) => [r.kind]))('gives %s a status with observedGeneration and Ready/Reconciling/Stalled conditions', (kind) => {
    const status = deref(schemas[kind]!.properties.status);
    expect(status.properties.observedGeneration).toMatchObject({ type: 'integer', format: 'int64' });
    expect(status.properties.conditions.items.$ref).toBe('#/components/schemas/Condition');
    expect(schemas.Condition!.description).toMatch(/Ready.*Reconciling.*Stalled/s);
  });

  it('keeps every field DESIGN.md sketches', () => {
    const fields = (name: string) => Object.keys(schemas[name]!.properties);
    expect(fields('ContainerSpec')).toEqual(
      expect.arrayContaining(['image', 'imagePullPolicy', 'command', 'args', 'env', 'workingDir', 'user', 'hostname', 'tty', 'stdin', 'state', 'restartPolicy', 'stopSignal', 'stopGracePeriodSeconds', 'resources', 'ports', 'volumeMounts', 'networks', 'healthcheck', 'nodeName']),
    );
    expect(fields('ContainerStatus')).toEqual(expect.arrayContaining(['phase', 'containerID', 'nodeName', 'ip', 'startedAt', 'finishedAt', 'exitCode', 'reason', 'restartCount', 'observedGeneration', 'conditions']));
    expect(schemas.ContainerStatus!.properties.phase.enum).toEqual(['Pending', 'Created', 'Running', 'Paused', 'Exited']);
    expect(schemas.ContainerSpec!.properties.state).toMatchObject({ enum: ['Running', 'Paused', 'Stopped'], default: 'Running' });
    expect(fields('ImageSource')).toEqual(['import', 'pull', 'build', 'commit']);
    expect(fields('ImageSpec')).toEqual(expect.arrayContaining(['source', 'tags', 'push']));
    expect(schemas.ImageStatus!.properties.phase.enum).toEqual(['Pending', 'Pulling', 'Building', 'Pushing', 'Ready', 'Failed']);
    expect(fields('ServiceSpec')).toEqual(expect.arrayContaining(['mode', 'replicas', 'template', 'updateConfig', 'placement']));
    expect(fields('UpdateConfig')).toEqual(expect.arrayContaining(['parallelism', 'delaySeconds', 'failureAction', 'order', 'monitorSeconds']));
    expect(fields('NetworkSpec')).toEqual(expect.arrayContaining(['driver', 'subnet', 'outbound']));
    expect(fields('NodeSpec')).toEqual(['role', 'availability']);
    expect(fields('NodeStatus')).toEqual(expect.arrayContaining(['capacity', 'allocatable', 'runtime', 'addresses', 'conditions']));
  });

  it('describes every schema and every property, for kubectl explain', () => {
    const missing: string[] = [];
    for (const [name, s] of Object.entries(schemas)) {
      if (!s.description) missing.push(name);
      for (const [p, ps] of Object.entries((s.properties ?? {}) as Record<string, SchemaObject>)) if (!ps.description) missing.push(`${name}.${p}`);
    }
    expect(missing).toEqual([]);
  });

  it('refers only to schemas that exist, and every schema is used by a served kind', () => {
    const used = refClosure(schemas, ['Status', 'DeleteOptions', ...RESOURCES.flatMap((r) => [r.schema, r.listKind])]);
    expect(used.sort()).toEqual(Object.keys(schemas).sort());
  });
});
