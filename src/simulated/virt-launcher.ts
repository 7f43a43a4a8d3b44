import { randomBytes } from 'node:crypto';
import type { KubeObject } from './resources.js';
import { timestamp } from './store.js';

/** Pure builders and mutators for the objects KubeVirt would manage: the virt-launcher pod and VMI status. */

export const NODE_NAME = 'sim-node-1';
export type VmiPhase = 'Pending' | 'Scheduling' | 'Scheduled' | 'Running' | 'Succeeded' | 'Failed';

const ALNUM = 'bcdfghjklmnpqrstvwxz2456789'; // the alphabet of Kubernetes' generated name suffixes

export function randomSuffix(length = 5): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

/** KubeVirt copies the VMI's labels to its pod and adds its own, which is what lets one label-selected pod watch see every VM. */
export function buildLauncherPod(vmi: KubeObject, podName: string): KubeObject {
  const name = vmi.metadata.name ?? '';
  return {
    metadata: {
      name: podName,
      namespace: vmi.metadata.namespace,
      labels: {
        ...(vmi.metadata.labels ?? {}),
        'kubevirt.io': 'virt-launcher',
        'kubevirt.io/created-by': vmi.metadata.uid ?? '',
        'vm.kubevirt.io/name': name,
      },
      annotations: { 'kubevirt.io/domain': name },
      ownerReferences: [{
        apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name, uid: vmi.metadata.uid,
        controller: true, blockOwnerDeletion: true,
      }],
    },
    spec: {
      containers: [{ name: 'compute', image: 'virt-launcher:simulated', command: ['virt-launcher'] }],
      restartPolicy: 'Never',
    },
    status: {
      phase: 'Pending',
      conditions: [condition('Ready', false), condition('ContainersReady', false)],
      qosClass: 'Burstable',
    },
  };
}

export function condition(type: string, status: boolean, message?: string): Record<string, unknown> {
  const c: Record<string, unknown> = { type, status: status ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: timestamp() };
  if (message) c.message = message;
  return c;
}

/** Replaces (or adds) one condition, keeping the others in place. */
export function setCondition(obj: KubeObject, type: string, status: boolean, message?: string): void {
  obj.status ??= {};
  const list = Array.isArray(obj.status.conditions) ? (obj.status.conditions as Array<Record<string, unknown>>) : [];
  const next = condition(type, status, message);
  const i = list.findIndex((c) => c.type === type);
  if (i >= 0) list[i] = next;
  else list.push(next);
  obj.status.conditions = list;
}

export function phaseOf(obj: KubeObject | undefined): string | undefined {
  return obj?.status?.phase as string | undefined;
}

export function schedulePod(pod: KubeObject): void {
  pod.spec = { ...(pod.spec ?? {}), nodeName: NODE_NAME };
  setCondition(pod, 'PodScheduled', true);
}

export function runPod(pod: KubeObject): void {
  if (!pod.spec?.nodeName) schedulePod(pod);
  pod.status = { ...(pod.status ?? {}), phase: 'Running', hostIP: '10.0.0.1', podIP: '10.244.0.10', startTime: timestamp() };
  setCondition(pod, 'Initialized', true);
}

export function setPodReadiness(pod: KubeObject, ready: boolean): void {
  if (pod.status?.phase !== 'Running') runPod(pod);
  setCondition(pod, 'ContainersReady', ready);
  setCondition(pod, 'Ready', ready);
}

/** Moves a VMI to a phase, with the node and conditions KubeVirt reports alongside it. */
export function setPhase(vmi: KubeObject, phase: VmiPhase, message?: string): void {
  vmi.status = { ...(vmi.status ?? {}), phase };
  if (phase === 'Scheduled' || phase === 'Running') vmi.status.nodeName = NODE_NAME;
  if (phase === 'Running') setCondition(vmi, 'Ready', false);
  if (phase === 'Failed' || phase === 'Succeeded') {
    setCondition(vmi, 'Ready', false, message);
    if (message) vmi.status.reason = message;
  }
}
