/**
 * `AgentController`: a framework `Controller` that also runs feeds — background loops
 * that enqueue keys from outside the API (runtime events) — and starts itself once the
 * manager's informers it reads have synced, and stops with the manager.
 */
import { Controller, type ControllerOptions, type Manager } from '../framework/index.ts';

/** A background loop that enqueues keys into `controller` until `signal` aborts. Must not reject. */
export type Feed = (controller: Controller, signal: AbortSignal) => Promise<void>;

export interface AgentControllerOptions extends ControllerOptions {
  readonly feeds?: readonly Feed[];
}

/**
 * A `Controller` with feeds. `start` starts the workers, then the feeds; `stop`
 * aborts the feeds, drains the workers (as `Controller.stop`) and waits for the feeds
 * to return. One run only.
 */
export class AgentController extends Controller {
  private readonly feedStop = new AbortController();
  private feeding: Promise<void>[] = [];
  private stopped: Promise<void> | undefined;

  constructor(private readonly agentOpts: AgentControllerOptions) {
    super(agentOpts);
  }

  override start(): void {
    if (this.feeding.length > 0 || this.feedStop.signal.aborted) return;
    super.start();
    this.feeding = (this.agentOpts.feeds ?? []).map((feed) => feed(this, this.feedStop.signal));
  }

  /** Idempotent: later calls wait for the first. */
  override stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.feedStop.abort();
      await super.stop();
      await Promise.all(this.feeding);
    })();
    return this.stopped;
  }
}

/** Runs `controller` for the life of `manager` (a manager `Runnable`): started after the informers sync, drained on `manager.stop()`. */
export function runWithManager(manager: Manager, controller: Controller): void {
  manager.addRunnable({ start: () => controller.start(), stop: () => controller.stop() });
}
