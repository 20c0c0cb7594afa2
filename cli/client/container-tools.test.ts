import { describe, expect, it } from 'vitest';
import type { ContainerStatsReport } from '../../controllers/node/container-stats-report.ts';
import { archiveTags, execResult, historyRows, humanBinary, parseCpArg, renameTransform, sampleOf, statsRow } from './container-tools.ts';

describe('cp arguments', () => {
  it.each([
    ['web:/etc/hosts', { container: 'web', path: '/etc/hosts' }],
    ['web:', { container: 'web', path: '/' }],
    ['web:rel/x', { container: 'web', path: 'rel/x' }],
    ['./web:x', { path: './web:x' }],
    ['/tmp/a:b', { path: '/tmp/a:b' }],
    ['-', { path: '-' }],
    ['file.txt', { path: 'file.txt' }],
  ])('%s', (arg, want) => {
    expect(parseCpArg(arg)).toEqual(want);
  });

  it('renames the top entry with a GNU tar transform, escaping the names', () => {
    expect(renameTransform('a.txt', 'a.txt')).toEqual([]);
    expect(renameTransform('a.txt', 'b&c')).toEqual(['--transform', 's|^a\\.txt|b\\&c|']);
  });
});

describe('exec results', () => {
  it.each([
    [{ status: 'Success' }, { code: 0 }],
    [{ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '2' }] } }, { code: 2 }],
    [{ status: 'Failure', message: 'container not running' }, { code: 126, message: 'container not running' }],
    [undefined, { code: 1, message: 'the exec stream ended without a status' }],
  ])('%j → %j', (status, want) => {
    expect(execResult(status)).toEqual(want);
  });
});

describe('stats', () => {
  const report = (cpuNs: number, at: string, limitBytes?: number): ContainerStatsReport => ({
    kind: 'ContainerStats', apiVersion: 'berth.dev/v1', metadata: { name: 'web', namespace: 'default' }, id: 'abc', timestamp: at,
    cpu: { usageNanoseconds: cpuNs, onlineCPUs: 2 },
    memory: { usageBytes: 3 << 20, workingSetBytes: 1 << 20, ...(limitBytes !== undefined ? { limitBytes } : {}), nodeBytes: 4_000_000_000 },
    pids: 1,
    network: { rxBytes: 1500, txBytes: 2000 },
  });

  it('takes a reading of the stats subresource as a sample: working set as memory, the node\'s memory when there is no limit', () => {
    expect(sampleOf(report(2e9, '2026-12-06T00:00:00.000Z'))).toEqual({ atMs: Date.parse('2026-12-06T00:00:00.000Z'), memBytes: 1 << 20, limitBytes: 4_000_000_000, cpuNs: 2e9, pids: 1, netRxBytes: 1500, netTxBytes: 2000, cpus: 2 });
    expect(sampleOf(report(0, '2026-12-06T00:00:00.000Z', 64 << 20)).limitBytes).toBe(64 << 20);
  });

  it('computes Docker\'s columns from two samples one second apart', () => {
    const a = sampleOf(report(2e9, '2026-12-06T00:00:00.000Z', 64 << 20));
    const b = sampleOf(report(2.25e9, '2026-12-06T00:00:01.000Z', 64 << 20));
    expect(statsRow({ id: 'abc', name: 'web' }, a, b)).toEqual({
      ID: 'abc', Container: 'abc', Name: 'web', CPUPerc: '25.00%', MemUsage: '1MiB / 64MiB', MemPerc: '1.56%', NetIO: '1.5kB / 2kB', BlockIO: '0B / 0B', PIDs: '1',
    });
  });

  it.each([[0, '0B'], [512, '512B'], [1536, '1.5KiB'], [8_160_000_000, '7.6GiB'], [1_234_567, '1.177MiB']])('%d bytes are %s', (n, s) => {
    expect(humanBinary(n)).toBe(s);
  });
});

describe('history and load', () => {
  it('lists history newest first, sizes from the layers, the ID on the newest row only', () => {
    const config = { history: [
      { created: '2026-11-28T04:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:abc in /' },
      { created: '2026-11-28T04:30:00Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
      { created: '2026-11-28T04:59:00Z', created_by: 'RUN echo a really long command that goes past forty-five characters', comment: 'buildkit' },
    ] };
    const rows = historyRows('sha256:0123456789abcdef', config, [4_260_000, 1200], Date.parse('2026-11-28T05:00:00Z'), false);
    expect(rows.map((r) => [r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment])).toEqual([
      ['0123456789ab', 'About a minute ago', 'RUN echo a really long command that goes pas…', '1.2kB', 'buildkit'],
      ['<missing>', '30 minutes ago', '/bin/sh -c #(nop) CMD ["sh"]', '0B', ''],
      ['<missing>', 'About an hour ago', '/bin/sh -c #(nop) ADD file:abc in /', '4.26MB', ''],
    ]);
  });

  it('takes the tags of a docker-archive from RepoTags, of an OCI archive from its index annotations', () => {
    expect(archiveTags(new Map([['manifest.json', Buffer.from('[{"Config":"c.json","RepoTags":["busybox:latest","x/y:1"],"Layers":[]}]')]]))).toEqual(['busybox:latest', 'x/y:1']);
    expect(archiveTags(new Map([['index.json', Buffer.from('{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/app:2","org.opencontainers.image.ref.name":"2"}}]}')]]))).toEqual(['docker.io/library/app:2']);
    expect(archiveTags(new Map([['index.json', Buffer.from('{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}')]]))).toEqual([]);
  });
});
