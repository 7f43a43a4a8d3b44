import type { KubeObject, ResourceDef } from './resources.js';

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
  ],
  networkpolicies: [col('Name', 'Name of the policy', 0, 'name'), col('Pod-Selector', 'Selected pods'), col('Age', 'Time since creation')],
  virtualmachineinstances: [
    col('Name', 'Name of the VMI', 0, 'name'), col('Age', 'Time since creation'), col('Phase', 'VMI phase'),
    col('IP', 'VMI IP'), col('NodeName', 'Node name'), col('Ready', 'Ready condition'),
  ],
};

export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

function age(obj: KubeObject): string {
  const created = Date.parse(obj.metadata.creationTimestamp ?? '');
  if (Number.isNaN(created)) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - created) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function conditionStatus(obj: KubeObject, type: string): string {
  const conditions = (obj.status?.conditions ?? []) as Array<Record<string, unknown>>;
  return String(conditions.find((c) => c.type === type)?.status ?? 'False');
}

function cells(def: ResourceDef, obj: KubeObject): unknown[] {
  const name = obj.metadata.name ?? '';
  const phase = String(obj.status?.phase ?? '');
  switch (def.plural) {
    case 'namespaces':
      return [name, phase, age(obj)];
    case 'pods': {
      const ready = conditionStatus(obj, 'Ready') === 'True' ? 1 : 0;
      const status = obj.metadata.deletionTimestamp ? 'Terminating' : phase;
      return [name, `${ready}/1`, status, 0, age(obj), obj.status?.podIP ?? '<none>', obj.spec?.nodeName ?? '<none>'];
    }
    case 'networkpolicies':
      return [name, '<none>', age(obj)];
    default:
      return [name, age(obj), phase, '', obj.status?.nodeName ?? '', conditionStatus(obj, 'Ready')];
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
    rows: items.map((obj) => ({ cells: cells(def, obj), object: obj })),
  };
}

/** Turns a get (one object) or list reply into a Table; anything else (a Status) passes through. */
export function toTable(def: ResourceDef, body: unknown): unknown {
  const value = body as { kind?: string; items?: KubeObject[]; metadata?: { resourceVersion?: string } };
  if (Array.isArray(value.items)) return table(def, value.items, value.metadata?.resourceVersion ?? '');
  if (value.kind === def.kind) return tableRow(def, body as KubeObject);
  return body;
}
