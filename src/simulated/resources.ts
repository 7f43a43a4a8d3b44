/** Fields of Kubernetes objects that the simulation reads and writes freely, as the API's JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any kind's spec and status pass through
export type Loose = Record<string, any>;

/** The object shape the simulated API server stores: any Kubernetes object with metadata. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Static description of one served resource, used for routing, discovery and error messages. */
export interface ResourceDef {
  plural: string;
  singular: string;
  kind: string;
  group: string; // '' for the core group
  version: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: string[];
}

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: readonly ResourceDef[] = [
  { plural: 'namespaces', singular: 'namespace', kind: 'Namespace', group: '', version: 'v1', namespaced: false, shortNames: ['ns'], verbs: VERBS },
  { plural: 'pods', singular: 'pod', kind: 'Pod', group: '', version: 'v1', namespaced: true, shortNames: ['po'], verbs: VERBS },
  {
    plural: 'networkpolicies', singular: 'networkpolicy', kind: 'NetworkPolicy', group: 'networking.k8s.io',
    version: 'v1', namespaced: true, shortNames: ['netpol'], verbs: VERBS,
  },
  {
    plural: 'virtualmachineinstances', singular: 'virtualmachineinstance', kind: 'VirtualMachineInstance',
    group: 'kubevirt.io', version: 'v1', namespaced: true, shortNames: ['vmi', 'vmis'], verbs: VERBS,
  },
  // Leader election (client-go's leaderelection/resourcelock/leaselock.go): get, create, and update with
  // optimistic concurrency (a stale metadata.resourceVersion is 409 Conflict), as the API server serves them.
  {
    plural: 'leases', singular: 'lease', kind: 'Lease', group: 'coordination.k8s.io',
    version: 'v1', namespaced: true, shortNames: [], verbs: VERBS,
  },
];

/** The namespaces every cluster has from the start (kube-apiserver's system namespaces controller). */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

export function findResource(group: string, version: string, plural: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function resourceByPlural(plural: string): ResourceDef {
  const def = RESOURCES.find((r) => r.plural === plural);
  if (!def) throw new Error(`unknown resource ${plural}`);
  return def;
}
