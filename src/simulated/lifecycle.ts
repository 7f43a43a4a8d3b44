import { resourceByPlural, type KubeObject, type ResourceDef } from './resources.js';
import { conflict, notFound } from './status.js';
import { timestamp, type ObjectStore } from './store.js';
import {
  buildLauncherPod, phaseOf, randomSuffix, runPod, schedulePod, setCondition, setPhase, setPodReadiness, type VmiPhase,
} from './virt-launcher.js';

const NAMESPACES = resourceByPlural('namespaces');
const PODS = resourceByPlural('pods');
const VMIS = resourceByPlural('virtualmachineinstances');
const POLICIES = resourceByPlural('networkpolicies');

/** Where each automatic step of a VMI falls, as a fraction of vmReadySeconds: scheduled, running, pod Ready. */
const STEP_AT = [0.25, 0.5, 1];

interface Progress {
  uid: string;
  namespace: string;
  name: string;
  podName: string;
  step: number;
  timer?: NodeJS.Timeout;
}

export interface LifecycleOptions {
  vmReadySeconds: number;
  namespaceTerminationMs: number;
}

/**
 * What the rest of a cluster does behind the API: KubeVirt starting a VMI's virt-launcher pod and
 * moving both towards Running/Ready, and the namespace controller purging a Terminating namespace.
 */
export class ClusterLifecycle {
  private readonly progress = new Map<string, Progress>();
  private readonly purges = new Map<string, NodeJS.Timeout>();
  private auto = true;

  constructor(private readonly store: ObjectStore, private readonly opts: LifecycleOptions) {}

  /** Server-managed status of a new object: clients cannot set it on create, as with the real status subresource. */
  initialStatus(def: ResourceDef, obj: KubeObject): void {
    if (def === NAMESPACES) {
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
    } else if (def === PODS) {
      obj.status = { phase: 'Pending' };
    } else if (def === VMIS) {
      obj.status = { phase: 'Pending' };
    }
  }

  afterCreate(def: ResourceDef, obj: KubeObject): void {
    if (def === VMIS) this.startVmi(obj);
  }

  /**
   * Deletes as the API server and its controllers would. Throws NotFound when absent, and Conflict for a
   * namespace that is already Terminating (what the real server answers).
   */
  delete(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    const current = this.store.get(def, namespace, name);
    if (!current) throw notFound(def, name);
    if (def === NAMESPACES) return this.terminateNamespace(current);
    if (def === VMIS) return this.deleteVmi(current);
    const gone = this.store.remove(def, namespace, name) as KubeObject;
    if (def === PODS) this.podGone(gone);
    return gone;
  }

  setAutoProgress(enabled: boolean): void {
    this.auto = enabled;
    for (const p of this.progress.values()) {
      if (enabled) this.scheduleNext(p);
      else clearTimeout(p.timer);
    }
  }

  /** Brings every VMI that has not ended to Running and its pod to Ready, all at once. */
  readyAll(): void {
    for (const vmi of this.store.list(VMIS)) {
      const phase = phaseOf(vmi);
      if (phase === 'Failed' || phase === 'Succeeded') continue;
      const ns = vmi.metadata.namespace ?? '';
      this.cancel(ns, vmi.metadata.name ?? '');
      if (phase !== 'Running' || !isReady(vmi)) {
        this.store.updateStatus(VMIS, ns, vmi.metadata.name ?? '', (d) => {
          setPhase(d, 'Running');
          setCondition(d, 'Ready', true);
        });
      }
      for (const pod of this.podsOf(vmi)) {
        if (!isReady(pod)) this.store.updateStatus(PODS, ns, pod.metadata.name ?? '', (d) => setPodReadiness(d, true));
      }
    }
  }

  /** A manual change stops the automatic progression of that VMI, so that the automaton cannot undo it. */
  setPodReady(namespace: string, podName: string, ready: boolean): void {
    const pod = this.store.get(PODS, namespace, podName);
    if (!pod) throw new Error(`no pod ${namespace}/${podName}`);
    const owner = this.ownerOf(pod);
    if (owner) this.cancel(namespace, owner.metadata.name ?? '');
    this.store.updateStatus(PODS, namespace, podName, (d) => setPodReadiness(d, ready));
  }

  setVmiPhase(namespace: string, name: string, phase: VmiPhase, message?: string): void {
    if (!this.store.get(VMIS, namespace, name)) throw new Error(`no VMI ${namespace}/${name}`);
    this.cancel(namespace, name);
    this.store.updateStatus(VMIS, namespace, name, (d) => setPhase(d, phase, message));
  }

  stop(): void {
    for (const p of this.progress.values()) clearTimeout(p.timer);
    this.progress.clear();
    for (const t of this.purges.values()) clearTimeout(t);
    this.purges.clear();
  }

  private startVmi(vmi: KubeObject): void {
    const ns = vmi.metadata.namespace ?? '';
    const name = vmi.metadata.name ?? '';
    let podName = `virt-launcher-${name}-${randomSuffix()}`;
    while (this.store.get(PODS, ns, podName)) podName = `virt-launcher-${name}-${randomSuffix()}`;
    this.store.insert(PODS, buildLauncherPod(vmi, podName));
    this.store.updateStatus(VMIS, ns, name, (d) => setPhase(d, 'Scheduling'));
    const p: Progress = { uid: vmi.metadata.uid ?? '', namespace: ns, name, podName, step: 0 };
    this.progress.set(`${ns}/${name}`, p);
    this.scheduleNext(p);
  }

  private scheduleNext(p: Progress): void {
    clearTimeout(p.timer);
    if (!this.auto || p.step >= STEP_AT.length) return;
    const from = p.step === 0 ? 0 : STEP_AT[p.step - 1];
    const delayMs = (STEP_AT[p.step] - from) * this.opts.vmReadySeconds * 1000;
    p.timer = setTimeout(() => this.advance(p), delayMs);
  }

  private advance(p: Progress): void {
    p.timer = undefined;
    const vmi = this.store.get(VMIS, p.namespace, p.name);
    if (!vmi || vmi.metadata.uid !== p.uid) {
      this.progress.delete(`${p.namespace}/${p.name}`);
      return;
    }
    const hasPod = this.store.get(PODS, p.namespace, p.podName) !== undefined;
    const pod = (mutate: (d: KubeObject) => void): void => {
      if (hasPod) this.store.updateStatus(PODS, p.namespace, p.podName, mutate);
    };
    if (p.step === 0) {
      pod(schedulePod);
      this.store.updateStatus(VMIS, p.namespace, p.name, (d) => setPhase(d, 'Scheduled'));
    } else if (p.step === 1) {
      pod(runPod);
      this.store.updateStatus(VMIS, p.namespace, p.name, (d) => setPhase(d, 'Running'));
    } else {
      pod((d) => setPodReadiness(d, true));
      this.store.updateStatus(VMIS, p.namespace, p.name, (d) => setCondition(d, 'Ready', true));
    }
    p.step++;
    if (p.step >= STEP_AT.length) this.progress.delete(`${p.namespace}/${p.name}`);
    else this.scheduleNext(p);
  }

  private cancel(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    clearTimeout(this.progress.get(key)?.timer);
    this.progress.delete(key);
  }

  private podsOf(vmi: KubeObject): KubeObject[] {
    return this.store.list(PODS, vmi.metadata.namespace)
      .filter((pod) => pod.metadata.labels?.['kubevirt.io/created-by'] === vmi.metadata.uid);
  }

  private ownerOf(pod: KubeObject): KubeObject | undefined {
    const uid = pod.metadata.labels?.['kubevirt.io/created-by'];
    if (!uid) return undefined;
    return this.store.list(VMIS, pod.metadata.namespace).find((vmi) => vmi.metadata.uid === uid);
  }

  /** The pod goes first, then the VMI: KubeVirt's finalizer keeps the VMI until its pod is gone. */
  private deleteVmi(vmi: KubeObject): KubeObject {
    const ns = vmi.metadata.namespace ?? '';
    const name = vmi.metadata.name ?? '';
    this.cancel(ns, name);
    for (const pod of this.podsOf(vmi)) this.store.remove(PODS, ns, pod.metadata.name ?? '');
    return this.store.remove(VMIS, ns, name) as KubeObject;
  }

  /**
   * KubeVirt never restarts a VMI's virt-launcher pod: when the pod disappears under a live VMI, the VMI
   * fails for good (a VirtualMachine would create a new VMI; this server has none). So does this simulation.
   */
  private podGone(pod: KubeObject): void {
    const vmi = this.ownerOf(pod);
    const phase = phaseOf(vmi);
    if (!vmi || phase === 'Failed' || phase === 'Succeeded') return;
    const name = vmi.metadata.name ?? '';
    this.cancel(vmi.metadata.namespace ?? '', name);
    this.store.updateStatus(VMIS, vmi.metadata.namespace, name, (d) => setPhase(d, 'Failed', 'virt-launcher pod was deleted'));
  }

  private terminateNamespace(ns: KubeObject): KubeObject {
    const name = ns.metadata.name ?? '';
    if (phaseOf(ns) === 'Terminating') {
      throw conflict(NAMESPACES, name, 'The system is ensuring all content is removed from this namespace.  ' +
        'Upon completion, this namespace will automatically be purged by the system.');
    }
    const updated = this.store.updateStatus(NAMESPACES, undefined, name, (d) => {
      d.metadata.deletionTimestamp = timestamp();
      d.status = { ...(d.status ?? {}), phase: 'Terminating' };
    }) as KubeObject;
    this.purges.set(name, setTimeout(() => this.purgeNamespace(name), this.opts.namespaceTerminationMs));
    return updated;
  }

  /** VMIs (with their pods) go before loose pods, so that no VMI is seen Failed while its namespace is removed. */
  private purgeNamespace(name: string): void {
    this.purges.delete(name);
    for (const vmi of this.store.list(VMIS, name)) this.deleteVmi(vmi);
    for (const def of [PODS, POLICIES]) {
      for (const obj of this.store.list(def, name)) this.store.remove(def, name, obj.metadata.name ?? '');
    }
    this.store.remove(NAMESPACES, undefined, name);
  }
}

function isReady(obj: KubeObject): boolean {
  const conditions = (obj.status?.conditions ?? []) as Array<Record<string, unknown>>;
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}
