import type { Loose } from './resources.js';
import { apiVersionOf, type KubeObject, type ResourceDef } from './resources.js';

/** Server-side printing (meta.k8s.io/v1 Table), which is what `kubectl get` asks for and prints. */

interface Column {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const col = (name: string, description: string, priority = 0, format = ''): Column =>
  ({ name, type: 'string', format, description, priority });

const COLUMNS: Record<string, Column[]> = {
  namespaces: [col('Name', 'Name of the namespace', 0, 'name'), col('Status', 'Namespace phase'), col('Age', 'Time since creation')],
  pods: [
    col('Name', 'Name of the pod', 0, 'name'), col('Ready', 'Ready containers'), col('Status', 'Pod phase'),
    col('Restarts', 'Container restarts'), col('Age', 'Time since creation'), col('IP', 'Pod IP', 1), col('Node', 'Node name', 1),
    col('Nominated Node', 'Node the scheduler nominated for preemption', 1), col('Readiness Gates', 'Readiness gates that are True', 1),
  ],
  networkpolicies: [col('Name', 'Name of the policy', 0, 'name'), col('Pod-Selector', 'Selected pods'), col('Age', 'Time since creation')],
  // kubevirt/kubevirt pkg/virt-operator/resource/generate/components/crds.go: the VMI CRD's printer columns.
  virtualmachineinstances: [
    col('Name', 'Name of the VMI', 0, 'name'), col('Age', 'Time since creation'), col('Phase', 'VMI phase'),
    col('IP', 'VMI IP'), col('NodeName', 'Node name'), col('Ready', 'Ready condition'),
    col('Live-Migratable', 'LiveMigratable condition', 1), col('Paused', 'Paused condition', 1),
  ],
};

export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

/** The AGE column: kubernetes staging/src/k8s.io/apimachinery/pkg/util/duration/duration.go HumanDuration. */
function age(obj: KubeObject): string {
  const created = Date.parse(obj.metadata.creationTimestamp ?? '');
  if (Number.isNaN(created)) return '<unknown>';
  const seconds = Math.floor((Date.now() - created) / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  const both = (big: number, a: string, small: number, b: string) => (small === 0 ? `${big}${a}` : `${big}${a}${small}${b}`);
  if (minutes < 10) return both(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return both(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return both(Math.floor(hours / 24), 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) return both(Math.floor(hours / 24 / 365), 'y', Math.floor(hours / 24) % 365, 'd');
  return `${Math.floor(hours / 24 / 365)}y`;
}

function conditionStatus(obj: KubeObject, type: string, absent = 'False'): string {
  const conditions = (obj.status?.conditions ?? []) as Array<Record<string, unknown>>;
  return String(conditions.find((c) => c.type === type)?.status ?? absent);
}

type Status = { name: string; ready?: boolean; started?: boolean; restartCount?: number; state?: Loose };

/**
 * The READY, STATUS and RESTARTS columns of `kubectl get pods`, after kubernetes
 * pkg/printers/internalversion/printers.go printPod: sidecars count as containers, an init container
 * that waits shows as Init:<reason>, a waiting container's reason wins, a pod being deleted is Terminating.
 */
function podColumns(obj: KubeObject): { ready: string; status: string; restarts: number } {
  const spec = (obj.spec ?? {}) as { containers?: Array<{ name: string }>; initContainers?: Array<{ name: string; restartPolicy?: string }> };
  const initSpecs = spec.initContainers ?? [];
  const sidecars = new Set(initSpecs.filter((c) => c.restartPolicy === 'Always').map((c) => c.name));
  const initStatuses = (obj.status?.initContainerStatuses ?? []) as Status[];
  const statuses = (obj.status?.containerStatuses ?? []) as Status[];
  let total = (spec.containers ?? []).length;
  let ready = 0;
  let restarts = 0;
  let reason = String(obj.status?.reason ?? obj.status?.phase ?? '');
  for (const s of initStatuses) {
    if (!sidecars.has(s.name)) continue;
    total++;
    if (s.started && s.ready) ready++;
  }
  let initializing = false;
  for (const [i, s] of initStatuses.entries()) {
    restarts += s.restartCount ?? 0;
    const state = s.state ?? {};
    if (state.terminated && state.terminated.exitCode === 0) continue;
    if (sidecars.has(s.name) && s.started) continue;
    if (state.terminated) reason = `Init:${state.terminated.reason || `ExitCode:${state.terminated.exitCode}`}`;
    else if (state.waiting?.reason && state.waiting.reason !== 'PodInitializing') reason = `Init:${state.waiting.reason}`;
    else reason = `Init:${i}/${initSpecs.length}`;
    initializing = true;
    break;
  }
  if (!initializing || conditionStatus(obj, 'Initialized') === 'True') {
    restarts = 0;
    let running = false;
    for (const s of [...statuses].reverse()) {
      restarts += s.restartCount ?? 0;
      const state = s.state ?? {};
      if (state.waiting?.reason) reason = state.waiting.reason;
      else if (state.terminated?.reason) reason = state.terminated.reason;
      else if (s.ready && state.running) {
        running = true;
        ready++;
      }
    }
    if (reason === 'Completed' && running) reason = conditionStatus(obj, 'Ready') === 'True' ? 'Running' : 'NotReady';
  }
  const phase = obj.status?.phase;
  if (obj.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed') reason = 'Terminating';
  return { ready: `${ready}/${total}`, status: reason, restarts };
}

function cells(def: ResourceDef, obj: KubeObject): unknown[] {
  const name = obj.metadata.name ?? '';
  const phase = String(obj.status?.phase ?? '');
  switch (def.plural) {
    case 'namespaces':
      return [name, phase, age(obj)];
    case 'pods': {
      const { ready, status, restarts } = podColumns(obj);
      // printers.go printPod: the wide columns end with the nominated node and the readiness gates that are True.
      const gates = ((obj.spec?.readinessGates ?? []) as Array<{ conditionType: string }>).map((g) => g.conditionType);
      const gatesTrue = gates.filter((g) => conditionStatus(obj, g) === 'True').length;
      return [name, ready, status, restarts, age(obj), obj.status?.podIP ?? '<none>', obj.spec?.nodeName ?? '<none>',
        obj.status?.nominatedNodeName ?? '<none>', gates.length ? `${gatesTrue}/${gates.length}` : '<none>'];
    }
    case 'networkpolicies':
      return [name, '<none>', age(obj)];
    default: {
      const ip = ((obj.status?.interfaces ?? []) as Array<{ ipAddress?: string }>)[0]?.ipAddress ?? '';
      return [name, age(obj), phase, ip, obj.status?.nodeName ?? '', conditionStatus(obj, 'Ready', ''),
        conditionStatus(obj, 'LiveMigratable', ''), conditionStatus(obj, 'Paused', '')];
    }
  }
}

/** One object as a single-row Table: the shape of each watch event when a Table was asked for. */
export function tableRow(def: ResourceDef, obj: KubeObject): Record<string, unknown> {
  return table(def, [obj], obj.metadata.resourceVersion ?? '');
}

function table(def: ResourceDef, items: KubeObject[], resourceVersion: string): Record<string, unknown> {
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion },
    columnDefinitions: COLUMNS[def.plural],
    // Each row's object is self-describing (a list's items of a built-in kind are not: see operations.ts).
    rows: items.map((obj) => ({ cells: cells(def, obj), object: { apiVersion: apiVersionOf(def), kind: def.kind, ...obj } })),
  };
}

/** Turns a get (one object) or list reply into a Table; anything else (a Status) passes through. */
export function toTable(def: ResourceDef, body: unknown): unknown {
  const value = body as { kind?: string; items?: KubeObject[]; metadata?: { resourceVersion?: string } };
  if (Array.isArray(value.items)) return table(def, value.items, value.metadata?.resourceVersion ?? '');
  if (value.kind === def.kind) return tableRow(def, body as KubeObject);
  return body;
}
