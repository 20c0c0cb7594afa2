/**
 * The streaming subresources of an Image: `log` (the build log as the node kept it,
 * readable after the build) and `export` (`docker save`: a tarball of the image's
 * tags, `?format=docker-archive` (default) or `oci-archive`). Served like a
 * container's log: authenticate, find a node that holds the image, proxy to its
 * agent's stream server.
 *
 *   kubectl get --raw /apis/berth.dev/v1/namespaces/default/images/app/log
 *   kubectl get --raw '/apis/berth.dev/v1/namespaces/default/images/app/export?format=oci-archive' > app.tar
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { ApiError, badRequest, methodNotAllowed, notFound } from '../errors.ts';
import type { ObjectStore } from '../registry/object-store.ts';
import { findResource } from '../registry/resources.ts';
import { searchOf } from './container-streams.ts';
import { nodeImagePath, proxyNodeGet, type DialNode } from './node-proxy.ts';
import type { RequestInfo } from './request-info.ts';

export interface ImageStreamsOptions {
  readonly store: ObjectStore;
  readonly dialNode: DialNode;
  /** The node whose store serves an image (every agent makes every Image today); undefined when none runs. */
  readonly nodeFor: (image: { metadata?: { namespace?: string; name?: string } }) => Promise<string | undefined>;
}

const FORMATS = new Set(['docker-archive', 'oci-archive']);

/** The streaming subresources of `images`, for discovery. */
export const IMAGE_STREAM_SUBRESOURCES: readonly { readonly name: string; readonly kind: string; readonly verbs: readonly string[] }[] = [
  { name: 'log', kind: 'Image', verbs: ['get'] },
  { name: 'export', kind: 'Image', verbs: ['get'] },
];

/** The router of `images/NAME/log` and `images/NAME/export`. */
export function imageStreams(opts: ImageStreamsOptions): express.Router {
  const images = findResource('berth.dev', 'v1', 'images');
  if (!images) throw new Error('the images resource is not served');
  const router = express.Router();
  for (const sub of ['log', 'export'] as const) {
    router.all(`/apis/berth.dev/v1/namespaces/:namespace/images/:name/${sub}`, (req: Request, res: Response, next: NextFunction) => {
      res.locals.requestInfo = { verb: 'get', group: 'berth.dev', resource: 'images', subresource: sub, scope: 'resource' } satisfies RequestInfo;
      if (req.method !== 'GET') return next(methodNotAllowed('the server does not allow this method on the requested resource'));
      return serve(req, res, sub).catch(next);
    });
  }

  async function serve(req: Request, res: Response, sub: 'log' | 'export'): Promise<void> {
    const { namespace, name } = req.params as { namespace: string; name: string };
    const obj = await opts.store.tryGet(images!, namespace, name);
    if (!obj) throw notFound({ group: images!.group, resource: images!.plural }, name);
    let search = '';
    if (sub === 'export') {
      const format = typeof req.query.format === 'string' ? req.query.format : 'docker-archive';
      if (!FORMATS.has(format)) throw badRequest(`format must be docker-archive or oci-archive, not ${JSON.stringify(format)}`);
      if (obj.status?.phase !== 'Ready' && obj.status?.phase !== 'Pushing') throw new ApiError('Conflict', 409, `image ${name} is not Ready (phase ${obj.status?.phase ?? 'Pending'})`);
      const tags = ((obj.spec?.tags as string[] | undefined)?.length ? (obj.spec.tags as string[]) : [`${name}:latest`]);
      search = `?${new URLSearchParams([['format', format], ...tags.map((t): [string, string] => ['ref', t])]).toString()}`;
    } else {
      search = searchOf(req);
    }
    const nodeName = await opts.nodeFor(obj);
    if (!nodeName) throw new ApiError('ServiceUnavailable', 503, 'no node agent is running to serve the image');
    const endpoint = await opts.dialNode(nodeName);
    if (!endpoint) throw new ApiError('ServiceUnavailable', 503, `node ${nodeName} has no stream endpoint: is its agent running?`);
    await proxyNodeGet(endpoint, nodeImagePath(namespace, name, sub, search), res, sub === 'log' ? 'text/plain' : 'application/x-tar');
  }
  return router;
}
