/**
 * `POST /apis/berth.dev/v1/nodes/NAME/registrylogin` — what `docker login` asks of its
 * daemon: the node NAME checks a registry's credentials as it reaches that registry (its
 * insecure hosts and CAs), and nothing is stored (the CLI then keeps them in a Secret).
 * The body is Docker's `AuthConfig` subset `{"serveraddress", "username", "password"}`
 * in JSON; the node's answer — a `Status`: `Success`, 409 when the registry refuses the
 * credentials, 503 when it cannot be reached — reaches the client unchanged.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { ApiError, methodNotAllowed, notFound } from '../errors.ts';
import type { ObjectStore } from '../registry/object-store.ts';
import { findResource } from '../registry/resources.ts';
import { decodeDocument, readRawBody } from './body.ts';
import { postNode, type DialNode } from './node-proxy.ts';
import type { RequestInfo } from './request-info.ts';

/** The subresources of `nodes`, for discovery. */
export const NODE_SUBRESOURCES: readonly { readonly name: string; readonly kind: string; readonly verbs: readonly string[] }[] = [
  { name: 'registrylogin', kind: 'Status', verbs: ['create'] },
];

/** A registry host, a username and a password: nothing near this size. */
const MAX_LOGIN_BODY_BYTES = 16 * 1024;

export interface RegistryLoginOptions {
  readonly store: ObjectStore;
  readonly dialNode: DialNode;
}

/** The router of `nodes/NAME/registrylogin`. */
export function registryLogin(opts: RegistryLoginOptions): express.Router {
  const nodes = findResource('berth.dev', 'v1', 'nodes');
  if (!nodes) throw new Error('the nodes resource is not served');
  const router = express.Router();
  router.all('/apis/berth.dev/v1/nodes/:name/registrylogin', (req: Request, res: Response, next: NextFunction) => {
    res.locals.requestInfo = { verb: 'create', group: 'berth.dev', resource: 'nodes', subresource: 'registrylogin', scope: 'resource' } satisfies RequestInfo;
    if (req.method !== 'POST') return next(methodNotAllowed('the server does not allow this method on the requested resource'));
    return serve(req, res).catch(next);
  });

  async function serve(req: Request, res: Response): Promise<void> {
    const { name } = req.params as { name: string };
    // read (and bound) the body first: it is checked again by the node, but only JSON travels on
    const body = decodeDocument(await readRawBody(req, MAX_LOGIN_BODY_BYTES), 'json');
    if (!(await opts.store.tryGet(nodes!, '', name))) throw notFound({ group: nodes!.group, resource: nodes!.plural }, name);
    let endpoint;
    try {
      endpoint = await opts.dialNode(name);
    } catch (err) {
      throw new ApiError('ServiceUnavailable', 503, `cannot reach node ${name}: ${(err as Error).message}`, undefined, { cause: err });
    }
    if (!endpoint) throw new ApiError('ServiceUnavailable', 503, `node ${name} has no stream endpoint: is its agent running?`);
    const answer = await postNode(endpoint, '/registry-login', Buffer.from(JSON.stringify(body)));
    res.status(answer.status).type(answer.type).send(answer.body);
  }

  return router;
}
