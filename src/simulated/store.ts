import { randomUUID } from 'node:crypto';
import { apiVersionOf, type KubeObject, type ResourceDef } from './resources.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** One change, as kept in the history that watches replay; `previous` lets a watcher notice selector transitions. */
export interface StoredEvent {
  type: EventType;
  object: KubeObject;
  previous?: KubeObject;
  rv: number;
}

export type HistoryResult = { events: StoredEvent[] } | { expired: true; oldest: number };

class ResourceTable {
  readonly byNamespace = new Map<string, Map<string, KubeObject>>();
  history: StoredEvent[] = [];
  /** Every event with rv > floor is still in `history`; older resourceVersions get 410. */
  floor = 0;
}

let lastSecond = -1;
let lastStamp = '';

/** The API's timestamps have whole seconds; formatted once per second, as bursts ask thousands of times. */
export function timestamp(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    lastStamp = new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  return lastStamp;
}

const changed = (a: unknown, b: unknown): boolean => a !== b && JSON.stringify(a) !== JSON.stringify(b);

/**
 * metadata.generation (every kind but namespaces has one, 1 at creation) goes up when a deletion first
 * marks the object (apiserver pkg/registry/rest/delete.go BeforeDelete); for a custom resource without
 * a status subresource (KubeVirt's VMI) with any change but metadata's, status included
 * (apiextensions-apiserver pkg/registry/customresource/strategy.go PrepareForUpdate); for built-in kinds
 * when a client changes the spec (a pod's binding and status writes do not).
 */
function bumpsGeneration(def: ResourceDef, previous: KubeObject, next: KubeObject, byClient: boolean): boolean {
  if (next.metadata.deletionTimestamp && !previous.metadata.deletionTimestamp) return true;
  if (def.group === 'kubevirt.io') return changed(previous.spec, next.spec) || changed(previous.status, next.status);
  return byClient && changed(previous.spec, next.spec);
}

/**
 * Objects of every resource, one global resourceVersion counter (as etcd's revision), and a bounded
 * per-resource event history. Stored objects are never mutated in place: every change stores a new object,
 * so events and list snapshots can share them safely.
 */
export class ObjectStore {
  private rv = 0;
  private readonly tables = new Map<string, ResourceTable>();
  private readonly listeners: Array<(def: ResourceDef, event: StoredEvent) => void> = [];

  constructor(private readonly historyLimit = 10_000) {}

  currentRv(): number {
    return this.rv;
  }

  onEvent(listener: (def: ResourceDef, event: StoredEvent) => void): void {
    this.listeners.push(listener);
  }

  get(def: ResourceDef, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.table(def).byNamespace.get(def.namespaced ? namespace ?? '' : '')?.get(name);
  }

  list(def: ResourceDef, namespace?: string): KubeObject[] {
    const byNs = this.table(def).byNamespace;
    if (def.namespaced && namespace !== undefined) return [...(byNs.get(namespace)?.values() ?? [])];
    const all: KubeObject[] = [];
    for (const objects of byNs.values()) for (const obj of objects.values()) all.push(obj);
    return all;
  }

  /** Stores a new object, assigning uid, resourceVersion and creationTimestamp; the caller checked it is absent. */
  insert(def: ResourceDef, input: KubeObject): KubeObject {
    const obj: KubeObject = { ...input, apiVersion: apiVersionOf(def), kind: def.kind };
    obj.metadata = { ...input.metadata, uid: randomUUID(), resourceVersion: String(++this.rv), creationTimestamp: timestamp() };
    if (def.plural !== 'namespaces') obj.metadata.generation = 1;
    if (!def.namespaced) delete obj.metadata.namespace;
    this.put(def, obj);
    this.record(def, { type: 'ADDED', object: obj, rv: this.rv });
    return obj;
  }

  /** Applies `mutate` to a deep copy of the stored object and stores the copy under a new resourceVersion. */
  update(def: ResourceDef, namespace: string | undefined, name: string, mutate: (draft: KubeObject) => void): KubeObject | undefined {
    return this.replace(def, namespace, name, (previous) => structuredClone(previous), mutate, true);
  }

  /**
   * What a controller writing the status subresource does: like update(), but only `status` is deep-copied
   * (metadata and spec are copied one level deep), so `mutate` may change status freely and must replace,
   * not edit, anything nested in metadata or spec. A burst of thousands of status changes stays cheap.
   */
  updateStatus(def: ResourceDef, namespace: string | undefined, name: string, mutate: (draft: KubeObject) => void): KubeObject | undefined {
    return this.replace(def, namespace, name, (previous) => ({
      ...previous,
      metadata: { ...previous.metadata },
      spec: previous.spec && { ...previous.spec },
      status: previous.status && (JSON.parse(JSON.stringify(previous.status)) as KubeObject['status']),
    }), mutate);
  }

  /**
   * The cheapest write: only the top level and metadata are copied, so `mutate` must replace (not edit)
   * status, spec and anything nested in metadata. For a controller that builds the new status itself.
   */
  updateShallow(def: ResourceDef, namespace: string | undefined, name: string, mutate: (draft: KubeObject) => void): KubeObject | undefined {
    return this.replace(def, namespace, name, (previous) => ({ ...previous, metadata: { ...previous.metadata } }), mutate);
  }

  private replace(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    copy: (previous: KubeObject) => KubeObject,
    mutate: (draft: KubeObject) => void,
    byClient = false,
  ): KubeObject | undefined {
    const previous = this.get(def, namespace, name);
    if (!previous) return undefined;
    const draft = copy(previous);
    mutate(draft);
    draft.apiVersion = apiVersionOf(def);
    draft.kind = def.kind;
    draft.metadata = { ...draft.metadata, name: previous.metadata.name, namespace: previous.metadata.namespace };
    if (!def.namespaced) delete draft.metadata.namespace;
    draft.metadata.uid = previous.metadata.uid;
    const generation = previous.metadata.generation;
    if (typeof generation === 'number') draft.metadata.generation = generation + (bumpsGeneration(def, previous, draft, byClient) ? 1 : 0);
    else delete draft.metadata.generation;
    draft.metadata.resourceVersion = String(++this.rv);
    this.put(def, draft);
    this.record(def, { type: 'MODIFIED', object: draft, previous, rv: this.rv });
    return draft;
  }

  /**
   * Removes the object; the DELETED event carries it under the deletion's own resourceVersion, as the real
   * server does. `last` is the object's final state when the removal comes from an update (the last
   * finalizer removed), which the API server deletes instead of storing.
   */
  remove(def: ResourceDef, namespace: string | undefined, name: string, last?: KubeObject): KubeObject | undefined {
    const ns = def.namespaced ? namespace ?? '' : '';
    const objects = this.table(def).byNamespace.get(ns);
    const previous = objects?.get(name);
    if (!objects || !previous) return undefined;
    objects.delete(name);
    if (objects.size === 0) this.table(def).byNamespace.delete(ns);
    const base = last ?? previous;
    const gone: KubeObject = {
      ...base, apiVersion: previous.apiVersion, kind: previous.kind,
      metadata: { ...base.metadata, name: previous.metadata.name, namespace: previous.metadata.namespace, uid: previous.metadata.uid, resourceVersion: String(++this.rv) },
    };
    if (!def.namespaced) delete gone.metadata.namespace;
    this.record(def, { type: 'DELETED', object: gone, previous, rv: this.rv });
    return gone;
  }

  /** Events of one resource newer than `sinceRv`, found by binary search (no scan of the whole history). */
  history(def: ResourceDef, sinceRv: number): HistoryResult {
    const table = this.table(def);
    if (sinceRv < table.floor) return { expired: true, oldest: table.floor };
    const h = table.history;
    let lo = 0;
    let hi = h.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (h[mid].rv <= sinceRv) lo = mid + 1;
      else hi = mid;
    }
    return { events: h.slice(lo) };
  }

  /** Forgets all history, like an etcd compaction at the current revision. */
  compact(): void {
    for (const table of this.tables.values()) {
      table.history = [];
      table.floor = this.rv;
    }
  }

  private table(def: ResourceDef): ResourceTable {
    let table = this.tables.get(def.plural);
    if (!table) {
      table = new ResourceTable();
      this.tables.set(def.plural, table);
    }
    return table;
  }

  private put(def: ResourceDef, obj: KubeObject): void {
    const ns = def.namespaced ? obj.metadata.namespace ?? '' : '';
    const byNs = this.table(def).byNamespace;
    let objects = byNs.get(ns);
    if (!objects) {
      objects = new Map();
      byNs.set(ns, objects);
    }
    objects.set(obj.metadata.name ?? '', obj);
  }

  private record(def: ResourceDef, event: StoredEvent): void {
    const table = this.table(def);
    table.history.push(event);
    // Trim in batches so that appending stays amortised O(1) even with a full history.
    if (table.history.length > this.historyLimit * 1.5) {
      const drop = table.history.length - this.historyLimit;
      table.floor = table.history[drop - 1].rv;
      table.history = table.history.slice(drop);
    }
    for (const listener of this.listeners) listener(def, event);
  }
}
