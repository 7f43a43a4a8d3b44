import type { Loose } from './resources.js';
import { randomBytes, randomUUID } from 'node:crypto';
import type { KubeObject } from './resources.js';
import { timestamp } from './store.js';

/**
 * Pure mutators of a pod's status as the scheduler and the kubelet write it. The lifecycle decides when
 * they run; these only decide what the pod then looks like.
 */

type Condition = Record<string, unknown> & { type: string; status: string };
type ContainerSpec = { name: string; image?: string; restartPolicy?: string };
type ContainerStatus = Record<string, unknown> & { name: string; ready: boolean; started?: boolean; state: Loose };

/** Conditions the kubelet owns, in the order it writes them (kubernetes pkg/kubelet/kubelet_pods.go generateAPIPodStatus). */
const KUBELET_CONDITIONS = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];

/**
 * The mutators below never edit what they are given in place: they replace status, its lists and spec,
 * so that a write needs to copy only the object's top level.
 */
function conditionsOf(obj: KubeObject): Condition[] {
  const list = obj.status?.conditions;
  return Array.isArray(list) ? (list as Condition[]) : [];
}

export function getCondition(obj: KubeObject | undefined, type: string): Condition | undefined {
  const list = obj?.status?.conditions;
  return Array.isArray(list) ? (list as Condition[]).find((c) => c.type === type) : undefined;
}

/**
 * Sets a pod condition. As the kubelet's status manager does, lastTransitionTime only moves when the
 * status changes; reason and message follow the new value (absent when empty).
 */
export function setPodCondition(pod: KubeObject, type: string, status: boolean, reason?: string, message?: string): void {
  const list = [...conditionsOf(pod)];
  const value = status ? 'True' : 'False';
  const old = list.find((c) => c.type === type);
  const next: Condition = {
    type, status: value, lastProbeTime: null,
    lastTransitionTime: old && old.status === value ? old.lastTransitionTime : timestamp(),
  };
  if (reason) next.reason = reason;
  if (message) next.message = message;
  if (old) list[list.indexOf(old)] = next;
  else list.push(next);
  pod.status = { ...(pod.status ?? {}), conditions: list };
}

function specOf(pod: KubeObject): { init: ContainerSpec[]; regular: ContainerSpec[]; gates: string[] } {
  const spec = (pod.spec ?? {}) as { initContainers?: ContainerSpec[]; containers?: ContainerSpec[]; readinessGates?: Array<{ conditionType: string }> };
  return { init: spec.initContainers ?? [], regular: spec.containers ?? [], gates: (spec.readinessGates ?? []).map((g) => g.conditionType) };
}

const isSidecar = (c: ContainerSpec): boolean => c.restartPolicy === 'Always';

function statusOf(list: unknown, name: string): ContainerStatus | undefined {
  return Array.isArray(list) ? (list as ContainerStatus[]).find((s) => s.name === name) : undefined;
}

/** Go's %s of a []string, which is how the kubelet lists container names in its messages: [a b]. */
const goList = (names: string[]): string => `[${names.join(' ')}]`;

/**
 * Recomputes Initialized, ContainersReady and Ready from the container statuses and readiness gates,
 * following kubernetes pkg/kubelet/status/generate.go (GeneratePodInitializedCondition,
 * GenerateContainersReadyCondition, GeneratePodReadyCondition) with its reasons and messages.
 */
export function recomputePodConditions(pod: KubeObject): void {
  const { init, regular, gates } = specOf(pod);
  const initStatuses = pod.status?.initContainerStatuses;
  const statuses = pod.status?.containerStatuses;

  const anyRegularStarted = regular.some((c) => {
    const s = statusOf(statuses, c.name);
    return Boolean(s && (s.state.running || s.state.terminated));
  });
  const unknownInit: string[] = [];
  const incomplete: string[] = [];
  for (const c of init) {
    const s = statusOf(initStatuses, c.name);
    if (!s) unknownInit.push(c.name);
    else if (isSidecar(c) ? !s.started : !s.ready) incomplete.push(c.name);
  }
  const initMessages = [
    ...(unknownInit.length ? [`containers with unknown status: ${goList(unknownInit)}`] : []),
    ...(incomplete.length ? [`containers with incomplete status: ${goList(incomplete)}`] : []),
  ];
  if (anyRegularStarted || initMessages.length === 0) setPodCondition(pod, 'Initialized', true);
  else setPodCondition(pod, 'Initialized', false, 'ContainersNotInitialized', initMessages.join(', '));

  const unknown: string[] = [];
  const unready: string[] = [];
  for (const c of [...init.filter(isSidecar), ...regular]) {
    const s = statusOf(isSidecar(c) ? initStatuses : statuses, c.name);
    if (!s) unknown.push(c.name);
    else if (!s.ready) unready.push(c.name);
  }
  const readyMessages = [
    ...(unknown.length ? [`containers with unknown status: ${goList(unknown)}`] : []),
    ...(unready.length ? [`containers with unready status: ${goList(unready)}`] : []),
  ];
  if (readyMessages.length) {
    const message = readyMessages.join(', ');
    setPodCondition(pod, 'Ready', false, 'ContainersNotReady', message);
    setPodCondition(pod, 'ContainersReady', false, 'ContainersNotReady', message);
  } else {
    setPodCondition(pod, 'ContainersReady', true);
    const gateMessages: string[] = [];
    for (const gate of gates) {
      const c = getCondition(pod, gate);
      if (!c) gateMessages.push(`corresponding condition of pod readiness gate "${gate}" does not exist.`);
      else if (c.status !== 'True') gateMessages.push(`the status of pod readiness gate "${gate}" is not "True", but ${c.status}`);
    }
    if (gateMessages.length) setPodCondition(pod, 'Ready', false, 'ReadinessGatesNotReady', gateMessages.join(', '));
    else setPodCondition(pod, 'Ready', true);
  }
  orderConditions(pod);
}

/** Conditions others own (the readiness gate's) first, then the kubelet's in its own order. */
function orderConditions(pod: KubeObject): void {
  const list = conditionsOf(pod);
  const others = list.filter((c) => !KUBELET_CONDITIONS.includes(c.type));
  const owned = KUBELET_CONDITIONS.map((t) => list.find((c) => c.type === t)).filter((c): c is Condition => c !== undefined);
  pod.status = { ...pod.status, conditions: [...others, ...owned] };
}

/** follows kubernetes pkg/scheduler/schedule_one.go (bind): spec.nodeName set through the binding, PodScheduled True. */
export function bindPod(pod: KubeObject, nodeName: string): void {
  pod.spec = { ...(pod.spec ?? {}), nodeName };
  setPodCondition(pod, 'PodScheduled', true);
}

/**
 * follows kubernetes pkg/scheduler/schedule_one.go (handleSchedulingFailure): PodScheduled False, reason
 * Unschedulable, with the FitError text of pkg/scheduler/framework/types.go.
 */
export function markUnschedulable(pod: KubeObject, message: string): void {
  setPodCondition(pod, 'PodScheduled', false, 'Unschedulable', message);
}

/** 64 hex digits, as a container ID or an image digest has (random UUIDs come from a pooled source: cheap in bursts). */
const hex64 = (): string => (randomUUID() + randomUUID()).replace(/-/g, '');

/**
 * A container's status. `lastState` is `{}` until a container restarts: the API server stores the Go
 * struct (core/v1 ContainerStatus.LastTerminationState, not a pointer), so it is never absent.
 */
function waiting(c: ContainerSpec, reason: string, message?: string): ContainerStatus {
  return {
    name: c.name, image: c.image ?? '', imageID: '', ready: false, restartCount: 0, started: false,
    state: { waiting: message ? { reason, message } : { reason } }, lastState: {},
  };
}

function running(c: ContainerSpec, at: string, ready = true): ContainerStatus {
  return {
    name: c.name, image: c.image ?? '', imageID: `${c.image ?? ''}@sha256:${hex64()}`, containerID: `containerd://${hex64()}`,
    ready, restartCount: 0, started: true, state: { running: { startedAt: at } }, lastState: {},
  };
}

function completed(c: ContainerSpec, at: string): ContainerStatus {
  return {
    name: c.name, image: c.image ?? '', imageID: `${c.image ?? ''}@sha256:${hex64()}`, containerID: `containerd://${hex64()}`,
    ready: true, restartCount: 0, started: false,
    state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: at, finishedAt: at } }, lastState: {},
  };
}

/**
 * The kubelet's first status for a pod bound to its node: the sandbox is up (PodReadyToStartContainers,
 * pod IP), no container has started (waiting PodInitializing while init containers are pending).
 */
export function kubeletAdmitted(pod: KubeObject, hostIP: string, podIP: string): void {
  const { init, regular } = specOf(pod);
  const reason = init.length ? 'PodInitializing' : 'ContainerCreating';
  pod.status = {
    ...(pod.status ?? {}),
    phase: 'Pending', hostIP, hostIPs: [{ ip: hostIP }], podIP, podIPs: [{ ip: podIP }], startTime: timestamp(),
    ...(init.length ? { initContainerStatuses: init.map((c) => waiting(c, 'PodInitializing')) } : {}),
    containerStatuses: regular.map((c) => waiting(c, reason)),
  };
  setPodCondition(pod, 'PodReadyToStartContainers', true);
  recomputePodConditions(pod);
}

/** Every image pulled, init containers completed in order, sidecars and containers running: phase Running. */
export function kubeletStarted(pod: KubeObject): void {
  const { init, regular } = specOf(pod);
  const at = timestamp();
  pod.status = {
    ...(pod.status ?? {}),
    phase: 'Running',
    ...(init.length ? { initContainerStatuses: init.map((c) => (isSidecar(c) ? running(c, at) : completed(c, at))) } : {}),
    containerStatuses: regular.map((c) => running(c, at)),
  };
  recomputePodConditions(pod);
}

/**
 * An image that cannot be pulled: the init containers before it have completed (sidecars run), the one
 * that needs it waits with ErrImagePull or ImagePullBackOff and the kubelet's message, the rest wait for
 * initialisation. The pod stays Pending.
 */
export function kubeletPullFailing(pod: KubeObject, containerName: string, reason: string, message: string): void {
  const { init, regular } = specOf(pod);
  const at = timestamp();
  const failingIndex = init.findIndex((c) => c.name === containerName);
  pod.status = {
    ...(pod.status ?? {}),
    phase: 'Pending',
    initContainerStatuses: init.map((c, i) => {
      const old = statusOf(pod.status?.initContainerStatuses, c.name);
      if (isSidecar(c)) return old?.state.running ? old : running(c, at);
      if (i < failingIndex) return old?.state.terminated ? old : completed(c, at);
      if (i === failingIndex) return waiting(c, reason, message);
      return waiting(c, 'PodInitializing');
    }),
    containerStatuses: regular.map((c) => waiting(c, 'PodInitializing')),
  };
  recomputePodConditions(pod);
}

/** A manual readiness change of the compute container (as a failing or recovering readiness probe would make it). */
export function setContainerReady(pod: KubeObject, name: string, ready: boolean): void {
  const statuses = (pod.status?.containerStatuses ?? []) as ContainerStatus[];
  pod.status = { ...(pod.status ?? {}), containerStatuses: statuses.map((s) => (s.name === name ? { ...s, ready } : s)) };
  recomputePodConditions(pod);
}

/** Whether the named container is running. */
export function containerRunning(pod: KubeObject | undefined, name: string): boolean {
  return Boolean(statusOf(pod?.status?.containerStatuses, name)?.state.running);
}

/** The waiting reason of any (init) container, e.g. ErrImagePull. */
export function waitingReasons(pod: KubeObject | undefined): Array<{ name: string; reason: string; message?: string }> {
  const all = [...((pod?.status?.initContainerStatuses ?? []) as ContainerStatus[]), ...((pod?.status?.containerStatuses ?? []) as ContainerStatus[])];
  return all.filter((s) => s.state.waiting).map((s) => ({ name: s.name, reason: String(s.state.waiting.reason), message: s.state.waiting.message }));
}

/** A random locally administered MAC address, as libvirt would give the guest's NIC. */
export function randomMac(): string {
  const b = randomBytes(5);
  return ['02', ...[...b].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** An image reference as containerd names it: registry and library/ added to short names, :latest to untagged ones. */
function normalizedImage(image: string): string {
  let ref = image;
  const first = ref.split('/')[0];
  const hasDomain = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) ref = ref.includes('/') ? `docker.io/${ref}` : `docker.io/library/${ref}`;
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  if (!last.includes(':') && !ref.includes('@')) ref += ':latest';
  return ref;
}

/**
 * The waiting message of ErrImagePull: kubernetes pkg/kubelet/images/image_manager.go passes the
 * runtime's error through (evalCRIPullErr); this is containerd's CRI wording for a tag that does not exist.
 */
export function errImagePullMessage(image: string): string {
  const ref = normalizedImage(image);
  return `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`;
}

/** The waiting message of ImagePullBackOff (pkg/kubelet/images/image_manager.go EnsureImageExists). */
export function imagePullBackOffMessage(image: string): string {
  return `Back-off pulling image "${image}"`;
}
