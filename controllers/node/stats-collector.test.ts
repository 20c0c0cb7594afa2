import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../runtime/cri/index.ts';
import { FakeRuntimeService } from '../../runtime/testing/index.ts';
import { CONTAINER_METRICS, ContainerStatsCollector } from './stats-collector.ts';

const config = (name: string, memoryBytes?: number): ContainerConfig => ({
  name: `default_${name}_1`,
  image: 'busybox',
  command: ['sleep', '3600'],
  labels: { 'berth.dev/namespace': 'default', 'berth.dev/name': name },
  ...(memoryBytes ? { resources: { memoryBytes } } : {}),
});

async function scrape(maxAgeMs?: number) {
  const runtime = new FakeRuntimeService();
  const web = await runtime.createContainer(config('web', 64 * 2 ** 20));
  await runtime.startContainer(web);
  const db = await runtime.createContainer(config('db'));
  await runtime.startContainer(db);
  await runtime.createContainer(config('created-only'));
  const registry = new Registry();
  new ContainerStatsCollector({ runtime, registry, ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) });
  return { runtime, registry, web, db, text: await registry.metrics() };
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

describe('ContainerStatsCollector', () => {
  it('exports cAdvisor metrics for each running container, labelled with its Container', async () => {
    const { registry, web, db, text } = await scrape();
    for (const name of CONTAINER_METRICS) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toContain('# TYPE container_cpu_usage_seconds_total counter');
    expect(text).toContain(`container_spec_memory_limit_bytes{namespace="default",name="web",id="${web}"} ${64 * 2 ** 20}`);
    expect(text).toContain(`container_spec_memory_limit_bytes{namespace="default",name="db",id="${db}"} 0`);
    expect(text).toContain(`container_memory_working_set_bytes{namespace="default",name="web",id="${web}"} ${2 ** 20}`);
    expect(text).toContain(`container_processes{namespace="default",name="db",id="${db}"} 1`);
    expect(text).not.toContain('name="created-only"');
    const metric = (await registry.getSingleMetricAsString('container_memory_usage_bytes')).split('\n').filter((l) => !l.startsWith('#'));
    expect(metric).toHaveLength(2);
  });

  it('reads stats once per scrape for all five metrics, and drops containers that went away', async () => {
    const { runtime, registry, web } = await scrape(0);
    const before = runtime.calls.filter((c) => c === 'containerStats').length;
    expect(before).toBe(2);
    await runtime.removeContainer(web);
    const text = await registry.metrics();
    expect(runtime.calls.filter((c) => c === 'containerStats').length).toBe(3);
    expect(text).not.toContain(web);
  });

  it.skipIf(!hasPromtool)('passes promtool check metrics', async () => {
    const { text } = await scrape();
    const out = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(out.stdout + out.stderr).toBe('');
    expect(out.status).toBe(0);
  });
});
