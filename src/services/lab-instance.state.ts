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
  /**
   * When a STARTING instance that is not READY by then becomes FAILED (START_TIMEOUT_SECONDS after
   * startLab), and the current time; undefined: no deadline.
   */
  startDeadline?: { at: number; seconds: number; now: number };
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

type Condition = { type: string; status: string; reason?: string; message?: string };
type ContainerStatus = { name?: string; image?: string; state?: { waiting?: { reason?: string; message?: string } } };

/**
 * The VMI's virt-launcher pod: the one KubeVirt labels `kubevirt.io/created-by: <VMI uid>`
 * (kubevirt/kubevirt pkg/virt-controller/services/template.go). Names come from generateName and may
 * be cut, so a name prefix would match VM `web-2`'s pod for VM `web`.
 */
function podOf(vmi: KubeObject | undefined, pods: KubeObject[]): KubeObject | undefined {
  const uid = vmi?.metadata.uid;
  if (!uid) return undefined;
  const candidates = pods.filter((p) => p.metadata.labels?.['kubevirt.io/created-by'] === uid);
  return candidates.find((p) => !p.metadata.deletionTimestamp) ?? candidates[0];
}

const conditionTrue = (obj: KubeObject | undefined, type: string) =>
  Boolean((obj?.status?.conditions as Condition[] | undefined)?.some((c) => c.type === type && c.status === 'True'));

/**
 * KubeVirt's own readiness signal: the VMI is Running and its Ready condition is True, which
 * virt-controller sets only once the guest runs and the launcher pod is Ready
 * (kubevirt/kubevirt pkg/virt-controller/watch/vmi/lifecycle.go). The pod alone is Ready earlier:
 * its compute container has no readiness probe by default.
 */
const vmiReady = (vmi: KubeObject | undefined) => vmi?.status?.phase === 'Running' && conditionTrue(vmi, 'Ready');

/** Container states in which the kubelet is still working on it, not stuck: shown as progress only. */
const PROGRESS_REASONS = new Set(['ContainerCreating', 'PodInitializing']);
const IMAGE_PULL_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);

/**
 * Why a VM is not running yet, from its launcher pod, as a user can follow it: `reason` is
 * Kubernetes' own word (ContainerCreating, ImagePullBackOff, Unschedulable, ...), and `message` is
 * set only when something is wrong (an image that cannot be pulled, a pod that cannot be scheduled).
 */
function podProgress(pod: KubeObject | undefined): { reason: string | null; message: string | null } {
  if (!pod) return { reason: null, message: null };
  const status = pod.status ?? {};
  const scheduled = (status.conditions as Condition[] | undefined)?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return { reason: 'Unschedulable', message: `cannot be scheduled: ${scheduled.message ?? 'no node fits'}` };
  }
  const containers = [...((status.initContainerStatuses as ContainerStatus[] | undefined) ?? []), ...((status.containerStatuses as ContainerStatus[] | undefined) ?? [])];
  for (const c of containers) {
    const waiting = c.state?.waiting;
    if (!waiting?.reason || PROGRESS_REASONS.has(waiting.reason)) continue;
    if (IMAGE_PULL_REASONS.has(waiting.reason)) {
      return { reason: waiting.reason, message: `image ${c.image ?? ''} could not be pulled (${waiting.reason})`.replace('image  could', 'the image could') };
    }
    return { reason: waiting.reason, message: `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
  }
  const progress = containers.find((c) => c.state?.waiting?.reason)?.state?.waiting?.reason;
  return { reason: progress ?? (status.phase === 'Pending' && !scheduled ? 'PodPending' : null), message: null };
}

/** What a Failed VMI says about why: its first condition with a message, or its reason. */
function failureOf(vmi: KubeObject): string {
  const conditions = (vmi.status?.conditions as Condition[] | undefined) ?? [];
  const said = conditions.find((c) => c.status === 'False' && c.message) ?? conditions.find((c) => c.message);
  return said?.message ?? vmi.status?.reason ?? 'the VirtualMachineInstance failed';
}

/** Each VM's state from its VMI and its virt-launcher pod. */
export function vmStatuses(o: ObservedInstance): VmStatus[] {
  const pods = [...o.pods];
  return o.vmNames.map((name) => {
    const vmi = o.vmis(name);
    if (!vmi) {
      return { name, phase: VmPhase.UNKNOWN, ready: false, podReady: false, reason: null, podName: null, nodeName: null, message: 'VirtualMachineInstance not found' };
    }
    const pod = podOf(vmi, pods);
    const phase = PHASES[vmi.status?.phase ?? 'Pending'] ?? VmPhase.UNKNOWN;
    const ready = vmiReady(vmi);
    const progress = ready || phase === VmPhase.FAILED ? { reason: null, message: null } : podProgress(pod);
    return {
      name,
      phase,
      ready,
      podReady: conditionTrue(pod, 'Ready'),
      reason: progress.reason,
      podName: pod?.metadata.name ?? null,
      nodeName: vmi.status?.nodeName ?? pod?.spec?.nodeName ?? null,
      message: phase === VmPhase.FAILED ? failureOf(vmi) : progress.message,
    };
  });
}

/** The first VM that is not ready, described for a status message. */
function firstProblem(vms: VmStatus[]): string {
  const vm = vms.find((v) => !v.ready);
  if (!vm) return 'every VM is ready';
  return `VM ${vm.name}: ${vm.message ?? (vm.reason ? `still ${vm.reason}` : `still ${vm.phase}`)}`;
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
    const vms = o.vmNames.map((name) => ({ name, phase: VmPhase.UNKNOWN, ready: false, podReady: false, reason: null, podName: null, nodeName: null, message: null }));
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
  const deadline = o.startDeadline;
  if (o.status === LabInstanceStatus.STARTING && deadline && deadline.now >= deadline.at) {
    return { status: LabInstanceStatus.FAILED, statusMessage: `Did not start within ${deadline.seconds} s: ${firstProblem(vms)}`, vms };
  }
  return { status: LabInstanceStatus.STARTING, statusMessage: null, vms };
}
