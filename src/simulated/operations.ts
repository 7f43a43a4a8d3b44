import { labelNamespace } from './defaults.js';
import { jsonPatch, mergePatch } from './json-patch.js';
import type { ClusterLifecycle, DeleteOptions } from './lifecycle.js';
import { apiVersionOf, resourceByPlural, type KubeObject, type ResourceDef } from './resources.js';
import type { Selector } from './selectors.js';
import { badRequest, conflict, forbidden, notFound, alreadyExists, success } from './status.js';
import type { ObjectStore } from './store.js';
import { validateLabels, validateName } from './validation.js';
import { generateName } from './virt-launcher.js';

const NAMESPACES = resourceByPlural('namespaces');
const SERVER_SET = ['uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'managedFields'];

export type PatchType = 'json' | 'merge';

export interface Reply {
  code: number;
  body: unknown;
}

/** The verbs on stored objects, HTTP-free: each returns the reply body or throws an ApiError carrying a Status. */
export class ResourceOperations {
  constructor(private readonly store: ObjectStore, private readonly lifecycle: ClusterLifecycle) {}

  get(def: ResourceDef, namespace: string | undefined, name: string): Reply {
    const obj = this.store.get(def, namespace, name);
    if (!obj) throw notFound(def, name);
    return { code: 200, body: obj };
  }

  list(def: ResourceDef, namespace: string | undefined, selector: Selector): Reply {
    const items = this.store.list(def, namespace).filter((o) => selector.matches(o)).sort(byKey);
    const body = {
      kind: `${def.kind}List`, apiVersion: apiVersionOf(def),
      metadata: listMeta(def, this.store.currentRv()), items: listItems(def, items),
    };
    return { code: 200, body };
  }

  create(def: ResourceDef, namespace: string | undefined, input: KubeObject): Reply {
    const obj = this.prepare(def, namespace, input);
    const name = obj.metadata.name as string;
    if (def.namespaced) this.checkNamespace(def, namespace ?? '', name);
    // Admission (KubeVirt's webhooks for a VMI) comes before storage, so a refused object is refused even if its name is taken.
    this.lifecycle.admit(def, obj);
    if (this.store.get(def, namespace, name)) throw alreadyExists(def, name);
    return { code: 201, body: this.store.insert(def, obj) };
  }

  /**
   * Built-in kinds without graceful deletion answer a Success Status once the object is gone; pods,
   * namespaces, VMIs and anything a finalizer holds answer the object.
   */
  delete(def: ResourceDef, namespace: string | undefined, name: string, options: DeleteOptions = {}): Reply {
    const gone = this.lifecycle.delete(def, namespace, name, options);
    if (def.plural === 'networkpolicies' && !this.store.get(def, namespace, name)) return { code: 200, body: success(def, name, gone.metadata.uid) };
    return { code: 200, body: gone };
  }

  deleteCollection(def: ResourceDef, namespace: string | undefined, selector: Selector, options: DeleteOptions = {}): Reply {
    const items: KubeObject[] = [];
    for (const obj of this.store.list(def, namespace).filter((o) => selector.matches(o))) {
      try {
        items.push(this.lifecycle.delete(def, obj.metadata.namespace, obj.metadata.name ?? '', options));
      } catch {
        // Already gone or already terminating: deletecollection reports what it removed.
      }
    }
    const body = { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: listMeta(def, this.store.currentRv()), items: listItems(def, items) };
    return { code: 200, body };
  }

  /**
   * JSON Patch, or JSON merge patch (also used for strategic merge, which differs only for lists of objects).
   * Status stays server-owned, as without the status subresource.
   */
  patch(def: ResourceDef, namespace: string | undefined, name: string, type: PatchType, patch: unknown): Reply {
    const current = this.store.get(def, namespace, name);
    if (!current) throw notFound(def, name);
    const next = (type === 'json' ? jsonPatch(current, patch) : mergePatch(current, patch)) as KubeObject;
    if (next === null || typeof next !== 'object' || Array.isArray(next)) throw badRequest('the patch must leave an object');
    if (next.metadata === null || typeof next.metadata !== 'object') next.metadata = {};
    validateLabels(def, next);
    return this.written(def, this.store.update(def, namespace, name, (draft) => overwrite(def, draft, next)) as KubeObject);
  }

  /** PUT with optimistic concurrency: a stale metadata.resourceVersion is a 409 Conflict. */
  replace(def: ResourceDef, namespace: string | undefined, name: string, input: KubeObject): Reply {
    const current = this.store.get(def, namespace, name);
    if (!current) throw notFound(def, name);
    if (input.metadata.name !== undefined && input.metadata.name !== name) {
      throw badRequest(`the name of the object (${String(input.metadata.name)}) does not match the name on the URL (${name})`);
    }
    const rv = input.metadata.resourceVersion;
    if (rv !== undefined && rv !== current.metadata.resourceVersion) {
      throw conflict(def, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    validateLabels(def, input);
    return this.written(def, this.store.update(def, namespace, name, (draft) => overwrite(def, draft, structuredClone(input))) as KubeObject);
  }

  /** The reply to an update; an object being deleted that lost its last finalizer goes now. */
  private written(def: ResourceDef, obj: KubeObject): Reply {
    this.lifecycle.afterUpdate(def, obj);
    return { code: 200, body: obj };
  }

  private prepare(def: ResourceDef, namespace: string | undefined, input: KubeObject): KubeObject {
    const meta = { ...input.metadata };
    if (def.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace;
    }
    for (const key of SERVER_SET) delete meta[key];
    if (!meta.name && typeof meta.generateName === 'string' && meta.generateName) {
      let generated = generateName(meta.generateName);
      while (this.store.get(def, namespace, generated)) generated = generateName(meta.generateName);
      meta.name = generated;
    }
    const obj: KubeObject = { ...structuredClone(input), metadata: meta };
    validateName(def, meta.name);
    validateLabels(def, obj);
    return obj;
  }

  private checkNamespace(def: ResourceDef, namespace: string, name: string): void {
    const ns = this.store.get(NAMESPACES, undefined, namespace);
    if (!ns) throw notFound(NAMESPACES, namespace);
    if (ns.status?.phase === 'Terminating') {
      // staging/src/k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle/admission.go, with its cause.
      throw forbidden(def, name, `unable to create new content in namespace ${namespace} because it is being terminated`, [
        { reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' },
      ]);
    }
  }
}

/**
 * Replaces a draft's content with `next`, keeping what only the server sets: status and timestamps,
 * and a namespace's name label (the namespace strategy sets it on every update too).
 */
function overwrite(def: ResourceDef, draft: KubeObject, next: KubeObject): void {
  const { metadata, status } = draft;
  for (const key of Object.keys(draft)) delete draft[key];
  Object.assign(draft, next);
  draft.metadata = { ...next.metadata, creationTimestamp: metadata.creationTimestamp };
  if (metadata.deletionTimestamp) draft.metadata.deletionTimestamp = metadata.deletionTimestamp;
  if (metadata.deletionGracePeriodSeconds !== undefined) draft.metadata.deletionGracePeriodSeconds = metadata.deletionGracePeriodSeconds;
  if (status !== undefined) draft.status = status;
  else delete draft.status;
  if (def === NAMESPACES) labelNamespace(draft);
}

/**
 * The items of a list as the real API server sends them: a built-in kind's items (a typed list, e.g.
 * core/v1 PodList) carry no apiVersion and kind; a custom resource's (unstructured) do.
 */
function listItems(def: ResourceDef, items: KubeObject[]): KubeObject[] {
  if (def.group === 'kubevirt.io') return items;
  return items.map(({ apiVersion: _apiVersion, kind: _kind, ...rest }) => rest as KubeObject);
}

/** A list's metadata: a custom resource's (unstructured) list also says `continue: ""`, a typed list leaves it out. */
function listMeta(def: ResourceDef, rv: number): Record<string, string> {
  return def.group === 'kubevirt.io' ? { continue: '', resourceVersion: String(rv) } : { resourceVersion: String(rv) };
}

function byKey(a: KubeObject, b: KubeObject): number {
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name ?? ''}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name ?? ''}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}
