import { describe, expect, it } from 'vitest';
import { containerStatusText, humanDuration, humanSize, renderFormat, renderTable, TemplateError } from './format.ts';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

describe('humanDuration', () => {
  it.each([
    { name: 'under a second', ms: 400, want: 'Less than a second' },
    { name: 'one second', ms: 1_000, want: '1 second' },
    { name: 'seconds', ms: 5_000, want: '5 seconds' },
    { name: 'one minute', ms: 90_000, want: 'About a minute' },
    { name: 'minutes', ms: 3 * 60_000, want: '3 minutes' },
    { name: 'one hour', ms: 65 * 60_000, want: 'About an hour' },
    { name: 'hours', ms: 5 * 3_600_000, want: '5 hours' },
    { name: 'days', ms: 3 * 86_400_000, want: '3 days' },
    { name: 'weeks', ms: 20 * 86_400_000, want: '2 weeks' },
  ])('words $name as Docker does', ({ ms, want }) => expect(humanDuration(ms)).toBe(want));
});

describe('containerStatusText', () => {
  it.each([
    { name: 'running', s: { phase: 'Running', startedAt: ago(180_000) }, want: 'Up 3 minutes' },
    { name: 'paused', s: { phase: 'Paused', startedAt: ago(180_000) }, want: 'Up 3 minutes (Paused)' },
    { name: 'healthy', s: { phase: 'Running', startedAt: ago(2_000), health: 'Healthy' }, want: 'Up 2 seconds (healthy)' },
    { name: 'exited', s: { phase: 'Exited', finishedAt: ago(5_000), exitCode: 0 }, want: 'Exited (0) 5 seconds ago' },
    { name: 'backing off', s: { phase: 'Exited', finishedAt: ago(2_000), exitCode: 1, reason: 'BackOff' }, want: 'Restarting (1) 2 seconds ago' },
    { name: 'created', s: { phase: 'Created' }, want: 'Created' },
    { name: 'pending with a reason', s: { phase: 'Pending', reason: 'ErrImagePull' }, want: 'Pending (ErrImagePull)' },
  ])('shows $name as $want', ({ s, want }) => expect(containerStatusText(s, NOW)).toBe(want));
});

describe('humanSize', () => {
  it.each([
    { bytes: 0, want: '0B' },
    { bytes: 862_000, want: '862kB' },
    { bytes: 4_261_234, want: '4.26MB' },
    { bytes: 1_200_000_000, want: '1.2GB' },
  ])('shows $bytes bytes as $want', ({ bytes, want }) => expect(humanSize(bytes)).toBe(want));
});

describe('renderFormat', () => {
  const rows = [{ Names: 'web', Status: 'Up 3 minutes', ID: 'abc' }, { Names: 'db', Status: 'Exited (0) 1 second ago', ID: 'def' }];
  it('prints one line per row from a template', () => expect(renderFormat('{{.Names}}: {{.Status}}', rows)).toBe('web: Up 3 minutes\ndb: Exited (0) 1 second ago\n'));
  it('prints a table with headers for a table template, with literal \\t', () =>
    expect(renderFormat('table {{.Names}}\\t{{.ID}}', rows, { Names: 'NAMES', ID: 'CONTAINER ID' })).toBe('NAMES     CONTAINER ID\nweb       abc\ndb        def\n'));
  it('prints one JSON object per line for json', () => expect(renderFormat('json', rows).split('\n')[0]).toBe(JSON.stringify(rows[0])));
  it('applies json to a field and to the row', () => expect(renderFormat('{{json .Names}} {{json .}}', [rows[0]!])).toBe(`"web" ${JSON.stringify(rows[0])}\n`));
  it('walks nested fields', () => expect(renderFormat('{{.status.exitCode}}', [{ status: { exitCode: 3 } }])).toBe('3\n'));
  it('rejects a field the rows lack, naming it', () => expect(() => renderFormat('{{.Nope}}', rows)).toThrow(TemplateError));
  it('rejects functions it does not know', () => expect(() => renderFormat('{{printf .Names}}', rows)).toThrow(/unsupported action/));
});

describe('renderTable', () => {
  it('pads columns to the widest cell plus three, at least ten, as Docker\'s tabwriter', () =>
    expect(renderTable([['CONTAINER ID', 'IMAGE', 'NAMES'], ['0123456789ab', 'busybox', 'h10-a']])).toBe('CONTAINER ID   IMAGE     NAMES\n0123456789ab   busybox   h10-a\n'));
});
