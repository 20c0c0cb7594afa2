/**
 * `controllerFor(kind)…complete(reconciler)`: declares a controller the way
 * controller-runtime's builder does. The result is a `ControllerSpec` for
 * `Manager.add`, which wires it to shared informers.
 */
import type { KubeObject, OwnerReference } from '../../api/types/index.ts';
import type { MapFunc } from './controller.ts';
import type { RateLimiter } from './rate-limiter.ts';
import type { Reconciler, Request } from './reconcile.ts';
import { apiVersionOf, type ResourceKind } from './resource-kind.ts';

/** Narrows a watch; informers are shared between watches with equal selectors. */
export interface WatchSelectors {
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/** One watched kind and how its objects map to keys. */
export interface WatchSpec {
  readonly kind: ResourceKind;
  readonly map: MapFunc;
  readonly selectors: WatchSelectors;
}

/** Settings of a controller's loop. */
export interface ControllerSettings {
  /** Default 1. */
  readonly workers?: number;
  /** Default 60 s. */
  readonly reconcileTimeoutMs?: number;
  readonly rateLimiter?: RateLimiter<string>;
}

/** A complete controller declaration: what `Manager.add` takes. */
export interface ControllerSpec {
  readonly name: string;
  /** The kind whose keys the reconciler receives. */
  readonly forKind: ResourceKind;
  readonly watches: readonly WatchSpec[];
  readonly reconciler: Reconciler;
  readonly settings: ControllerSettings;
}

/** Enqueues the object itself. */
export const enqueueSelf: MapFunc = (obj) => (obj.metadata.name ? [{ namespace: obj.metadata.namespace ?? '', name: obj.metadata.name }] : []);

/**
 * Enqueues the owners of kind `owner` named in `ownerReferences` (by default only the
 * one with `controller: true`, as controller-runtime's `Owns` does).
 */
export function enqueueOwner(owner: ResourceKind, opts: { readonly onlyController?: boolean } = {}): MapFunc {
  const onlyController = opts.onlyController ?? true;
  const apiVersion = apiVersionOf(owner);
  return (obj) =>
    (obj.metadata.ownerReferences ?? [])
      .filter((r: OwnerReference) => r.kind === owner.kind && r.apiVersion === apiVersion && (!onlyController || r.controller === true))
      .map((r): Request => ({ namespace: owner.namespaced ? (obj.metadata.namespace ?? '') : '', name: r.name }));
}

/** Builds a `ControllerSpec`; see `controllerFor`. */
export class ControllerBuilder<T extends KubeObject> {
  private name: string;
  private readonly watchList: WatchSpec[] = [];
  private settings: ControllerSettings = {};

  constructor(private readonly forKind: ResourceKind<T>) {
    this.name = forKind.kind.toLowerCase();
  }

  /** Names the controller (logs, metrics, queue). Default: the kind in lower case. */
  named(name: string): this {
    this.name = name;
    return this;
  }

  /**
   * Watches `kind` and enqueues `map(obj)` on each change. Watching the primary kind
   * here replaces the default `watches(forKind, enqueueSelf)`; that is how to put a
   * selector on it (`{ fieldSelector: 'spec.nodeName=n1' }`).
   */
  watches<U extends KubeObject>(kind: ResourceKind<U>, map: MapFunc<U>, selectors: WatchSelectors = {}): this {
    this.watchList.push({ kind: kind as ResourceKind, map: map as MapFunc, selectors });
    return this;
  }

  /** Watches `kind` and enqueues the primary object that controls each one (`ownerReferences`). */
  owns(kind: ResourceKind, selectors: WatchSelectors = {}): this {
    return this.watches(kind, enqueueOwner(this.forKind), selectors);
  }

  /** Loop settings: workers, reconcile timeout, rate limiter. */
  withSettings(settings: ControllerSettings): this {
    this.settings = { ...this.settings, ...settings };
    return this;
  }

  /** Finishes the declaration with its reconciler. */
  complete(reconciler: Reconciler): ControllerSpec {
    const watchesPrimary = this.watchList.some((w) => sameKind(w.kind, this.forKind));
    const watches = watchesPrimary ? [...this.watchList] : [{ kind: this.forKind as ResourceKind, map: enqueueSelf, selectors: {} }, ...this.watchList];
    return { name: this.name, forKind: this.forKind, watches, reconciler, settings: this.settings };
  }
}

/** Starts declaring a controller whose reconciler receives keys of `kind`. */
export function controllerFor<T extends KubeObject>(kind: ResourceKind<T>): ControllerBuilder<T> {
  return new ControllerBuilder(kind);
}

/** Same group, version and plural. */
export const sameKind = (a: ResourceKind, b: ResourceKind): boolean => a.group === b.group && a.version === b.version && a.plural === b.plural;
