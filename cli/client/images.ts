/**
 * Docker's image verbs over `Image` objects: `images`, `pull`, `push`, `tag`,
 * `rmi`, `build` (the context uploaded to berth's registry as a blob), `commit`,
 * `save`, `login`/`logout` (a `kubernetes.io/dockerconfigjson` Secret per registry
 * that pull and push then name). Each verb writes the object and follows its
 * status (phase, `status.progress`) until it is Ready or Failed.
 */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Image, Secret } from '../../api/types/index.ts';
import { isNotFound } from '../../controllers/framework/api-status-error.ts';
import { stableJson } from '../../controllers/framework/stable-json.ts';
import { Image as ImageKind, Node as NodeKind, Secret as SecretKind } from '../../controllers/framework/resource-kind.ts';
import { familiarString, normalizeReference, parseReference } from '../../runtime/images/reference.ts';
import { packContext } from './build-context.ts';
import type { Connection } from './connection.ts';
import { VerbError } from './containers.ts';
import { FlagError } from './container-spec.ts';
import { humanDuration, humanSize, renderFormat } from './format.ts';
import { readBody } from './connection.ts';
import { waitForObject } from './wait.ts';
import { loginSecretFor, loginSecretName, toImageName } from './login-secrets.ts';

const normalized = (ref: string): string => {
  try {
    return normalizeReference(ref);
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
};

/** The tags an Image answers to (its default when `spec.tags` is absent). */
const tagsOf = (img: Image): string[] => (img.spec.tags?.length ? img.spec.tags : [`${img.metadata.name!}:latest`]);

/** Finds the Image a reference names: by tag (Docker's normalisation), by image ID prefix, or by object name. */
export async function findImage(conn: Connection, ref: string): Promise<Image> {
  const list = await conn.client.list(ImageKind, { namespace: conn.namespace });
  const want = /^(sha256:)?[0-9a-f]{4,64}$/.test(ref) ? undefined : normalized(ref);
  const byTag = want ? list.items.filter((i) => tagsOf(i).some((t) => normalized(t) === want)) : [];
  if (byTag.length) return byTag.sort((a, b) => Date.parse(b.metadata.creationTimestamp ?? '') - Date.parse(a.metadata.creationTimestamp ?? ''))[0]!;
  const id = ref.replace(/^sha256:/, '');
  const byId = list.items.filter((i) => (i.status?.id ?? '').replace(/^sha256:/, '').startsWith(id));
  if (!want && byId.length === 1) return byId[0]!;
  const byName = list.items.find((i) => i.metadata.name! === ref);
  if (byName) return byName;
  throw new VerbError(`No such image: ${ref}`);
}

/** `docker images` rows: one per tag. */
export function imageRows(images: readonly Image[], nowMs: number): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const img of images) {
    const created = img.metadata.creationTimestamp ?? '';
    for (const tag of tagsOf(img)) {
      let repo = tag;
      let t = '<none>';
      try {
        const r = parseReference(tag);
        repo = familiarString({ domain: r.domain, path: r.path });
        t = r.tag ?? (r.digest ? '<none>' : 'latest');
      } catch {
        // shown as written
      }
      rows.push({
        Repository: repo,
        Tag: t,
        ID: (img.status?.id ?? '').replace(/^sha256:/, '').slice(0, 12) || '<none>',
        CreatedSince: `${humanDuration(created ? nowMs - Date.parse(created) : 0)} ago`,
        CreatedAt: created,
        Size: img.status?.size !== undefined ? humanSize(img.status.size) : '<none>',
        Digest: img.status?.digest ?? '<none>',
        Status: img.status?.phase ?? 'Pending',
        Name: img.metadata.name!,
      });
    }
  }
  return rows;
}

const IMAGES_HEADERS: Record<string, string> = { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', Digest: 'DIGEST', Status: 'STATUS', Name: 'NAME' };

/** `images [-q] [--format]`. */
export async function images(conn: Connection, flags: { quiet?: boolean; format?: string; all?: boolean }, out: (s: string) => void): Promise<number> {
  const list = await conn.client.list(ImageKind, { namespace: conn.namespace });
  const items = list.items
    .filter((i) => flags.all || i.status?.phase === 'Ready' || i.status?.phase === 'Pushing')
    .sort((a, b) => Date.parse(b.metadata.creationTimestamp ?? '') - Date.parse(a.metadata.creationTimestamp ?? ''));
  const rows = imageRows(items, Date.now());
  if (flags.quiet) out([...new Set(rows.map((r) => r.ID))].map((id) => `${id}\n`).join(''));
  else out(renderFormat(flags.format ?? 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}', rows, IMAGES_HEADERS));
  return 0;
}

/**
 * Shows an Image's progress: on a terminal one line rewritten in place (message,
 * bytes, a bar when the total is known); otherwise one plain line per change.
 */
export class ProgressPrinter {
  private last = '';
  private readonly tty = Boolean(process.stderr.isTTY);

  update(img: Image): void {
    const st = img.status;
    const p = st?.progress;
    const phase = st?.phase ?? 'Pending';
    let line = `${phase}${p?.message ? `: ${p.message}` : ''}`;
    if (p?.completedBytes !== undefined) {
      const total = p.totalBytes;
      if (total && this.tty) {
        const width = 30;
        const filled = Math.min(width, Math.round((p.completedBytes / total) * width));
        line += ` [${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}]`;
      }
      line += ` ${humanSize(p.completedBytes)}${total ? `/${humanSize(total)}` : ''}`;
    }
    if (line === this.last) return;
    this.last = line;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  done(): void {
    if (this.tty && this.last) process.stderr.write('\n');
  }
}

/**
 * Waits for an Image to be Ready for its current generation, showing progress (not with
 * `quiet`); Failed rejects with its message.
 */
async function followImage(conn: Connection, name: string, until: (img: Image) => boolean = (i) => i.status?.phase === 'Ready', quiet = false): Promise<Image> {
  const printer = quiet ? { update: () => {}, done: () => {} } : new ProgressPrinter();
  try {
    const img = await waitForObject(conn, ImageKind, name, (i) => {
      if (!i) throw new VerbError(`image ${name} was deleted`);
      if ((i.status?.observedGeneration ?? 0) < (i.metadata.generation ?? 0)) return false;
      if (i.status?.phase === 'Failed') {
        const ready = i.status.conditions?.find((c) => c.type === 'Ready');
        throw new VerbError(`image ${name}: ${i.status.message ?? ready?.message ?? 'failed'}`);
      }
      return until(i);
    }, { onUpdate: (i) => printer.update(i) });
    return img!;
  } finally {
    printer.done();
  }
}

/** Deletes Image `name`, and waits until it is gone, when it is `Failed` for its current generation with `spec`. */
async function removeIfFailedWith(conn: Connection, name: string, spec: Image['spec']): Promise<void> {
  let cur: Image;
  try {
    cur = await conn.client.get(ImageKind, conn.namespace, name);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  const failed = cur.status?.phase === 'Failed' && cur.status.observedGeneration === cur.metadata.generation;
  if (!failed || stableJson(cur.spec) !== stableJson(spec)) return;
  try {
    await conn.client.delete(ImageKind, conn.namespace, name, { preconditions: { uid: cur.metadata.uid! } });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  await waitForObject(conn, ImageKind, name, (i) => i === undefined || i.metadata.uid !== cur.metadata.uid);
}

/** Creates or replaces the spec of an Image. */
async function putImage(conn: Connection, name: string, spec: Image['spec']): Promise<void> {
  try {
    const cur = await conn.client.get(ImageKind, conn.namespace, name);
    await conn.client.update({ ...cur, spec });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await conn.client.create({ apiVersion: 'berth.dev/v1', kind: 'Image', metadata: { name, namespace: conn.namespace }, spec } as Image);
  }
}

/**
 * `pull REF`: an Image with `source.pull`, followed until Ready. An Image that already
 * failed with this very spec is made anew, as `docker pull` tries again: otherwise the
 * spec would not change, and the old failure would be reported at once (the
 * controller's own retries wait out a back-off).
 */
export async function pull(conn: Connection, ref: string, out: (s: string) => void): Promise<number> {
  const full = normalized(ref);
  const secret = await loginSecretFor(conn, ref);
  const name = toImageName(familiarString(parseReference(full)));
  const spec: Image['spec'] = { source: { pull: { reference: full, ...(secret ? { credentialsSecret: secret } : {}) } }, tags: [familiarString(parseReference(full))] };
  await removeIfFailedWith(conn, name, spec);
  await putImage(conn, name, spec);
  const img = await followImage(conn, name);
  out(`Digest: ${img.status?.digest ?? ''}\nStatus: Downloaded image for ${familiarString(parseReference(full))}\n${full}\n`);
  return 0;
}

/** `push REF`: adds a push target to the Image tagged REF and waits for `status.pushed`. */
export async function push(conn: Connection, ref: string, out: (s: string) => void): Promise<number> {
  const img = await findImage(conn, ref);
  const full = normalized(ref);
  const secret = await loginSecretFor(conn, ref);
  const targets = (img.spec.push ?? []).filter((p) => normalized(p.reference) !== full);
  const spec = { ...img.spec, push: [...targets, { reference: full, ...(secret ? { credentialsSecret: secret } : {}) }] };
  await conn.client.update({ ...img, spec });
  let done: Image;
  try {
    done = await followImage(conn, img.metadata.name!, (i) => (i.status?.pushed ?? []).some((p) => normalized(p.reference) === full) && i.status?.phase === 'Ready');
  } catch (err) {
    // As with Docker, a failed push leaves nothing behind: without this the controller
    // would retry the target with back-off, and the Image would stay Failed meanwhile.
    await withoutPushTarget(conn, img.metadata.name!, full, img.spec.push).catch((e: unknown) => {
      process.stderr.write(`berth: removing the push target ${full} from image ${img.metadata.name!}: ${(e as Error).message}\n`);
    });
    throw err;
  }
  const pushed = done.status?.pushed?.find((p) => normalized(p.reference) === full);
  out(`${familiarString(parseReference(full))}: digest: ${pushed?.digest ?? done.status?.digest ?? ''} size: ${done.status?.size ?? 0}\n`);
  return 0;
}

/** Removes `ref` from Image `name`'s `spec.push`, the target a failed `push` added, unless `before` (the list before it) had it. */
async function withoutPushTarget(conn: Connection, name: string, ref: string, before: Image['spec']['push']): Promise<void> {
  if ((before ?? []).some((p) => normalized(p.reference) === ref)) return;
  const cur = await conn.client.get(ImageKind, conn.namespace, name);
  if (!(cur.spec.push ?? []).some((p) => normalized(p.reference) === ref)) return;
  const keep = (cur.spec.push ?? []).filter((p) => normalized(p.reference) !== ref);
  // a merge patch: the controller writes the status meanwhile (an update would conflict)
  await conn.client.patch(ImageKind, conn.namespace, name, { spec: { push: keep.length ? keep : null } });
}

/**
 * Writes new `spec.tags`; when the Image was Ready, waits (quietly) until it is Ready for
 * that generation, so that the new tag resolves on the node when the verb returns and a
 * failure is reported.
 */
async function retag(conn: Connection, img: Image, tags: string[]): Promise<void> {
  await conn.client.update({ ...img, spec: { ...img.spec, tags } });
  if (img.status?.phase === 'Ready') await followImage(conn, img.metadata.name!, undefined, true);
}

/** `tag SOURCE TARGET`: adds TARGET to the source Image's `spec.tags`. */
export async function tag(conn: Connection, source: string, target: string): Promise<number> {
  const img = await findImage(conn, source);
  const t = familiarString(parseReference(normalized(target)));
  const tags = tagsOf(img);
  if (!tags.some((x) => normalized(x) === normalized(t))) await retag(conn, img, [...tags, t]);
  return 0;
}

/** `rmi REF…`: removes the tag; the object goes with its last tag (or always with `-f`). */
export async function rmi(conn: Connection, refs: readonly string[], force: boolean, out: (s: string) => void): Promise<number> {
  for (const ref of refs) {
    const img = await findImage(conn, ref);
    const tags = tagsOf(img);
    const want = /^(sha256:)?[0-9a-f]{4,64}$/.test(ref) ? undefined : normalized(ref);
    const rest = want ? tags.filter((t) => normalized(t) !== want) : [];
    if (!force && want && rest.length > 0) {
      await retag(conn, img, rest);
      out(`Untagged: ${ref}\n`);
      continue;
    }
    await conn.client.delete(ImageKind, conn.namespace, img.metadata.name!);
    await waitForObject(conn, ImageKind, img.metadata.name!, (i) => i === undefined, { timeoutMs: 60_000 });
    for (const t of tags) out(`Untagged: ${t}\n`);
    if (img.status?.id) out(`Deleted: ${img.status.id}\n`);
  }
  return 0;
}

export interface BuildFlags {
  readonly tag?: readonly string[];
  readonly file?: string;
  readonly buildArg?: readonly string[];
  readonly target?: string;
  readonly noCache?: boolean;
  readonly quiet?: boolean;
}

/** The repository the CLI uploads build contexts to in berth's registry. */
export const CONTEXT_REPOSITORY = 'berth/build-contexts';

/** Uploads a build context archive to berth's registry as one monolithic blob POST (with the kubeconfig's token). */
export async function uploadContext(conn: Connection, archive: Buffer, digest: string): Promise<void> {
  const res = await conn.request('POST', `/v2/${CONTEXT_REPOSITORY}/blobs/uploads/?digest=${encodeURIComponent(digest)}`, {
    body: archive,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(archive.length) },
  });
  res.resume();
}

/**
 * `build [-t] [-f] [--build-arg] [--target] [--no-cache] DIR`: packs DIR (honouring
 * `.dockerignore`), uploads it to berth's registry as one blob (monolithic POST with
 * the kubeconfig's bearer token), creates an Image with `source.build.context.archive`,
 * follows the build's progress and prints its log and ID.
 */
export async function build(conn: Connection, dir: string, flags: BuildFlags, out: (s: string) => void): Promise<number> {
  const dockerfile = flags.file ?? 'Dockerfile';
  const buildArgs: Record<string, string> = {};
  for (const a of flags.buildArg ?? []) {
    const eq = a.indexOf('=');
    if (eq < 0) {
      if (process.env[a] !== undefined) buildArgs[a] = process.env[a]!;
    } else buildArgs[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const tags = (flags.tag ?? []).map((t) => familiarString(parseReference(normalized(t))));
  const ctx = await packContext(dir, dockerfile);
  process.stderr.write(`Sending build context to berth: ${humanSize(ctx.archive.length)} (${ctx.files.length} files)\n`);
  await uploadContext(conn, ctx.archive, ctx.digest);
  const name = tags.length ? toImageName(tags[0]!) : `build-${ctx.digest.slice(7, 19)}`;
  await putImage(conn, name, {
    source: {
      build: {
        context: { archive: { digest: ctx.digest } },
        ...(flags.file ? { dockerfile } : {}),
        ...(Object.keys(buildArgs).length ? { buildArgs } : {}),
        ...(flags.target ? { target: flags.target } : {}),
        ...(flags.noCache ? { noCache: true } : {}),
      },
    },
    ...(tags.length ? { tags } : {}),
  });
  let failure: unknown;
  let img: Image | undefined;
  try {
    img = await followImage(conn, name);
  } catch (err) {
    failure = err;
  }
  if (!flags.quiet) {
    const log = await conn.request('GET', `/apis/berth.dev/v1/namespaces/${conn.namespace}/images/${name}/log`).then(readBody, () => '');
    if (log) process.stderr.write(log.endsWith('\n') ? log : `${log}\n`);
  }
  if (failure) throw failure;
  out(flags.quiet ? `${img!.status?.id ?? ''}\n` : `Successfully built ${(img!.status?.id ?? '').replace(/^sha256:/, '').slice(0, 12)}\n${tags.map((t) => `Successfully tagged ${t}\n`).join('')}`);
  return 0;
}

/** `commit CONTAINER [REPO[:TAG]]`: an Image with `source.commit`, followed until Ready; prints the ID. */
export async function commit(conn: Connection, container: string, ref: string | undefined, flags: { message?: string; author?: string; pause?: boolean }, out: (s: string) => void): Promise<number> {
  const tags = ref ? [familiarString(parseReference(normalized(ref)))] : [];
  const name = tags.length ? toImageName(tags[0]!) : `commit-${container}-${Date.now().toString(36)}`;
  await putImage(conn, name, {
    source: { commit: { container, pause: flags.pause ?? true, ...(flags.message ? { message: flags.message } : {}), ...(flags.author ? { author: flags.author } : {}) } },
    ...(tags.length ? { tags } : {}),
  });
  const img = await followImage(conn, name);
  out(`${img.status?.id ?? ''}\n`);
  return 0;
}

/** `save -o FILE REF`: the image's `export` stream (docker-archive) to a file or stdout. */
export async function save(conn: Connection, ref: string, output: string | undefined): Promise<number> {
  if (!output && process.stdout.isTTY) throw new VerbError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const img = await findImage(conn, ref);
  const res = await conn.request('GET', `/apis/berth.dev/v1/namespaces/${conn.namespace}/images/${img.metadata.name!}/export?format=docker-archive`);
  await pipeline(res, output ? createWriteStream(output) : process.stdout);
  return 0;
}

/**
 * `login [-u] [-p | --password-stdin] REGISTRY`: has a node check the credentials against
 * the registry (`nodes/NAME/registrylogin`, as `docker login` asks its daemon), then
 * stores them as a dockerconfigjson Secret. Refused credentials store nothing.
 */
export async function login(conn: Connection, registry: string, username: string, password: string, out: (s: string) => void): Promise<number> {
  if (!username || !password) throw new FlagError('login: a username (-u) and a password (-p or --password-stdin) are required');
  const host = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  const node = await loginNode(conn);
  const check = Buffer.from(JSON.stringify({ serveraddress: host, username, password }));
  (await conn.request('POST', `/apis/berth.dev/v1/nodes/${encodeURIComponent(node)}/registrylogin`, { body: check, headers: { 'content-type': 'application/json' } })).resume();
  const auth = Buffer.from(`${username}:${password}`).toString('base64');
  const config = JSON.stringify({ auths: { [host]: { username, password, auth } } });
  const secret = {
    apiVersion: 'v1', kind: 'Secret',
    metadata: { name: loginSecretName(host), namespace: conn.namespace, labels: { 'berth.dev/registry-login': 'true' }, annotations: { 'berth.dev/registry': host } },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(config).toString('base64') },
  } as unknown as Secret;
  try {
    const cur = await conn.client.get(SecretKind, conn.namespace, secret.metadata.name!);
    await conn.client.update({ ...secret, metadata: { ...secret.metadata, resourceVersion: cur.metadata.resourceVersion } } as Secret);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await conn.client.create(secret);
  }
  out(`Login Succeeded (credentials checked by node ${node}, stored in Secret ${secret.metadata.name})\n`);
  return 0;
}

/** The node that checks a login: a Ready one (the first by name), else any. */
async function loginNode(conn: Connection): Promise<string> {
  const nodes = (await conn.client.list(NodeKind)).items.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  const ready = nodes.find((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const name = (ready ?? nodes[0])?.metadata.name;
  if (!name) throw new VerbError('login: no node is registered to check the credentials with (is an agent running?)');
  return name;
}

/** `logout REGISTRY`: deletes its login Secret. */
export async function logout(conn: Connection, registry: string, out: (s: string) => void): Promise<number> {
  const host = registry.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  try {
    await conn.client.delete(SecretKind, conn.namespace, loginSecretName(host));
    out(`Removing login credentials for ${host}\n`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    out(`Not logged in to ${host}\n`);
  }
  return 0;
}
