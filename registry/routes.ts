/**
 * The OCI distribution API at `/v2/`: an express router for the berth server,
 * backed by the node's content store. See README.md for what is served.
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { ContentStore } from '../runtime/images/content-store.ts';
import { sha256Of, type Digest } from '../runtime/images/digest.ts';
import { MEDIA_TYPE } from '../runtime/images/oci.ts';
import type { ImageStore } from '../runtime/images/image-store.ts';
import { RegistryAuth, sendJson, TOKEN_PATH, type RegistryCaller, type RegistryIdentity, type RegistryPolicy } from './auth.ts';
import {
  blobUnknown, digestInvalid, manifestBlobUnknown, manifestInvalid, manifestUnknown, nameUnknown, paginationNumberInvalid,
  rangeInvalid, RegistryError, sendRegistryError, toRegistryError, unauthorizedError, unsupported,
} from './errors.ts';
import { MAX_MANIFEST_BYTES, mediaTypeOf, parseRegistryManifest, referencedDigests } from './manifests.ts';
import { RegistryMetrics, type RegistryRoute } from './metrics.ts';
import { isTag, toBlobDigest, toManifestReference, toRepositoryName } from './names.ts';
import { paginate, Repositories } from './repositories.ts';
import { TokenSigner } from './token.ts';
import { parseContentRange, uploadLocation, uploadRange, Uploads, type Upload } from './uploads.ts';

export interface RegistryOptions {
  /** Default 5 minutes: abandoned uploads are swept and unreferenced blobs collected this often. */
  readonly maintenanceIntervalMs?: number;
  /** An upload with no request for this long is abandoned. Default 15 minutes. */
  readonly uploadIdleTimeoutMs?: number;
  /** Blobs linked into a repository but used by none of its manifests are unlinked after this. Default 1 hour. */
  readonly unreferencedBlobGraceMs?: number;
  /** Default 4 MiB. */
  readonly maxManifestBytes?: number;
  /** Lifetime of issued tokens. Default 300 s. */
  readonly tokenTtlSeconds?: number;
  /** Who may do what; default `defaultRegistryPolicy`. */
  readonly policy?: RegistryPolicy;
}

export interface RegistryDeps {
  /** The node's image store: its content store holds the registry's blobs and state. */
  readonly images: ImageStore;
  /** The API's bearer tokens and whom they stand for (what `bearerAuth` is given). */
  readonly tokens: ReadonlyMap<string, RegistryIdentity>;
  /** Where the token-signing key lives (made at first start), e.g. `<dataDir>/registry/token.key`. */
  readonly tokenKeyPath: string;
  readonly logger: Logger;
  /** Where to register the metrics (the server's `/metrics` registry). */
  readonly metricsRegistry: MetricsRegistry;
}

/** The registry of one server. */
export interface BuiltinRegistry {
  /** Serves every path under `/v2`; passes other requests on. */
  readonly router: express.Router;
  readonly uploads: Uploads;
  readonly repositories: Repositories;
  /**
   * Unlinks blobs no manifest of their repository uses once past the grace period,
   * then collects unreachable blobs of the whole store. Runs one at a time.
   */
  collectGarbage(): Promise<{ unlinkedBlobs: number; removedBlobs: number }>;
  /** Stops maintenance and removes uploads in progress. */
  close(): Promise<void>;
}

/** True for the paths the registry serves (`/v2` and below). */
export const isRegistryPath = (path: string): boolean => path === '/v2' || path.startsWith('/v2/');

const ROUTES: readonly [RegExp, RegistryRoute][] = [
  [/^\/v2\/(.+)\/tags\/list$/, 'tags'],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, 'manifest'],
  [/^\/v2\/(.+)\/blobs\/uploads\/?()$/, 'upload'],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, 'upload'],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, 'blob'],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, 'referrers'],
];

const OCTET_STREAM = 'application/octet-stream';

/**
 * Opens the registry: the content store, the token key, metrics, and the
 * maintenance timer (unref'd). Call `close` on shutdown.
 */
export async function createRegistry(deps: RegistryDeps, opts: RegistryOptions = {}): Promise<BuiltinRegistry> {
  const store: ContentStore = await deps.images.content();
  const repositories = new Repositories(store);
  const uploads = new Uploads({ store, repositories, ...(opts.uploadIdleTimeoutMs !== undefined && { idleTimeoutMs: opts.uploadIdleTimeoutMs }) });
  const auth = new RegistryAuth({
    tokens: deps.tokens,
    signer: await TokenSigner.open(deps.tokenKeyPath),
    ...(opts.policy && { policy: opts.policy }),
    ...(opts.tokenTtlSeconds !== undefined && { tokenTtlSeconds: opts.tokenTtlSeconds }),
  });
  const metrics = new RegistryMetrics(deps.metricsRegistry);
  const log = deps.logger.child({ component: 'registry' });
  const maxManifestBytes = opts.maxManifestBytes ?? MAX_MANIFEST_BYTES;
  const graceMs = opts.unreferencedBlobGraceMs ?? 3_600_000;

  let collecting: Promise<{ unlinkedBlobs: number; removedBlobs: number }> = Promise.resolve({ unlinkedBlobs: 0, removedBlobs: 0 });
  const collectGarbage = () => {
    collecting = collecting.catch(() => undefined).then(async () => {
      const unlinkedBlobs = await repositories.pruneBlobLinks(Date.now() - graceMs, async (d, mediaType) =>
        referencedDigests(await store.readBlob(d).catch(() => Buffer.alloc(0)), mediaType));
      const gc = await deps.images.garbageCollect();
      if (unlinkedBlobs > 0 || gc.removedBlobs.length > 0) log.info({ unlinkedBlobs, removedBlobs: gc.removedBlobs.length, freedBytes: gc.freedBlobBytes }, 'registry garbage collected');
      return { unlinkedBlobs, removedBlobs: gc.removedBlobs.length };
    });
    return collecting;
  };
  const collectSoon = () => void collectGarbage().catch((err: unknown) => log.error({ err }, 'registry garbage collection failed'));
  const timer = setInterval(() => {
    void uploads.sweep()
      .then((gone) => gone.length > 0 && log.info({ uploads: gone }, 'removed abandoned uploads'))
      .then(() => collectGarbage())
      .catch((err: unknown) => log.error({ err }, 'registry maintenance failed'));
  }, opts.maintenanceIntervalMs ?? 300_000);
  timer.unref();

  // ---- helpers -------------------------------------------------------------

  const need = (req: IncomingMessage, caller: RegistryCaller | undefined, name: string, action: 'pull' | 'push' | 'delete'): void => {
    if (caller?.allows('repository', name, action)) return;
    auth.refuse(req, caller, { type: 'repository', name, actions: action === 'push' ? ['pull', 'push'] : [action] });
  };
  const repoOrThrow = (name: string) => {
    const r = repositories.get(name);
    if (!r) throw nameUnknown(`repository ${name} not found`, { name });
    return r;
  };
  const queryOf = (req: Request): URLSearchParams => new URL(req.url, 'http://x').searchParams;

  const sendEmpty = (res: Response, status: number, headers: Record<string, string>): void => {
    res.statusCode = status;
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('Content-Length', 0);
    res.end();
  };
  const uploadHeaders = (u: Upload): Record<string, string> => ({
    Location: uploadLocation(u), Range: uploadRange(u), 'Docker-Upload-UUID': u.id,
  });
  const countReceived = (route: RegistryRoute) => (n: number) => metrics.observeReceived(route, n);

  async function readLimited(req: IncomingMessage, max: number): Promise<Buffer> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > max) throw tooLarge(max);
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }
  const tooLarge = (max: number) =>
    new RegistryError('MANIFEST_INVALID', 413, `manifest larger than ${max} bytes`, { limit: max }, { Connection: 'close' });

  // ---- handlers ------------------------------------------------------------

  async function manifests(req: Request, res: Response, caller: RegistryCaller | undefined, name: string, reference: string): Promise<void> {
    const ref = toManifestReference(reference);
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        need(req, caller, name, 'pull');
        const repo = repoOrThrow(name);
        const digest = ref.digest ?? repo.tags[ref.tag!];
        const record = digest === undefined ? undefined : repo.manifests[digest];
        if (!record || !digest) throw manifestUnknown(`manifest ${reference} not found in ${name}`, { name, reference });
        res.setHeader('Content-Type', record.mediaType);
        res.setHeader('Docker-Content-Digest', digest);
        res.setHeader('ETag', `"${digest}"`);
        if (req.method === 'HEAD') {
          res.setHeader('Content-Length', record.size);
          res.end();
          return;
        }
        const body = await store.readBlob(digest as Digest);
        res.setHeader('Content-Length', body.length);
        res.end(body);
        metrics.observeSent('manifest', body.length);
        return;
      }
      case 'PUT': {
        need(req, caller, name, 'push');
        const body = await readLimited(req, maxManifestBytes);
        metrics.observeReceived('manifest', body.length);
        const parsed = parseRegistryManifest(body, req.headers['content-type']);
        const digest = sha256Of(body);
        if (ref.digest !== undefined && ref.digest !== digest)
          throw digestInvalid(`manifest has digest ${digest}, not ${ref.digest}`, { digest: ref.digest });
        const tags = ref.tag !== undefined ? [ref.tag] : queryOf(req).getAll('tag');
        for (const t of tags) if (!isTag(t)) throw manifestInvalid(`invalid tag ${JSON.stringify(t)}`, { tag: t });
        const repo = repositories.get(name);
        for (const b of parsed.blobs) {
          if (!repositories.hasBlob(name, b.digest) || !(await store.hasBlob(b.digest)))
            throw manifestBlobUnknown(`blob ${b.digest} is not in repository ${name}`, { digest: b.digest });
          const size = await store.blobSize(b.digest);
          if (size !== b.size) throw manifestInvalid(`descriptor of ${b.digest} gives size ${b.size}, the blob has ${size} bytes`, { digest: b.digest });
        }
        for (const m of parsed.manifests) {
          const held = repo?.manifests[m.digest];
          if (!held) throw manifestBlobUnknown(`manifest ${m.digest} is not in repository ${name}`, { digest: m.digest });
          if (held.size !== m.size) throw manifestInvalid(`descriptor of ${m.digest} gives size ${m.size}, the manifest has ${held.size} bytes`, { digest: m.digest });
        }
        const lease = store.lease();
        let recorded = false;
        try {
          await store.writeBlob(() => [body], { digest, size: body.length, lease, what: `manifest ${digest}` });
          await repositories.putManifest({
            name, digest, tags,
            blobs: parsed.blobs.map((b) => b.digest),
            manifests: parsed.manifests.map((m) => m.digest),
            manifest: {
              mediaType: parsed.mediaType, size: body.length, createdAtMs: Date.now(),
              ...(parsed.subject && { subject: parsed.subject.digest }),
              ...(parsed.artifactType !== undefined && { artifactType: parsed.artifactType }),
              ...(parsed.annotations && { annotations: parsed.annotations }),
            },
          });
          recorded = true;
        } finally {
          lease.release();
          // a manifest blob written for a push that then failed must not stay
          if (!recorded) collectSoon();
        }
        log.info({ name, digest, tags, user: caller?.identity.user }, 'manifest pushed');
        sendEmpty(res, 201, {
          Location: `/v2/${name}/manifests/${digest}`, 'Docker-Content-Digest': digest,
          ...(parsed.subject && { 'OCI-Subject': parsed.subject.digest }),
        });
        return;
      }
      case 'DELETE': {
        need(req, caller, name, 'delete');
        repoOrThrow(name);
        const deleted = ref.digest !== undefined ? await repositories.deleteManifest(name, ref.digest) : await repositories.deleteTag(name, ref.tag!);
        if (!deleted) throw manifestUnknown(`manifest ${reference} not found in ${name}`, { name, reference });
        log.info({ name, reference, user: caller?.identity.user }, 'manifest deleted');
        sendEmpty(res, 202, {});
        if (ref.digest !== undefined) collectSoon();
        return;
      }
      default:
        throw methodNotAllowed(res, 'GET, HEAD, PUT, DELETE');
    }
  }

  async function blobs(req: Request, res: Response, caller: RegistryCaller | undefined, name: string, digestText: string): Promise<void> {
    if (req.method === 'DELETE') {
      need(req, caller, name, 'delete');
      const digest = toBlobDigest(digestText);
      if (!(await repositories.unlinkBlob(name, digest))) throw blobUnknown(`blob ${digest} not found in ${name}`, { digest });
      sendEmpty(res, 202, { 'Docker-Content-Digest': digest });
      collectSoon();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(res, 'GET, HEAD, DELETE');
    need(req, caller, name, 'pull');
    const digest = toBlobDigest(digestText);
    if (!repositories.hasBlob(name, digest) || !(await store.hasBlob(digest))) throw blobUnknown(`blob ${digest} not found in ${name}`, { digest });
    const size = await store.blobSize(digest);
    let start = 0;
    let end = size - 1;
    const range = req.headers.range;
    if (range !== undefined && req.method === 'GET') {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      const a = m?.[1] ? Number(m[1]) : undefined;
      const b = m?.[2] ? Number(m[2]) : undefined;
      if (!m || (a === undefined && b === undefined)) throw rangeInvalid(`invalid Range ${JSON.stringify(range)}`, undefined, { 'Content-Range': `bytes */${size}` });
      if (a === undefined) start = Math.max(0, size - b!);
      else {
        start = a;
        if (b !== undefined) end = Math.min(b, size - 1);
      }
      if (start >= size || start > end) throw rangeInvalid(`range ${range} not satisfiable for ${size} bytes`, undefined, { 'Content-Range': `bytes */${size}` });
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    } else res.statusCode = 200;
    res.setHeader('Content-Type', OCTET_STREAM);
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('ETag', `"${digest}"`);
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Cache-Control', 'max-age=31536000');
    res.setHeader('Content-Length', size === 0 ? 0 : end - start + 1);
    if (req.method === 'HEAD' || size === 0) {
      res.end();
      return;
    }
    const stream = createReadStream(store.blobPath(digest), { start, end, highWaterMark: 1024 * 1024 });
    await new Promise<void>((resolve) => {
      stream.once('error', (err) => {
        log.error({ err, digest }, 'reading blob failed');
        res.destroy(err);
        resolve();
      });
      res.once('close', () => {
        stream.destroy();
        metrics.observeSent('blob', stream.bytesRead);
        resolve();
      });
      stream.pipe(res);
    });
  }

  async function uploadsStart(req: Request, res: Response, caller: RegistryCaller | undefined, name: string): Promise<void> {
    if (req.method !== 'POST') throw methodNotAllowed(res, 'POST');
    need(req, caller, name, 'push');
    const q = queryOf(req);
    const mount = q.get('mount');
    if (mount !== null) {
      const digest = toBlobDigest(mount);
      const from = q.get('from');
      const source = from !== null
        ? [from]
        : repositories.names().filter((r) => repositories.hasBlob(r, digest));
      const ok = source.some((r) => {
        try {
          toRepositoryName(r);
        } catch {
          return false;
        }
        return caller?.allows('repository', r, 'pull') && repositories.hasBlob(r, digest);
      });
      if (ok && (await store.hasBlob(digest))) {
        await repositories.linkBlob(name, digest);
        log.debug({ name, digest, from }, 'blob mounted');
        sendEmpty(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
        return;
      }
    }
    const digestParam = q.get('digest');
    if (digestParam !== null) {
      const digest = toBlobDigest(digestParam);
      const u = uploads.start(name);
      try {
        await uploads.finish(name, u.id, digest, req, { onBytes: countReceived('upload') });
      } catch (err) {
        await uploads.cancel(name, u.id).catch(() => undefined);
        throw err;
      }
      sendEmpty(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
      return;
    }
    const u = uploads.start(name);
    sendEmpty(res, 202, uploadHeaders(u));
  }

  async function upload(req: Request, res: Response, caller: RegistryCaller | undefined, name: string, id: string): Promise<void> {
    need(req, caller, name, 'push');
    switch (req.method) {
      case 'GET':
        sendEmpty(res, 204, uploadHeaders(uploads.get(name, id)));
        return;
      case 'PATCH': {
        const cr = req.headers['content-range'];
        const current = uploads.get(name, id);
        const u = await uploads.append(name, id, req, {
          ...(cr !== undefined && { range: parseContentRange(cr, current) }),
          onBytes: countReceived('upload'),
        });
        sendEmpty(res, 202, uploadHeaders(u));
        return;
      }
      case 'PUT': {
        const digestParam = queryOf(req).get('digest');
        if (digestParam === null) throw digestInvalid('the digest query parameter is required to complete an upload');
        const digest = toBlobDigest(digestParam);
        uploads.get(name, id);
        const cr = req.headers['content-range'];
        if (cr !== undefined) {
          await uploads.append(name, id, req, { range: parseContentRange(cr, uploads.get(name, id)), onBytes: countReceived('upload') });
          await uploads.finish(name, id, digest);
        } else await uploads.finish(name, id, digest, req, { onBytes: countReceived('upload') });
        sendEmpty(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
        return;
      }
      case 'DELETE':
        await uploads.cancel(name, id);
        sendEmpty(res, 204, {});
        return;
      default:
        throw methodNotAllowed(res, 'GET, PATCH, PUT, DELETE');
    }
  }

  function pageParams(req: Request): { n?: number; last?: string } {
    const q = queryOf(req);
    const nText = q.get('n');
    let n: number | undefined;
    if (nText !== null) {
      n = Number(nText);
      if (!/^\d+$/.test(nText) || !Number.isSafeInteger(n)) throw paginationNumberInvalid(`invalid n ${JSON.stringify(nText)}`, { n: nText });
    }
    const last = q.get('last') ?? undefined;
    return { ...(n !== undefined && { n }), ...(last !== undefined && { last }) };
  }
  const linkHeader = (path: string, n: number | undefined, next: string | undefined): Record<string, string> =>
    next === undefined ? {} : { Link: `<${path}?${new URLSearchParams({ ...(n !== undefined && { n: String(n) }), last: next }).toString()}>; rel="next"` };

  function tags(req: Request, res: Response, caller: RegistryCaller | undefined, name: string): void {
    if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
    need(req, caller, name, 'pull');
    const repo = repoOrThrow(name);
    const { n, last } = pageParams(req);
    const page = paginate(Object.keys(repo.tags), n, last);
    sendJson(res, 200, { name, tags: page.items }, linkHeader(`/v2/${name}/tags/list`, n, page.next));
  }

  function catalog(req: Request, res: Response, caller: RegistryCaller | undefined): void {
    if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
    if (!caller?.allows('registry', 'catalog', '*')) auth.refuse(req, caller, { type: 'registry', name: 'catalog', actions: ['*'] });
    const { n, last } = pageParams(req);
    const page = paginate(repositories.names(), n, last);
    sendJson(res, 200, { repositories: page.items }, linkHeader('/v2/_catalog', n, page.next));
  }

  function referrers(req: Request, res: Response, caller: RegistryCaller | undefined, name: string, digestText: string): void {
    if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
    need(req, caller, name, 'pull');
    const subject = toBlobDigest(digestText);
    const filter = queryOf(req).get('artifactType');
    const repo = repositories.get(name);
    const manifests = Object.entries(repo?.manifests ?? {})
      .filter(([, m]) => m.subject === subject && (filter === null || m.artifactType === filter))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([digest, m]) => ({
        mediaType: m.mediaType, digest, size: m.size,
        ...(m.artifactType !== undefined && { artifactType: m.artifactType }),
        ...(m.annotations && { annotations: m.annotations }),
      }));
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests });
    if (filter !== null) res.setHeader('OCI-Filters-Applied', 'artifactType');
    res.statusCode = 200;
    res.setHeader('Content-Type', MEDIA_TYPE.ociIndex);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }

  // ---- dispatch --------------------------------------------------------------

  async function serve(req: Request, res: Response, setRoute: (r: RegistryRoute) => void): Promise<void> {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      throw new RegistryError('NAME_INVALID', 400, 'malformed path');
    }
    if (path === TOKEN_PATH) {
      setRoute('token');
      return auth.serveToken(req, res);
    }
    const caller = auth.authenticate(req);
    if (caller) res.locals.user = { name: caller.identity.user, groups: caller.identity.groups };
    if (path === '/v2' || path === '/v2/') {
      setRoute('base');
      if (!caller) throw unauthorizedError('authentication required', undefined, { 'WWW-Authenticate': auth.challenge(req) });
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(res, 'GET, HEAD');
      return sendJson(res, 200, {});
    }
    if (path === '/v2/_catalog') {
      setRoute('catalog');
      return catalog(req, res, caller);
    }
    for (const [re, route] of ROUTES) {
      const m = re.exec(path);
      if (!m) continue;
      setRoute(route);
      const name = toRepositoryName(m[1]!);
      const arg = m[2]!;
      switch (re) {
        case ROUTES[0]![0]: return tags(req, res, caller, name);
        case ROUTES[1]![0]: return manifests(req, res, caller, name, arg);
        case ROUTES[2]![0]: return uploadsStart(req, res, caller, name);
        case ROUTES[3]![0]: return upload(req, res, caller, name, arg);
        case ROUTES[4]![0]: return blobs(req, res, caller, name, arg);
        default: return referrers(req, res, caller, name, arg);
      }
    }
    throw new RegistryError('UNSUPPORTED', 404, `no registry endpoint at ${path}`);
  }

  const router = express.Router();
  router.use((req, res, next) => {
    const q = req.url.indexOf('?');
    if (!isRegistryPath(q < 0 ? req.url : req.url.slice(0, q))) return next();
    const started = process.hrtime.bigint();
    let route: RegistryRoute = 'unknown';
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    res.once('close', () => {
      metrics.observeRequest(req.method, route, res.headersSent ? res.statusCode : 0, Number(process.hrtime.bigint() - started) / 1e9);
    });
    serve(req, res, (r) => (route = r)).catch((err: unknown) => {
      const e = toRegistryError(err);
      if (e.status >= 500) log.error({ err: e.cause ?? err, method: req.method, path: req.url.split('?')[0] }, 'registry request failed');
      sendRegistryError(res, e);
      if (e.headers.Connection === 'close') res.once('finish', () => req.destroy());
    });
  });

  return {
    router,
    uploads,
    repositories,
    collectGarbage,
    close: async () => {
      clearInterval(timer);
      await collecting.catch(() => undefined);
      await uploads.close();
    },
  };
}

function methodNotAllowed(res: Response, allow: string): RegistryError {
  res.setHeader('Allow', allow);
  return unsupported(`method not allowed; allowed: ${allow}`);
}
