/**
 * Loading a Compose project: finds the files (every `-f`, else `$COMPOSE_FILE`, else
 * the first of compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml in
 * the working directory plus its override file, compose.override.yaml and the like),
 * reads the `.env` of the project directory (that of the first file), parses each
 * YAML file (`!reset` and `!override` tags kept as `Tagged`), interpolates variables
 * (the process environment wins over `.env`, as in Compose), merges the files in
 * order (`merge.ts`), validates the result against the Compose schema (strings that
 * stand for numbers or booleans where the schema wants them are converted first, as
 * Compose does after interpolation) and picks the project name (`-p`, else the
 * `name:`, else `$COMPOSE_PROJECT_NAME`, else the project directory's name),
 * normalised to a DNS label. Relative paths in every file are relative to the
 * project directory, as in Docker Compose.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { isNode, parseAllDocuments, Scalar, visit, type Document } from 'yaml';
import { ComposeError, interpolate, parseDotenv, Tagged, type Environment } from './interpolate.ts';
import { mergeComposeDocs } from './merge.ts';
import { validateCompose } from './validate.ts';

/** File names looked for, in order, when neither `-f` nor `$COMPOSE_FILE` names the files (Docker Compose's order). */
export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'] as const;
/** Override files added after the default file found in the same directory (the first that exists). */
export const DEFAULT_OVERRIDE_FILES = ['compose.override.yml', 'compose.override.yaml', 'docker-compose.override.yml', 'docker-compose.override.yaml'] as const;

export interface LoadOptions {
  /** `-f`: the Compose files, merged in order; default: `$COMPOSE_FILE`, else the default file and its override in `cwd`. */
  readonly files?: readonly string[];
  /** One `-f` (kept for callers that pass a single file); ignored when `files` is given. */
  readonly file?: string;
  /** `-p`: the project name. */
  readonly projectName?: string;
  readonly cwd?: string;
  /** The process environment (default `process.env`). */
  readonly environ?: Environment;
  /** Warnings (unset variables, several default files) go here; default stderr. */
  readonly warn?: (msg: string) => void;
}

/** A loaded, interpolated, merged and schema-valid Compose document. */
export interface LoadedCompose {
  /** Absolute path of the first Compose file. */
  readonly file: string;
  /** Absolute paths of every Compose file, in merge order. */
  readonly files: readonly string[];
  /** The project directory (the first file's): relative paths (build contexts, binds, env files) are resolved against it. */
  readonly dir: string;
  /** The project name, a DNS label. */
  readonly name: string;
  /** The document after interpolation, merging and type conversion. */
  readonly doc: Record<string, unknown>;
  /** Variables for interpolation: `.env` overridden by the process environment. */
  readonly env: Environment;
}

/**
 * A project name as a DNS label: lower case, runs of characters other than `a-z0-9`
 * become `-`, no `-` at either end, at most 40 characters (object names get
 * `-<service>-<n>` appended). Throws when nothing is left.
 */
export function toProjectName(raw: string): string {
  const n = raw.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '');
  if (!n) throw new ComposeError(`project name ${JSON.stringify(raw)}: must contain a letter or digit`);
  return n;
}

/** `-f FILE` resolved against `cwd`; throws `ComposeError` when it does not exist. */
function existing(cwd: string, file: string): string {
  const abs = resolve(cwd, file);
  if (!existsSync(abs)) throw new ComposeError(`open ${abs}: no such file or directory`);
  return abs;
}

/**
 * The Compose files of a project, absolute, in merge order: the `-f` files; else
 * `$COMPOSE_FILE` (from the environment, else the `.env` of `cwd`), split on
 * `$COMPOSE_PATH_SEPARATOR` (default `:`); else the first of `DEFAULT_FILES` in `cwd`
 * and the first of `DEFAULT_OVERRIDE_FILES` beside it, as Docker Compose picks them.
 * Throws `ComposeError` when a named file is missing or no default file exists.
 */
export function findComposeFiles(cwd: string, files: readonly string[], environ: Environment, warn: (msg: string) => void = () => {}): string[] {
  if (files.length) return files.map((f) => existing(cwd, f));
  let composeFile = environ.COMPOSE_FILE;
  let sep = environ.COMPOSE_PATH_SEPARATOR;
  if (composeFile === undefined && existsSync(join(cwd, '.env'))) {
    const dotenv = parseDotenv(readFileSync(join(cwd, '.env'), 'utf8'), join(cwd, '.env'), environ);
    composeFile = dotenv.COMPOSE_FILE;
    sep ??= dotenv.COMPOSE_PATH_SEPARATOR;
  }
  if (composeFile) return composeFile.split(sep || ':').filter(Boolean).map((f) => existing(cwd, f));
  const found = DEFAULT_FILES.filter((f) => existsSync(join(cwd, f)));
  if (found.length === 0) throw new ComposeError(`no configuration file provided: not found (looked for ${DEFAULT_FILES.join(', ')} in ${cwd})`);
  if (found.length > 1) warn(`Found multiple config files with supported names: ${found.map((f) => join(cwd, f)).join(', ')}; using ${join(cwd, found[0]!)}`);
  const override = DEFAULT_OVERRIDE_FILES.find((f) => existsSync(join(cwd, f)));
  return [join(cwd, found[0]!), ...(override ? [join(cwd, override)] : [])];
}

/** Turns the `!reset` / `!override` nodes of a parsed file into `Tagged` values (other tags are left to the YAML parser). */
function keepMergeTags(doc: Document.Parsed): void {
  visit(doc, (_key, node) => {
    if (!isNode(node) || (node.tag !== '!reset' && node.tag !== '!override')) return undefined;
    const tag = node.tag;
    return new Scalar(new Tagged(tag, tag === '!reset' ? null : node.toJS(doc, { maxAliasCount: 1000 })));
  });
}

/** Reads one Compose file as a JS mapping (merge keys resolved, `!reset`/`!override` kept). */
async function readComposeFile(file: string): Promise<Record<string, unknown>> {
  const text = await readFile(file, 'utf8');
  const docs = parseAllDocuments(text, { merge: true });
  if (Array.isArray(docs) === false || docs.length !== 1) throw new ComposeError(`${file}: expected exactly one YAML document`);
  const parsed = docs[0]!;
  if (parsed.errors.length) throw new ComposeError(`${file}: ${parsed.errors[0]!.message}`);
  keepMergeTags(parsed);
  const raw = parsed.toJS({ maxAliasCount: 1000 }) as unknown;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ComposeError(`${file}: the top level must be a mapping`);
  return raw as Record<string, unknown>;
}

/** Loads, interpolates, merges and validates a Compose project (see the module comment). Throws `ComposeError`. */
export async function loadCompose(opts: LoadOptions = {}): Promise<LoadedCompose> {
  const cwd = opts.cwd ?? process.cwd();
  const environ = opts.environ ?? process.env;
  const warn = opts.warn ?? ((m: string) => void process.stderr.write(`WARN[0000] ${m}\n`));
  const files = findComposeFiles(cwd, opts.files ?? (opts.file ? [opts.file] : []), environ, warn);
  const file = files[0]!;
  const dir = dirname(file);
  const dotenvPath = join(dir, '.env');
  const dotenv = existsSync(dotenvPath) ? parseDotenv(await readFile(dotenvPath, 'utf8'), dotenvPath, environ) : {};
  const env: Environment = { ...dotenv, ...environ };

  const unset = new Set<string>();
  const docs: Record<string, unknown>[] = [];
  for (const f of files) docs.push(interpolate(await readComposeFile(f), { env, onUnset: (n) => unset.add(n) }) as Record<string, unknown>);
  for (const n of unset) warn(`The "${n}" variable is not set. Defaulting to a blank string.`);
  const doc = validateCompose(mergeComposeDocs(docs), files.join(', '));

  const fromFile = typeof doc.name === 'string' && doc.name ? doc.name : undefined;
  const name = toProjectName(opts.projectName ?? fromFile ?? env.COMPOSE_PROJECT_NAME ?? basename(dir));
  return { file, files, dir, name, doc, env };
}
