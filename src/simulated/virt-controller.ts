import type { Loose } from './resources.js';
import { DEPRECATED_VMI_FINALIZER, VMI_FINALIZER } from './kubevirt-api.js';
import { getCondition } from './kubelet.js';
import type { KubeObject } from './resources.js';
import { timestamp } from './store.js';
import { setPhase } from './virt-handler.js';
import { COMPUTE, UNPAUSED_CONDITION } from './virt-launcher.js';

/**
 * KubeVirt's virt-controller for one VMI: one pass of kubevirt/kubevirt
 * pkg/virt-controller/watch/vmi/vmi.go execute() -> lifecycle.go sync() then updateStatus().
 * It runs whenever the VMI or one of its pods changes, as the real controller is woken by both informers.
 */

/** What the controller may do through the API. */
export interface ControllerApi {
  get(): KubeObject | undefined;
  /** The pods whose controller reference is this VMI (lifecycle.go listPodsOwnedByVMI), oldest first. */
  ownedPods(vmi: KubeObject): KubeObject[];
  /** POST of the rendered pod; the API server names it from generateName. */
  createPod(pod: KubeObject): KubeObject;
  /** DELETE of a pod with default options (its own grace period). */
  deletePod(pod: KubeObject): void;
  /** Writes the pod's status (a patch of its conditions). */
  patchPod(pod: KubeObject, mutate: (draft: KubeObject) => void): void;
  /** Writes the VMI (KubeVirt's VMI has no status subresource: an update or a JSON patch). */
  updateVmi(next: KubeObject): void;
  /** The VMI lost its last finalizer while being deleted: the API server removes it. */
  removeVmi(last: KubeObject): void;
  renderPod(vmi: KubeObject): KubeObject;
}

const LATEST_API = 'kubevirt.io/latest-observed-api-version';
const STORAGE_API = 'kubevirt.io/storage-observed-api-version';

type Condition = Record<string, unknown> & { type: string; status: string; reason?: string };

const isUnprocessed = (phase: string): boolean => phase === '' || phase === 'Pending';
export const isFinalPhase = (phase: unknown): boolean => phase === 'Succeeded' || phase === 'Failed';

/** pkg/controller/controller.go PodIsDown / isComputeContainerDown / IsPodDownOrGoingDown. */
export function podDownOrGoingDown(pod: KubeObject): boolean {
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed' || pod.metadata.deletionTimestamp) return true;
  const compute = ((pod.status?.containerStatuses ?? []) as Array<{ name: string; state: Record<string, unknown> }>).find((s) => s.name === COMPUTE);
  return Boolean(compute?.state.terminated);
}

/**
 * pkg/controller/controller.go IsPodReady: ready to be handed to virt-handler once the compute container
 * runs (its readiness is the VMI's business) and every other container is ready; not the pod's Ready condition.
 */
export function podReadyForHandover(pod: KubeObject): boolean {
  if (podDownOrGoingDown(pod)) return false;
  for (const s of (pod.status?.containerStatuses ?? []) as Array<{ name: string; ready: boolean; state: Record<string, unknown> }>) {
    if (s.name === COMPUTE || s.name === 'istio-proxy') {
      if (!s.state.running) return false;
    } else if (!s.ready) {
      return false;
    }
  }
  return pod.status?.phase === 'Running';
}

function conditions(vmi: KubeObject): Condition[] {
  vmi.status ??= {};
  if (!Array.isArray(vmi.status.conditions)) vmi.status.conditions = [];
  return vmi.status.conditions as Condition[];
}

/** pkg/controller/conditions.go UpdateCondition: replaced only when status or reason change. */
function updateCondition(vmi: KubeObject, cond: Condition): void {
  const list = conditions(vmi);
  const i = list.findIndex((c) => c.type === cond.type);
  if (i < 0) list.push(cond);
  else if (list[i].status !== cond.status || (list[i].reason ?? '') !== (cond.reason ?? '')) list[i] = cond;
}

function removeCondition(vmi: KubeObject, type: string): void {
  (vmi.status as Record<string, unknown>).conditions = conditions(vmi).filter((c) => c.type !== type);
}

function nowCondition(type: string, status: boolean, reason: string, message: string): Condition {
  const now = timestamp();
  return { type, status: status ? 'True' : 'False', reason, message, lastProbeTime: now, lastTransitionTime: now };
}

/** lifecycle.go syncReadyConditionFromPod, with KubeVirt's reasons (types.go) and messages. */
function syncReadyCondition(vmi: KubeObject, pod: KubeObject | undefined): void {
  if (!pod) {
    updateCondition(vmi, nowCondition('Ready', false, 'PodNotExists', 'virt-launcher pod has not yet been scheduled'));
  } else if (podDownOrGoingDown(pod)) {
    updateCondition(vmi, nowCondition('Ready', false, 'PodTerminating', 'virt-launcher pod is terminating'));
  } else if (vmi.status?.phase !== 'Running') {
    updateCondition(vmi, nowCondition('Ready', false, 'GuestNotRunning', 'Guest VM is not reported as running'));
  } else {
    const ready = getCondition(pod, 'Ready');
    if (!ready) {
      updateCondition(vmi, nowCondition('Ready', false, 'PodConditionMissing', 'virt-launcher pod is missing the Ready condition'));
      return;
    }
    // The pod's Ready condition, copied as it is (a True one has neither reason nor message).
    const copy: Condition = { type: 'Ready', status: ready.status, lastProbeTime: ready.lastProbeTime ?? null, lastTransitionTime: ready.lastTransitionTime };
    if (ready.reason) copy.reason = ready.reason as string;
    if (ready.message) copy.message = ready.message;
    updateCondition(vmi, copy);
  }
}

/** lifecycle.go checkForContainerImageError: an (init) container waiting with ErrImagePull or ImagePullBackOff. */
function containerImageError(pod: KubeObject): { reason: string; message: string } | undefined {
  const statuses = [...((pod.status?.initContainerStatuses ?? []) as Array<{ state: Loose }>),
    ...((pod.status?.containerStatuses ?? []) as Array<{ state: Loose }>)];
  for (const s of statuses) {
    const reason = s.state.waiting?.reason;
    if (reason === 'ErrImagePull' || reason === 'ImagePullBackOff') return { reason, message: String(s.state.waiting.message ?? '') };
  }
  return undefined;
}

/** pkg/controller/conditions.go CheckFailure: a Synchronized=False condition carries the sync error, and goes with it. */
function checkFailure(vmi: KubeObject, syncErr: { reason: string; message: string } | undefined): void {
  const current = conditions(vmi).find((c) => c.type === 'Synchronized');
  if (syncErr) {
    if (current && current.status === 'False' && current.reason === syncErr.reason) return;
    removeCondition(vmi, 'Synchronized');
    conditions(vmi).push({
      type: 'Synchronized', status: 'False', reason: syncErr.reason, message: syncErr.message,
      lastProbeTime: null, lastTransitionTime: timestamp(),
    });
  } else if (current) {
    removeCondition(vmi, 'Synchronized');
  }
}

/** Whether two values are the same JSON, trying the cheap answers first. */
function same(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function sameMap(a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined): boolean {
  if (a === b) return true;
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => same(a?.[k], b?.[k]));
}

/**
 * Whether the pass changed what it may change (status, finalizers, labels, annotations). The draft shares
 * every field it did not replace with the stored VMI, so most comparisons are by reference.
 */
function unchanged(next: KubeObject, stored: KubeObject): boolean {
  const a = (next.status ?? {}) as Record<string, unknown>;
  const b = (stored.status ?? {}) as Record<string, unknown>;
  const ca = (a.conditions ?? []) as unknown[];
  const cb = (b.conditions ?? []) as unknown[];
  const conditionsSame = ca.length === cb.length && ca.every((c, i) => same(c, cb[i]));
  return conditionsSame && sameMap({ ...a, conditions: undefined }, { ...b, conditions: undefined }) &&
    same(next.metadata.finalizers, stored.metadata.finalizers) &&
    sameMap(next.metadata.labels, stored.metadata.labels) && sameMap(next.metadata.annotations, stored.metadata.annotations);
}

/**
 * A copy to build the next state in: metadata and status copied one level, the conditions list too.
 * The pass replaces (never edits) conditions, nested status fields and nested metadata.
 */
function draft(vmi: KubeObject): KubeObject {
  const status = { ...(vmi.status ?? {}) };
  if (Array.isArray(status.conditions)) status.conditions = [...status.conditions];
  return { ...vmi, metadata: { ...vmi.metadata }, status };
}

/** One pass; false when it ended early (after the API version write), so that another pass must follow. */
export function reconcileVmi(api: ControllerApi): boolean {
  const vmi = api.get();
  if (!vmi) return true;

  // vmi.go execute(): the first write records the API version the controller observed, and ends the pass.
  if (vmi.metadata.annotations?.[LATEST_API] !== 'v1') {
    const next = draft(vmi);
    next.metadata.annotations = { ...(next.metadata.annotations ?? {}), [LATEST_API]: 'v1', [STORAGE_API]: 'v1' };
    api.updateVmi(next);
    return false;
  }

  const phase = String(vmi.status?.phase ?? '');
  const deleting = Boolean(vmi.metadata.deletionTimestamp);
  let pods = api.ownedPods(vmi);
  let pod = pods[pods.length - 1];

  // lifecycle.go sync(): a deleted VMI has its pods deleted; an unprocessed one without a pod gets one.
  if (deleting) {
    for (const p of pods) {
      const final = p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
      if (!p.metadata.deletionTimestamp || final) api.deletePod(p);
    }
    pods = api.ownedPods(vmi);
    pod = pods[pods.length - 1];
  } else if (!isFinalPhase(phase) && !pod && isUnprocessed(phase)) {
    pod = api.createPod(api.renderPod(vmi));
    pods = [pod];
  }

  // lifecycle.go updateStatus()
  const next = draft(vmi);
  const status = (next.status ??= {});
  const finalizers = new Set((next.metadata.finalizers as string[] | undefined) ?? []);
  if (finalizers.delete(DEPRECATED_VMI_FINALIZER)) finalizers.add(VMI_FINALIZER);
  if (pods.length || status.activePods) {
    status.activePods = Object.fromEntries(pods.map((p) => [p.metadata.uid ?? '', String(p.spec?.nodeName ?? '')]));
  }
  syncReadyCondition(next, pod);
  if (pod) {
    const compute = ((pod.spec?.containers ?? []) as Array<{ name: string; image: string }>).find((c) => c.name === COMPUTE);
    if (compute) status.launcherContainerImageVersion = compute.image;
    // syncPausedConditionToPod: the readiness gate's condition, True while the VMI is not paused.
    if (getCondition(pod, UNPAUSED_CONDITION)?.status !== 'True') {
      const now = timestamp();
      api.patchPod(pod, (d) => {
        const list = ((d.status?.conditions ?? []) as Condition[]).filter((c) => c.type !== UNPAUSED_CONDITION);
        d.status = {
          ...d.status,
          conditions: [{ type: UNPAUSED_CONDITION, status: 'True', reason: 'NotPaused', message: 'the virtual machine is not paused', lastProbeTime: now, lastTransitionTime: now }, ...list],
        };
      });
    }
  }

  let syncErr: { reason: string; message: string } | undefined;
  if (isUnprocessed(phase)) {
    if (pod) setPhase(next, 'Scheduling');
    else if (deleting) setPhase(next, 'Failed');
    else setPhase(next, 'Pending');
  } else if (phase === 'Scheduling') {
    if (pod) {
      status.qosClass = pod.status?.qosClass;
      const scheduled = getCondition(pod, 'PodScheduled');
      if (scheduled?.status === 'False') {
        // AddPodCondition: the pod's PodScheduled=False (e.g. Unschedulable) is copied once.
        if (!conditions(next).some((c) => c.type === 'PodScheduled')) {
          const copy: Condition = { type: 'PodScheduled', status: 'False', lastProbeTime: scheduled.lastProbeTime ?? null, lastTransitionTime: scheduled.lastTransitionTime };
          if (scheduled.reason) copy.reason = scheduled.reason as string;
          if (scheduled.message) copy.message = scheduled.message;
          conditions(next).push(copy);
        }
      } else if (conditions(next).some((c) => c.type === 'PodScheduled')) {
        removeCondition(next, 'PodScheduled');
      }
      syncErr = containerImageError(pod);
      if (podReadyForHandover(pod) && !deleting) {
        // "vmi is still owned by the controller but pod is already ready, so let's hand over the vmi too"
        setPhase(next, 'Scheduled');
        const nodeName = String(pod.spec?.nodeName ?? '');
        next.metadata.labels = { ...(next.metadata.labels ?? {}), 'kubevirt.io/nodeName': nodeName };
        status.nodeName = nodeName;
        if (pod.metadata.annotations?.['kubevirt.io/migrationTransportUnix'] !== undefined) status.migrationTransport = 'Unix';
      } else if (podDownOrGoingDown(pod)) {
        setPhase(next, 'Failed');
      }
    } else {
      setPhase(next, 'Failed');
    }
  } else if (isFinalPhase(phase)) {
    if (pods.length === 0) {
      // "all pods have been deleted, removing finalizer"
      finalizers.delete(DEPRECATED_VMI_FINALIZER);
      finalizers.delete(VMI_FINALIZER);
      delete status.launcherContainerImageVersion;
    }
  } else if (phase === 'Running' || phase === 'Scheduled') {
    if (!pod) setPhase(next, 'Failed'); // "setting VMI to failed while running/scheduled because pod does not exist"
  }
  if (phase !== 'Running' && phase !== 'Scheduled') checkFailure(next, syncErr);
  next.metadata.finalizers = [...finalizers];
  if (finalizers.size === 0) delete next.metadata.finalizers; // omitempty

  if (deleting && finalizers.size === 0) {
    api.removeVmi(next);
    return true;
  }
  if (!unchanged(next, vmi)) api.updateVmi(next);
  return true;
}
