/** The real runtime (conmon + runc). Wire it in `cli/`; controllers use `runtime/cri` only. */
export { RuncRuntimeService, DEFAULT_CGROUP_PARENT, RUNTIME_API_VERSION, type RuncRuntimeServiceOptions } from './runtime-service.ts';
export type { RuntimeLogger } from './context.ts';
