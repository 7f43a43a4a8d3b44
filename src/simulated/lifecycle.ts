import { defaultPod, labelNamespace } from './defaults.js';
import { admitNewVmi, mutateNewVmi } from './kubevirt-api.js';
import {
  bindPod, containerRunning, errImagePullMessage, getCondition, imagePullBackOffMessage, kubeletAdmitted, kubeletPullFailing,
  kubeletStarted, markUnschedulable, setContainerReady, waitingReasons,
} from './kubelet.js';
import { resourceByPlural, type KubeObject, type ResourceDef } from './resources.js';
import { unschedulableMessage, type NodeCapacity } from './scheduler.js';
import { notFound } from './status.js';
import { timestamp, type ObjectStore, type StoredEvent } from './store.js';
import { isFinalPhase, reconcileVmi, type ControllerApi } from './virt-controller.js';
import { domainStarted, setPhase, type NetworkInterfaceDefault } from './virt-handler.js';
import {
  buildLauncherPod, COMPUTE, containerDisks, generateName, LAUNCHER_QOS, type VmiPhase,
} from './virt-launcher.js';

const NAMESPACES = resourceByPlural('namespaces');
const PODS = resourceByPlural('pods');
const VMIS = resourceByPlural('virtualmachineinstances');
const POLICIES = resourceByPlural('networkpolicies');

/**
 * Where the automatic steps of a VMI's start fall, as fractions of vmReadySeconds: the scheduler binds
 * the pod, the kubelet has pulled the images and started the containers (the pod is Ready and
 * virt-controller hands the VMI over: Scheduled), virt-handler has the domain running (Running, and
 * virt-controller copies the pod's Ready condition: Ready=True).
 */
export const STEP = { bind: 0.1, containers: 0.4, domain: 0.5 };
/** kubernetes pkg/kubelet/kubelet.go: the image pull back-off doubles up to MaxContainerBackOff (300 s for a 10 s start). */
export const MAX_BACKOFF_FACTOR = 30;

export type { NodeCapacity };

export interface LifecycleOptions {
  vmReadySeconds: number;
  namespaceTerminationMs: number;
  podTerminationMs: number;
  imagePullBackOffMs: number;
  unpullableImages: string[];
  node: NodeCapacity;
  defaultNetworkInterface: NetworkInterfaceDefault;
  launcherImage: string;
}

export interface DeleteOptions {
  gracePeriodSeconds?: number;
}

/** A glob (`*`, `?`) as a regular expression over the whole image reference. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The VMI a pod belongs to, by its controller reference (how virt-controller's pod informer resolves it). */
function controllerRef(pod: KubeObject): { name: string; uid: string } | undefined {
  const ref = (pod.metadata.ownerReferences ?? []).find((r) => r.controller === true && r.kind === 'VirtualMachineInstance');
  return ref ? { name: String(ref.name), uid: String(ref.uid) } : undefined;
}

const hasFinalizers = (obj: KubeObject): boolean => Array.isArray(obj.metadata.finalizers) && obj.metadata.finalizers.length > 0;

/**
 * What the rest of a cluster does behind the API: the API server's deletion rules (grace periods,
 * finalizers), KubeVirt's virt-api webhooks, virt-controller, virt-handler, the scheduler and the kubelet
 * of one node, and the namespace controller. Controllers react to store events at once, in order, as
 * informers would deliver them; what takes time in a real cluster (binding, pulling and starting
 * containers, booting the domain, terminating a pod, purging a namespace) waits on timers.
 */
export class ClusterLifecycle {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly queue = new Set<string>();
  private draining = false;
  /**
   * Per VMI, the resourceVersions (its own and its pods') of its last pass that changed nothing: another
   * pass over the same objects would change nothing either, so it is skipped. Only a shortcut.
   */
  private readonly settled = new Map<string, string>();
  /** VMIs (by uid) changed by hand: their automatic start steps stop, so that they cannot undo the change. */
  private readonly manual = new Set<string>();
  /** Image pull attempts per pod uid, for the back-off. */
  private readonly pulls = new Map<string, number>();
  /** Terminating namespaces whose controller pass is over (it waits only for their content to go). */
  private readonly nsPassed = new Set<string>();
  private readonly unpullable: RegExp[];
  private ips = 0;
  private auto = true;

  constructor(private readonly store: ObjectStore, private readonly opts: LifecycleOptions) {
    this.unpullable = opts.unpullableImages.map(globToRegExp);
    store.onEvent((def, event) => this.onEvent(def, event));
  }

  /** Server-managed parts of a new object; for a VMI, virt-api's mutating then validating webhooks (may throw 422). */
  admit(def: ResourceDef, obj: KubeObject): void {
    if (def === NAMESPACES) {
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
      labelNamespace(obj);
    } else if (def === PODS) {
      defaultPod(obj);
      // kubernetes pkg/registry/core/pod/strategy.go PrepareForCreate: phase Pending and the QoS class.
      const containers = ((obj.spec?.containers ?? []) as Array<{ resources?: Record<string, unknown> }>);
      const any = containers.some((c) => Object.keys(c.resources?.requests ?? {}).length || Object.keys(c.resources?.limits ?? {}).length);
      obj.status = { phase: 'Pending', qosClass: obj.metadata.labels?.['kubevirt.io'] === 'virt-launcher' ? LAUNCHER_QOS : any ? 'Burstable' : 'BestEffort' };
    } else if (def === VMIS) {
      mutateNewVmi(obj);
      admitNewVmi(obj);
    }
  }

  /**
   * DELETE as the API server answers it. Throws NotFound when absent. Returns the object as deleted
   * (gone, or marked with a deletionTimestamp; a namespace already Terminating as it is).
   */
  delete(def: ResourceDef, namespace: string | undefined, name: string, options: DeleteOptions = {}): KubeObject {
    const current = this.store.get(def, namespace, name);
    if (!current) throw notFound(def, name);
    if (def === NAMESPACES) return this.terminateNamespace(current);
    if (def === PODS) return this.deletePod(current, options.gracePeriodSeconds);
    return this.deleteWithFinalizers(def, current);
  }

  /** After a client's update or patch: an object being deleted whose last finalizer went is removed. */
  afterUpdate(def: ResourceDef, obj: KubeObject): void {
    if (!obj.metadata.deletionTimestamp || hasFinalizers(obj) || def === NAMESPACES || def === VMIS) return;
    if (def === PODS && Number(obj.metadata.deletionGracePeriodSeconds ?? 0) > 0) return;
    this.store.remove(def, obj.metadata.namespace, obj.metadata.name ?? '');
  }

  setAutoProgress(enabled: boolean): void {
    this.auto = enabled;
    if (!enabled) {
      for (const [key, timer] of this.timers) {
        if (key.startsWith('progress:')) {
          clearTimeout(timer);
          this.timers.delete(key);
        }
      }
      return;
    }
    for (const vmi of this.store.list(VMIS)) this.ensureTimers(vmi);
  }

  /**
   * Every VMI that has not ended and is not being deleted goes through the rest of its start at once, in
   * KubeVirt's order: pod bound, containers running and Ready, VMI Scheduled, Running, Ready=True. VMIs
   * that cannot start (unschedulable pod, unpullable image) stay where they are.
   */
  readyAll(): void {
    for (const vmi of this.store.list(VMIS)) {
      if (isFinalPhase(vmi.status?.phase) || vmi.metadata.deletionTimestamp) continue;
      this.cancelProgress(vmi);
      let pod = this.currentPod(vmi);
      if (!pod || pod.metadata.deletionTimestamp) continue;
      if (!pod.spec?.nodeName) {
        if (unschedulableMessage(vmi, this.opts.node)) continue;
        this.bind(pod);
      }
      pod = this.currentPod(vmi);
      if (!pod) continue;
      if (!containerRunning(pod, COMPUTE)) {
        if (this.unpullableDisk(vmi)) continue;
        this.startContainers(pod);
      } else if (getCondition(pod, 'Ready')?.status !== 'True') {
        this.writePod(pod.metadata.namespace, pod.metadata.name ?? '', (d) => setContainerReady(d, COMPUTE, true));
      }
      const now = this.store.get(VMIS, vmi.metadata.namespace, vmi.metadata.name ?? '');
      if (now?.status?.phase === 'Scheduled') this.bootDomain(now);
      if (now) this.cancelProgress(now);
    }
  }

  /** A manual change stops the automatic start of that VMI, so that the automaton cannot undo it. */
  setPodReady(namespace: string, podName: string, ready: boolean): void {
    const pod = this.store.get(PODS, namespace, podName);
    if (!pod) throw new Error(`no pod ${namespace}/${podName}`);
    const owner = this.ownerOf(pod);
    if (owner) this.takeOver(owner);
    if (ready) {
      if (!pod.spec?.nodeName) this.bind(pod);
      if (!containerRunning(this.store.get(PODS, namespace, podName), COMPUTE)) this.writePod(namespace, podName, kubeletStarted);
    }
    const compute = ((this.store.get(PODS, namespace, podName)?.status?.containerStatuses ?? []) as Array<{ name: string; ready: boolean }>)
      .find((s) => s.name === COMPUTE);
    if (compute && compute.ready !== ready) this.writePod(namespace, podName, (d) => setContainerReady(d, COMPUTE, ready));
  }

  setVmiPhase(namespace: string, name: string, phase: VmiPhase, message?: string): void {
    const vmi = this.store.get(VMIS, namespace, name);
    if (!vmi) throw new Error(`no VMI ${namespace}/${name}`);
    this.takeOver(vmi);
    this.store.updateShallow(VMIS, namespace, name, (d) => {
      d.status = { ...(d.status ?? {}) };
      setPhase(d, phase);
      if (message) (d.status ??= {}).reason = message;
      if ((phase === 'Scheduled' || phase === 'Running') && !d.status?.nodeName) {
        (d.status ??= {}).nodeName = this.opts.node.name;
        d.metadata.labels = { ...(d.metadata.labels ?? {}), 'kubevirt.io/nodeName': this.opts.node.name };
      }
    });
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  // ---- events and controllers -------------------------------------------------------------------

  private onEvent(def: ResourceDef, event: StoredEvent): void {
    const ns = event.object.metadata.namespace ?? '';
    if (def === VMIS) {
      this.queue.add(`${ns}/${event.object.metadata.name ?? ''}`);
      if (event.type === 'DELETED') {
        this.manual.delete(event.object.metadata.uid ?? '');
        this.clearTimer(`progress:domain:${event.object.metadata.uid ?? ''}`);
      }
    } else if (def === PODS) {
      const owner = controllerRef(event.object);
      if (owner) this.queue.add(`${ns}/${owner.name}`);
      if (event.type === 'DELETED') this.forgetPod(event.object);
    }
    if (event.type === 'DELETED' && def !== NAMESPACES && this.nsPassed.has(ns)) this.finishNamespace(ns);
    this.drain();
  }

  /** Runs the queued VMI reconciles, and those their own writes queue, until the cluster is quiet. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let guard = 0; this.queue.size > 0; guard++) {
        if (guard > 1_000_000) throw new Error('simulated KubeVirt: reconciles do not settle');
        const key = this.queue.values().next().value as string;
        this.queue.delete(key);
        const slash = key.indexOf('/');
        const [namespace, name] = [key.slice(0, slash), key.slice(slash + 1)];
        const before = this.store.get(VMIS, namespace, name);
        if (!before) {
          this.settled.delete(key);
          continue;
        }
        const fp = this.fingerprint(before);
        if (this.settled.get(key) !== fp) {
          // A pass that wrote nothing settles the VMI until it or its pods change; one that wrote may lead
          // to more (a new phase is acted on by the next pass), so the pass its own writes trigger runs.
          const rv = this.store.currentRv();
          reconcileVmi(this.controllerApi(namespace, name));
          if (this.store.currentRv() === rv) this.settled.set(key, fp);
          else this.settled.delete(key);
        }
        const vmi = this.store.get(VMIS, namespace, name);
        if (vmi) this.ensureTimers(vmi);
      }
    } finally {
      this.draining = false;
    }
  }

  private fingerprint(vmi: KubeObject): string {
    let fp = `${vmi.metadata.uid ?? ''}:${vmi.metadata.resourceVersion ?? ''}`;
    for (const pod of this.podsOf(vmi)) fp += `,${pod.metadata.resourceVersion ?? ''}`;
    return fp;
  }

  private controllerApi(namespace: string, name: string): ControllerApi {
    return {
      get: () => this.store.get(VMIS, namespace, name),
      ownedPods: (vmi) => this.podsOf(vmi),
      createPod: (pod) => this.createGenerated(PODS, pod),
      deletePod: (pod) => void this.deletePod(pod),
      patchPod: (pod, mutate) => void this.writePod(namespace, pod.metadata.name ?? '', mutate),
      updateVmi: (next) => void this.store.updateShallow(VMIS, namespace, name, (d) => {
        d.metadata = next.metadata;
        d.status = next.status;
      }),
      removeVmi: (last) => void this.store.remove(VMIS, namespace, name, last),
      renderPod: (vmi) => buildLauncherPod(vmi, this.opts.launcherImage),
    };
  }

  /** A POST with generateName: the API server picks a free name (names.SimpleNameGenerator) and fills in its defaults. */
  private createGenerated(def: ResourceDef, obj: KubeObject): KubeObject {
    const ns = obj.metadata.namespace;
    let name = generateName(String(obj.metadata.generateName ?? ''));
    while (this.store.get(def, ns, name)) name = generateName(String(obj.metadata.generateName ?? ''));
    obj.metadata.name = name;
    this.admit(def, obj);
    return this.store.insert(def, obj);
  }

  /** The VMI's pods in creation order (the store keeps insertion order), so the last is the current one. */
  private podsOf(vmi: KubeObject): KubeObject[] {
    return this.store.list(PODS, vmi.metadata.namespace).filter((p) => controllerRef(p)?.uid === vmi.metadata.uid);
  }

  private currentPod(vmi: KubeObject): KubeObject | undefined {
    const pods = this.podsOf(vmi);
    return pods[pods.length - 1];
  }

  private ownerOf(pod: KubeObject): KubeObject | undefined {
    const ref = controllerRef(pod);
    const vmi = ref ? this.store.get(VMIS, pod.metadata.namespace, ref.name) : undefined;
    return vmi && vmi.metadata.uid === ref?.uid ? vmi : undefined;
  }

  // ---- timers -------------------------------------------------------------------------------------

  private timer(key: string, ms: number, fn: () => void): void {
    if (this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      fn();
    }, Math.max(0, ms));
    t.unref();
    this.timers.set(key, t);
  }

  private clearTimer(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  private takeOver(vmi: KubeObject): void {
    this.manual.add(vmi.metadata.uid ?? '');
    this.cancelProgress(vmi);
  }

  private cancelProgress(vmi: KubeObject): void {
    this.clearTimer(`progress:domain:${vmi.metadata.uid ?? ''}`);
    for (const pod of this.podsOf(vmi)) {
      for (const step of ['bind', 'containers', 'pull']) this.clearTimer(`progress:${step}:${pod.metadata.uid ?? ''}`);
    }
  }

  private forgetPod(pod: KubeObject): void {
    const uid = pod.metadata.uid ?? '';
    for (const step of ['progress:bind', 'progress:containers', 'progress:pull', 'terminate']) this.clearTimer(`${step}:${uid}`);
    this.pulls.delete(uid);
  }

  /** The next automatic step of a VMI's start, if it has one and automation is on for it. */
  private ensureTimers(vmi: KubeObject): void {
    if (!this.auto || this.manual.has(vmi.metadata.uid ?? '')) return;
    if (vmi.metadata.deletionTimestamp || isFinalPhase(vmi.status?.phase)) return;
    const ms = (fraction: number): number => fraction * this.opts.vmReadySeconds * 1000;
    const pod = this.currentPod(vmi);
    if (pod && !pod.metadata.deletionTimestamp) {
      const uid = pod.metadata.uid ?? '';
      const ref = { namespace: pod.metadata.namespace ?? '', name: pod.metadata.name ?? '', uid };
      const pulling = waitingReasons(pod).find((w) => w.reason === 'ErrImagePull' || w.reason === 'ImagePullBackOff');
      if (!pod.spec?.nodeName) {
        if (getCondition(pod, 'PodScheduled')?.reason !== 'Unschedulable') this.timer(`progress:bind:${uid}`, ms(STEP.bind), () => this.scheduleStep(ref));
      } else if (pulling) {
        this.pullTimer(ref, pulling.reason);
      } else if (!containerRunning(pod, COMPUTE)) {
        this.timer(`progress:containers:${uid}`, ms(STEP.containers), () => this.containersStep(ref));
      }
    }
    if (vmi.status?.phase === 'Scheduled') {
      const ref = { namespace: vmi.metadata.namespace ?? '', name: vmi.metadata.name ?? '', uid: vmi.metadata.uid ?? '' };
      this.timer(`progress:domain:${ref.uid}`, ms(STEP.domain), () => {
        const now = this.store.get(VMIS, ref.namespace, ref.name);
        if (now && now.metadata.uid === ref.uid && now.status?.phase === 'Scheduled' && !now.metadata.deletionTimestamp) this.bootDomain(now);
      });
    }
  }

  private livePod(ref: { namespace: string; name: string; uid: string }): KubeObject | undefined {
    const pod = this.store.get(PODS, ref.namespace, ref.name);
    return pod && pod.metadata.uid === ref.uid && !pod.metadata.deletionTimestamp ? pod : undefined;
  }

  /** Pod writes by the scheduler, the kubelet and virt-controller: their mutators replace what they change. */
  private writePod(namespace: string | undefined, name: string, mutate: (draft: KubeObject) => void): KubeObject | undefined {
    return this.store.updateShallow(PODS, namespace, name, mutate);
  }

  // ---- the scheduler ------------------------------------------------------------------------------

  /** The scheduler: binds the pod, or marks it Unschedulable when it does not fit the node (scheduler.ts). */
  private scheduleStep(ref: { namespace: string; name: string; uid: string }): void {
    const pod = this.livePod(ref);
    const vmi = pod && this.ownerOf(pod);
    if (!pod || !vmi || pod.spec?.nodeName) return;
    const message = unschedulableMessage(vmi, this.opts.node);
    if (message) this.writePod(ref.namespace, ref.name, (d) => markUnschedulable(d, message));
    else this.bind(pod);
  }

  /** Binding, then the kubelet's first status for the pod (sandbox up, pod IP, containers waiting). */
  private bind(pod: KubeObject): void {
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    this.writePod(ns, name, (d) => bindPod(d, this.opts.node.name));
    const n = this.ips++;
    const podIP = `10.244.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`;
    this.writePod(ns, name, (d) => kubeletAdmitted(d, '10.0.0.1', podIP));
  }

  // ---- the kubelet --------------------------------------------------------------------------------

  private unpullableDisk(vmi: KubeObject): { name: string; image: string } | undefined {
    return containerDisks(vmi).find((d) => this.unpullable.some((re) => re.test(d.image)));
  }

  private containersStep(ref: { namespace: string; name: string; uid: string }): void {
    const pod = this.livePod(ref);
    if (pod?.spec?.nodeName && !containerRunning(pod, COMPUTE)) this.startContainers(pod);
  }

  /**
   * Pulls the images and starts the containers. An image matching `unpullableImages` fails in the
   * init container that pre-pulls it (pkg/container-disk/container-disk.go): ErrImagePull, then
   * ImagePullBackOff (kubernetes pkg/kubelet/images/image_manager.go), and the pod stays Pending.
   */
  private startContainers(pod: KubeObject): void {
    const vmi = this.ownerOf(pod);
    const bad = vmi && this.unpullableDisk(vmi);
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    if (bad) {
      this.pulls.set(pod.metadata.uid ?? '', 1);
      this.writePod(ns, name, (d) => kubeletPullFailing(d, `volume${bad.name}-init`, 'ErrImagePull', errImagePullMessage(bad.image)));
      return;
    }
    this.writePod(ns, name, kubeletStarted);
  }

  /** ErrImagePull turns into ImagePullBackOff at the kubelet's next sync; after the back-off it pulls (and fails) again. */
  private pullTimer(ref: { namespace: string; name: string; uid: string }, reason: string): void {
    const base = this.opts.imagePullBackOffMs;
    const attempts = this.pulls.get(ref.uid) ?? 1;
    const delay = reason === 'ErrImagePull' ? base : Math.min(base * 2 ** (attempts - 1), base * MAX_BACKOFF_FACTOR);
    this.timer(`progress:pull:${ref.uid}`, delay, () => {
      const pod = this.livePod(ref);
      const vmi = pod && this.ownerOf(pod);
      const bad = vmi && this.unpullableDisk(vmi);
      if (!pod || !bad) return;
      const container = `volume${bad.name}-init`;
      if (reason === 'ErrImagePull') {
        this.writePod(ref.namespace, ref.name, (d) => kubeletPullFailing(d, container, 'ImagePullBackOff', imagePullBackOffMessage(bad.image)));
      } else {
        this.pulls.set(ref.uid, attempts + 1);
        this.writePod(ref.namespace, ref.name, (d) => kubeletPullFailing(d, container, 'ErrImagePull', errImagePullMessage(bad.image)));
      }
    });
  }

  /**
   * A pod marked for deletion: its containers get SIGTERM and the kubelet removes the pod once they have
   * stopped (podTerminationMs, never longer than the grace period). For a VMI being deleted, virt-launcher
   * shuts the guest down first and virt-handler reports the domain's end: phase Succeeded
   * (pkg/virt-handler/vm.go calculateVmPhaseForStatusReason, shut off with reason Shutdown).
   */
  private terminateStep(ref: { namespace: string; name: string; uid: string }): void {
    const pod = this.store.get(PODS, ref.namespace, ref.name);
    if (!pod || pod.metadata.uid !== ref.uid) return;
    const vmi = this.ownerOf(pod);
    if (vmi && vmi.metadata.deletionTimestamp && vmi.status?.phase === 'Running') {
      this.store.updateShallow(VMIS, ref.namespace, vmi.metadata.name ?? '', (d) => {
        d.status = { ...(d.status ?? {}) };
        setPhase(d, 'Succeeded');
      });
    }
    this.finishDeletion(PODS, pod);
  }

  // ---- virt-handler -------------------------------------------------------------------------------

  private bootDomain(vmi: KubeObject): void {
    this.clearTimer(`progress:domain:${vmi.metadata.uid ?? ''}`);
    const pod = this.currentPod(vmi);
    this.store.updateShallow(VMIS, vmi.metadata.namespace, vmi.metadata.name ?? '', (d) => {
      domainStarted(d, pod?.status?.podIP as string | undefined, this.opts.defaultNetworkInterface);
    });
  }

  // ---- the API server's deletion rules ------------------------------------------------------------

  /**
   * follows kubernetes pkg/registry/core/pod/strategy.go CheckGracefulDelete and
   * staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go BeforeDelete: a pod that never reached a
   * node, or has ended, goes at once; otherwise it gets deletionTimestamp = now + grace period and
   * deletionGracePeriodSeconds, and the kubelet removes it when its containers have stopped.
   */
  private deletePod(pod: KubeObject, gracePeriodSeconds?: number): KubeObject {
    const ended = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    let grace = gracePeriodSeconds ?? Number(pod.spec?.terminationGracePeriodSeconds ?? 30);
    if (!pod.spec?.nodeName || ended) grace = 0;
    if (pod.metadata.deletionTimestamp && grace >= Number(pod.metadata.deletionGracePeriodSeconds ?? 0)) return pod;
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    if (grace === 0) return this.finishDeletion(PODS, pod);
    const updated = this.writePod(ns, name, (d) => {
      d.metadata.deletionTimestamp = rfc3339(Date.now() + grace * 1000);
      d.metadata.deletionGracePeriodSeconds = grace;
    }) as KubeObject;
    const ref = { namespace: ns, name, uid: pod.metadata.uid ?? '' };
    this.clearTimer(`terminate:${ref.uid}`);
    this.timer(`terminate:${ref.uid}`, Math.min(this.opts.podTerminationMs, grace * 1000), () => this.terminateStep(ref));
    return updated;
  }

  /** The object goes now, unless finalizers hold it: then it waits, marked, for them to be removed. */
  private finishDeletion(def: ResourceDef, obj: KubeObject): KubeObject {
    const ns = obj.metadata.namespace;
    const name = obj.metadata.name ?? '';
    if (hasFinalizers(obj)) {
      return this.store.updateStatus(def, ns, name, (d) => {
        d.metadata.deletionTimestamp ??= timestamp();
        d.metadata.deletionGracePeriodSeconds = 0;
      }) as KubeObject;
    }
    return this.store.remove(def, ns, name) as KubeObject;
  }

  /**
   * An object with finalizers (a VMI carries kubevirt.io/foregroundDeleteVirtualMachine) is only marked:
   * deletionTimestamp now, deletionGracePeriodSeconds 0 (apiserver rest/delete.go); the finalizer's owner
   * (virt-controller) removes the finalizer when it is done, and the object goes then.
   */
  private deleteWithFinalizers(def: ResourceDef, obj: KubeObject): KubeObject {
    if (obj.metadata.deletionTimestamp) return obj;
    return this.finishDeletion(def, obj);
  }

  // ---- the namespace controller -------------------------------------------------------------------

  /**
   * follows kubernetes pkg/controller/namespace/deletion/namespaced_resources_deleter.go: the namespace
   * turns Terminating (refusing new content, apiserver's NamespaceLifecycle admission), its content is
   * deleted as clients would delete it (pods gracefully, VMIs through KubeVirt's finalizer), and it goes
   * once the content is gone and the controller's own pass (namespaceTerminationMs: discovery and the
   * deletion of every resource type) is over.
   */
  private terminateNamespace(ns: KubeObject): KubeObject {
    const name = ns.metadata.name ?? '';
    // pkg/registry/core/namespace/storage/storage.go Delete: a namespace already Terminating (its
    // finalizers pending) is answered as it is, 200 (the 409 "The system is ensuring all content is
    // removed" is only for two first deletions racing).
    if (ns.status?.phase === 'Terminating') return ns;
    const updated = this.store.updateStatus(NAMESPACES, undefined, name, (d) => {
      d.metadata = { ...d.metadata, deletionTimestamp: timestamp() };
      d.status = { ...(d.status ?? {}), phase: 'Terminating' };
    }) as KubeObject;
    // The controller's pass runs in the background, as it does behind the real API server.
    this.timer(`namespace:${name}`, 0, () => {
      for (const vmi of this.store.list(VMIS, name)) this.deleteWithFinalizers(VMIS, vmi);
      for (const pod of this.store.list(PODS, name)) if (!pod.metadata.deletionTimestamp) this.deletePod(pod);
      for (const policy of this.store.list(POLICIES, name)) this.deleteWithFinalizers(POLICIES, policy);
      this.timer(`namespace:${name}`, this.opts.namespaceTerminationMs, () => {
        this.nsPassed.add(name);
        this.finishNamespace(name);
      });
    });
    return updated;
  }

  private finishNamespace(name: string): void {
    if (!this.nsPassed.has(name)) return;
    if ([VMIS, PODS, POLICIES].some((def) => this.store.list(def, name).length > 0)) return;
    this.nsPassed.delete(name);
    this.store.remove(NAMESPACES, undefined, name);
  }
}
