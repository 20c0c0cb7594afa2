/**
 * What the client verbs print, laid out as Docker prints it: human durations
 * (`Up 3 minutes`, `Exited (0) 5 seconds ago`), sizes (`4.26MB`), tables aligned as
 * Docker's tabwriter aligns them, and `--format` templates (`{{.Names}}`,
 * `table {{.ID}}\t{{.Status}}`, `json`, `{{json .}}`). Pure functions: no I/O.
 */

/**
 * A duration as Docker's `units.HumanDuration` words it: `Less than a second`,
 * `1 second`, `5 seconds`, `About a minute`, `3 minutes`, `About an hour`,
 * `5 hours`, `3 days`, `2 weeks`, `4 months`, `2 years`. Negative durations count as 0.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(Math.max(0, ms) / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

/** Bytes as Docker's `units.HumanSizeWithPrecision(n, 3)`: decimal units, `0B`, `862kB`, `4.26MB`, `1.2GB`. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let n = Math.max(0, bytes);
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(3))}${units[i]}`;
}

/** The fields of a Container that its STATUS column is made from. */
export interface ContainerStatusFacts {
  readonly phase?: string;
  readonly desiredState?: string;
  readonly startedAt?: string | null;
  readonly finishedAt?: string | null;
  readonly exitCode?: number | null;
  readonly reason?: string;
  readonly health?: string;
}

/**
 * The STATUS column of `docker ps` for a Container at `nowMs`: `Up 3 minutes`,
 * `Up 3 minutes (Paused)`, `Up 2 seconds (healthy)`, `Exited (0) 5 seconds ago`,
 * `Restarting (1) 2 seconds ago` (back-off between restarts), `Created`, and
 * `Pending` with its reason (`Pending (ImagePullBackOff)`) before the runtime has it.
 */
export function containerStatusText(s: ContainerStatusFacts, nowMs: number): string {
  const since = (t: string | null | undefined) => humanDuration(t ? nowMs - Date.parse(t) : 0);
  switch (s.phase) {
    case 'Running': {
      const health = s.health && s.health !== 'Starting' ? ` (${s.health.toLowerCase()})` : s.health === 'Starting' ? ' (health: starting)' : '';
      return `Up ${since(s.startedAt)}${health}`;
    }
    case 'Paused':
      return `Up ${since(s.startedAt)} (Paused)`;
    case 'Exited':
      if (s.reason === 'BackOff') return `Restarting (${s.exitCode ?? 0}) ${since(s.finishedAt)} ago`;
      return `Exited (${s.exitCode ?? 0}) ${since(s.finishedAt)} ago`;
    case 'Created':
      return 'Created';
    default:
      return s.reason ? `Pending (${s.reason})` : 'Pending';
  }
}

/** Docker's one-word state for `--format {{.State}}` and `--filter status=`: created, running, paused, restarting, exited. */
export function containerStateWord(s: ContainerStatusFacts): string {
  switch (s.phase) {
    case 'Running':
      return 'running';
    case 'Paused':
      return 'paused';
    case 'Exited':
      return s.reason === 'BackOff' ? 'restarting' : 'exited';
    default:
      return 'created';
  }
}

/** Shortens to `max` characters with `…` as Docker's `ps` does for COMMAND (without `--no-trunc`). */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

/**
 * Lays rows out as Docker's tabwriter does (`minwidth 10, padding 3`): every column
 * but the last padded to its widest cell plus three spaces, and at least ten wide.
 */
export function renderTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(Math.max(10, widths[i]! + 3) - ([...cell].length - cell.length)))).join('').trimEnd())
    .map((line) => `${line}\n`)
    .join('');
}

/** A template parse or evaluation error, with the template in its message. */
export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

type Part = { readonly text: string } | { readonly fn: string | undefined; readonly path: readonly string[]; readonly src: string };

const FUNCS: Record<string, (v: unknown) => string> = {
  json: (v) => JSON.stringify(v ?? null),
  upper: (v) => toText(v).toUpperCase(),
  lower: (v) => toText(v).toLowerCase(),
  title: (v) => toText(v).replace(/\b\w/g, (c) => c.toUpperCase()),
};

function toText(v: unknown): string {
  if (v === undefined || v === null) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(toText).join(' ')}]`;
  if (typeof v === 'object') return `map[${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${k}:${toText(x)}`).join(' ')}]`;
  return String(v);
}

/** Splits a Go-style template into text and `{{[fn] .A.B}}` actions. */
function parseTemplate(tpl: string): Part[] {
  const parts: Part[] = [];
  const re = /\{\{-?\s*(.*?)\s*-?\}\}/g;
  let last = 0;
  for (let m = re.exec(tpl); m; m = re.exec(tpl)) {
    if (m.index > last) parts.push({ text: tpl.slice(last, m.index) });
    last = m.index + m[0].length;
    const words = m[1]!.split(/\s+/).filter(Boolean);
    const [fn, arg] = words.length === 2 ? [words[0], words[1]!] : [undefined, words[0] ?? ''];
    if (words.length > 2 || (fn !== undefined && !FUNCS[fn])) throw new TemplateError(`template ${JSON.stringify(tpl)}: unsupported action {{${m[1]}}} (supported: {{.Field}}, {{.A.B}}, {{json|upper|lower|title .Field}})`);
    if (!arg.startsWith('.')) throw new TemplateError(`template ${JSON.stringify(tpl)}: {{${m[1]}}}: expected a field such as .Names`);
    parts.push({ fn, path: arg === '.' ? [] : arg.slice(1).split('.'), src: m[1]! });
  }
  if (last < tpl.length) parts.push({ text: tpl.slice(last) });
  return parts;
}

function lookup(obj: unknown, path: readonly string[], src: string): unknown {
  let v: unknown = obj;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    if (!(key in (v as object))) {
      if (v === obj) throw new TemplateError(`template: {{${src}}}: can't evaluate field ${key} (fields: ${Object.keys(obj as object).join(', ')})`);
      return undefined;
    }
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Docker's escapes in `--format`: `\t` and `\n` typed literally on the command line. */
const unescape = (s: string): string => s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');

/**
 * Renders rows with a `--format` value as Docker does:
 * - `json`: one JSON object per row and line;
 * - `table TEMPLATE`: a header (each `{{.Field}}` → `headers[Field]`, else FIELD in capitals) then the rows, tab-aligned;
 * - `TEMPLATE`: one line per row (`{{.Names}}`, `{{.Status}}\t{{.Ports}}`, `{{json .}}`, `{{.status.exitCode}}`).
 * Throws `TemplateError` naming the field when a template names a field the rows lack.
 */
export function renderFormat(format: string, rows: readonly Record<string, unknown>[], headers: Readonly<Record<string, string>> = {}): string {
  if (format === 'json') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const isTable = /^table(\s|$)/.test(format);
  const parts = parseTemplate(unescape(isTable ? format.replace(/^table\s*/, '') : format));
  const line = (r: Record<string, unknown>) =>
    parts.map((p) => ('text' in p ? p.text : p.fn ? FUNCS[p.fn]!(lookup(r, p.path, p.src)) : toText(lookup(r, p.path, p.src)))).join('');
  if (!isTable) return rows.map((r) => `${line(r)}\n`).join('');
  const header = parts.map((p) => ('text' in p ? p.text : (headers[p.path.join('.')] ?? p.path.join('.').toUpperCase()))).join('');
  return renderTable([header, ...rows.map(line)].map((l) => l.split('\t')));
}
