/** Test doubles and suites for the runtime port. */
export { FakeRuntimeService, type FakeContainer, type FakeRuntimeServiceOptions, type RuntimeMethod } from './fake-runtime-service.ts';
export { runtimeConformance, type RuntimeUnderTest, type RuntimeConformanceOptions } from './conformance.ts';
export { BusyboxRootfs, BUSYBOX_REF, BUSYBOX_IMAGE_CONFIG } from './busybox-rootfs.ts';
export { FakeNetworkService, type NetworkMethod } from './fake-network-service.ts';
