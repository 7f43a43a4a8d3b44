import { LabInstanceStatus, VmPhase, type VmStatus } from '../entities/index.js';
import type { KubeObject } from '../k8s/informer.js';

export interface ObservedInstance {
  status: LabInstanceStatus;
  statusMessage: string | null;
  vmNames: string[];
  /** Undefined when the namespace is not in the watch cache. */
  namespace: KubeObject | undefined;
  /**
   * True when the namespace's absence is certain (its deletion was watched, or the instance is older
   * than the watch's possible lag); a namespace created a moment ago may just not have arrived yet.
   */
  namespaceGone: boolean;
  vmis: (name: string) => KubeObject | undefined;
  pods: Iterable<KubeObject>;
}

export interface DerivedState {
  status: LabInstanceStatus;
  statusMessage: string | null;
  vms: VmStatus[];
}

const PHASES: Record<string, VmPhase> = {
  Pending: VmPhase.PENDING,
  Scheduling: VmPhase.SCHEDULING,
  Scheduled: VmPhase.SCHEDULED,
  Running: VmPhase.RUNNING,
  Succeeded: VmPhase.SUCCEEDED,
  Failed: VmPhase.FAILED,
};

function podOf(vmi: KubeObject | undefined, name: string, pods: KubeObject[]): KubeObject | undefined {
  const candidates = pods.filter(
    (p) =>
      (vmi?.metadata.uid && p.metadata.labels?.['kubevirt.io/created-by'] === vmi.metadata.uid) ||
      p.metadata.labels?.['vm.kubevirt.io/name'] === name ||
      p.metadata.name.startsWith(`virt-launcher-${name}-`),
  );
  return candidates.find((p) => !p.metadata.deletionTimestamp) ?? candidates[0];
}

const isReady = (pod: KubeObject | undefined) =>
  Boolean(pod?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'));

/** Each VM's state from its VMI and its virt-launcher pod. */
export function vmStatuses(o: ObservedInstance): VmStatus[] {
  const pods = [...o.pods];
  return o.vmNames.map((name) => {
    const vmi = o.vmis(name);
    const pod = podOf(vmi, name, pods);
    const failedCondition = vmi?.status?.conditions?.find((c: { status: string; message?: string }) => c.status === 'False' && c.message);
    return {
      name,
      phase: vmi ? (PHASES[vmi.status?.phase ?? 'Pending'] ?? VmPhase.UNKNOWN) : VmPhase.UNKNOWN,
      ready: isReady(pod),
      podName: pod?.metadata.name ?? null,
      nodeName: pod?.spec?.nodeName ?? vmi?.status?.nodeName ?? null,
      message: vmi ? (failedCondition?.message ?? null) : 'VirtualMachineInstance not found',
    };
  });
}

/**
 * The contract's status rules, level-based: the same observation always gives the same state, so
 * every replica computes the same thing. PENDING belongs to startLab and STOPPED is final.
 */
export function deriveState(o: ObservedInstance): DerivedState {
  const keep = { status: o.status, statusMessage: o.statusMessage };
  if (o.status === LabInstanceStatus.PENDING || o.status === LabInstanceStatus.STOPPED) return { ...keep, vms: [] };
  if (!o.namespace && !o.namespaceGone) return { ...keep, vms: [] };
  if (!o.namespace) {
    const vms = o.vmNames.map((name) => ({ name, phase: VmPhase.UNKNOWN, ready: false, podName: null, nodeName: null, message: null }));
    if (o.status === LabInstanceStatus.FAILED) return { ...keep, vms };
    const message = o.status === LabInstanceStatus.STOPPING ? o.statusMessage : 'The namespace was deleted outside the server';
    return { status: LabInstanceStatus.STOPPED, statusMessage: message, vms };
  }
  const vms = vmStatuses(o);
  if (o.status === LabInstanceStatus.FAILED) return { ...keep, vms };
  const terminating = Boolean(o.namespace.metadata.deletionTimestamp) || o.namespace.status?.phase === 'Terminating';
  if (o.status === LabInstanceStatus.STOPPING || terminating) {
    return { status: LabInstanceStatus.STOPPING, statusMessage: o.statusMessage, vms };
  }
  const failed = vms.find((vm) => vm.phase === VmPhase.FAILED);
  if (failed) {
    return { status: LabInstanceStatus.FAILED, statusMessage: `VM ${failed.name} failed${failed.message ? `: ${failed.message}` : ''}`, vms };
  }
  if (vms.every((vm) => vm.ready)) return { status: LabInstanceStatus.READY, statusMessage: null, vms };
  return { status: LabInstanceStatus.STARTING, statusMessage: null, vms };
}
