/**
 * `ProgressReporter`: status writes while a pull, build, commit or push runs — the
 * phase at once, then what is happening (`status.progress`: a message and bytes
 * transferred over all layers) at most once per interval, never two writes at a
 * time. `latest` is the object as last written, for the write that ends the operation.
 */
import type { Condition, ImageStatus } from '../../api/types/index.ts';
import type { ImageProgress } from '../../runtime/cri/index.ts';
import { Image, type ApiClient, type Clock } from '../framework/index.ts';

export interface ProgressReporterOptions {
  /** The object as the operation starts. */
  readonly image: Image;
  readonly client: ApiClient;
  readonly clock: Clock;
  /** Least time between two writes. */
  readonly intervalMs: number;
  /** `status.phase` while the operation runs. */
  readonly phase: ImageStatus['phase'];
  readonly generation: number;
  /** The conditions to write with a progress message. */
  readonly conditions: (image: Image, message: string) => Condition[] | undefined;
  /** Other status fields to write while running. */
  readonly extra?: Partial<ImageStatus>;
}

/** See the module comment. Errors of progress writes are swallowed: progress is best effort. */
export class ProgressReporter {
  /** The object as last written (or as given). */
  latest: Image;
  private text = '';
  private readonly layers = new Map<string, { current: number; total: number }>();
  private lastWriteMs = -Infinity;
  private writing: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly opts: ProgressReporterOptions) {
    this.latest = opts.image;
  }

  /** Writes the phase and `message` now. */
  async start(message: string): Promise<void> {
    this.text = message;
    await this.flush();
  }

  /** Says what is happening now (e.g. `step 3/7 RUN make`). */
  message(text: string): void {
    this.text = text;
    this.schedule();
  }

  /** Counts bytes of one layer or blob. */
  bytes(p: ImageProgress): void {
    this.layers.set(p.layer, { current: p.currentBytes, total: p.totalBytes });
    this.schedule();
  }

  /** Stops writing; waits for a write in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.writing) return;
    const wait = Math.max(0, this.lastWriteMs + this.opts.intervalMs - this.opts.clock.nowMs());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
  }

  private flush(): Promise<void> {
    if (this.writing) return this.writing;
    this.writing = this.writeOnce().finally(() => {
      this.writing = undefined;
    });
    return this.writing;
  }

  private async writeOnce(): Promise<void> {
    this.lastWriteMs = this.opts.clock.nowMs();
    let completed = 0;
    let total = 0;
    for (const l of this.layers.values()) {
      completed += l.current;
      total += l.total;
    }
    const current = this.latest;
    const status: ImageStatus = {
      ...current.status,
      ...this.opts.extra,
      phase: this.opts.phase,
      observedGeneration: this.opts.generation,
      progress: { message: this.text, ...(this.layers.size ? { completedBytes: completed, totalBytes: total } : {}) },
      conditions: this.opts.conditions(current, this.text),
    };
    delete status.message;
    try {
      this.latest = await this.opts.client.updateStatusIfChanged(current, status);
    } catch {
      // A conflict (someone else wrote) or a dropped connection: take the object as it is now.
      this.latest = await this.opts.client.get(Image, current.metadata.namespace ?? '', current.metadata.name ?? '').catch(() => current);
    }
  }
}
