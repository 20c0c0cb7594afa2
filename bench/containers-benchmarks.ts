/**
 * The container benchmarks of issue 3, registered with the runner (`run.ts`) as one
 * list. Those on the real runtime need root, runc and conmon (and podman for
 * `ctr-exit`); elsewhere they report a skipped row instead of failing.
 * See the "Containers" section of bench/README.md.
 */
import type { Benchmark } from './benchmark.ts';
import { containerExitBenchmark } from './containers-exit.ts';
import { containersFakeBenchmark, containersHundredBenchmark } from './containers-many.ts';
import { containerStartBenchmark } from './containers-start.ts';
import { containerPortBenchmark } from './containers-port.ts';

/** `ctr-start`, `ctr-exit`, `ctr-port`, `ctr-100`, `ctr-5000-fake`, in the order they run. */
export const CONTAINER_BENCHMARKS: readonly Benchmark[] = [
  containerStartBenchmark,
  containerExitBenchmark,
  containerPortBenchmark,
  containersHundredBenchmark,
  containersFakeBenchmark,
];
