export { startSimulatedCluster, type SimulatedCluster, type SimulatedClusterOptions } from './cluster.js';
export type { FaultInjector, FaultVerb, Failure } from './faults.js';
export type { KubeObject, ObjectMeta } from './resources.js';
export type { Logger } from './server.js';
export type { NetworkInterfaceDefault } from './virt-handler.js';
export type { VmiPhase } from './virt-launcher.js';
export type { VncFramebuffer, VncInputEvent } from './vnc.js';
export { TEST_PATTERN_BARS } from './vnc.js';
