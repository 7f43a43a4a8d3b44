import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../logger.js';
import { KUBEVIRT_GROUP, KUBEVIRT_VERSION, VMI_PLURAL } from './templates/instance.js';
import { watch } from './watch.js';

export type WatchedKind = 'namespaces' | 'pods' | 'virtualmachineinstances';

/** The parts of an object the server reads. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    deletionTimestamp?: string | Date;
    creationTimestamp?: string | Date;
  };
  spec?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- Kubernetes objects of any kind pass through
  status?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- as spec
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface InformerOptions {
  labelSelector: string;
  /**
   * What the cache holds of what the selector lets through (a selector cannot say "this value or no
   * label"); an object that stops passing is reported DELETED. Default: everything.
   */
  keep?: (obj: KubeObject) => boolean;
  requestTimeoutMs: number;
  /** A watch that sends nothing (not even a bookmark) for this long is restarted. */
  stallTimeoutMs: number;
  /** Ask the API server to end each watch after about this long, so that connections are renewed. */
  watchTimeoutSeconds: number;
  backoffMinMs: number;
  backoffMaxMs: number;
}

export interface InformerHandlers {
  onEvent(kind: WatchedKind, type: WatchEventType, obj: KubeObject): void;
  /** After every (re)list: the cache now holds exactly the listed objects. */
  onSynced(kind: WatchedKind): void;
  /** A watch restarted after an error or a stall (for the metrics). */
  onRestart?(kind: WatchedKind, cause: 'error' | 'stall'): void;
}

const PATHS: Record<WatchedKind, string> = {
  namespaces: '/api/v1/namespaces',
  pods: '/api/v1/pods',
  virtualmachineinstances: `/apis/${KUBEVIRT_GROUP}/${KUBEVIRT_VERSION}/${VMI_PLURAL}`,
};

const keyOf = (o: KubeObject) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/**
 * One label-selected list-then-watch of one kind across all namespaces (kubespawner's reflector):
 * resumes from the last resourceVersion, relists on 410 Gone, restarts with capped backoff on any
 * other error or a silent stall. Unlike client-node's informer, it never gives up.
 */
export class Informer {
  private readonly cache = new Map<string, KubeObject>();
  private readonly byNamespace = new Map<string, Map<string, KubeObject>>();
  private resourceVersion: string | undefined;
  private controller: AbortController | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private _synced = false;
  private _healthy = false;
  private generation = 0;

  constructor(
    readonly kind: WatchedKind,
    private readonly kubeConfig: KubeConfig,
    private readonly options: InformerOptions,
    private readonly handlers: InformerHandlers,
    private readonly logger: Logger,
  ) {}

  /** True once the first list has completed. */
  get synced(): boolean {
    return this._synced;
  }

  /** True while the last list succeeded and the watch is not failing. */
  get healthy(): boolean {
    return this._synced && this._healthy;
  }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.cache.get(`${namespace ?? ''}/${name}`);
  }

  inNamespace(namespace: string): Iterable<KubeObject> {
    return this.byNamespace.get(namespace)?.values() ?? [];
  }

  all(): Iterable<KubeObject> {
    return this.cache.values();
  }

  start(): void {
    this.stopped = false;
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.stallTimer);
    clearTimeout(this.retryTimer);
    this.controller?.abort();
  }

  private async relist(): Promise<void> {
    const generation = ++this.generation;
    try {
      const list = await this.list();
      if (generation !== this.generation) return;
      this.replaceCache(list.items);
      this.resourceVersion = list.metadata?.resourceVersion;
      this._synced = true;
      this._healthy = true;
      this.handlers.onSynced(this.kind);
      await this.watch(generation);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err, () => this.relist());
    }
  }

  private async list(): Promise<{ items: KubeObject[]; metadata?: { resourceVersion?: string } }> {
    const labelSelector = this.options.labelSelector;
    const request = async () => {
      if (this.kind === 'pods') return this.kubeConfig.makeApiClient(CoreV1Api).listPodForAllNamespaces({ labelSelector });
      if (this.kind === 'namespaces') return this.kubeConfig.makeApiClient(CoreV1Api).listNamespace({ labelSelector });
      return this.kubeConfig
        .makeApiClient(CustomObjectsApi)
        .listClusterCustomObject({ group: KUBEVIRT_GROUP, version: KUBEVIRT_VERSION, plural: VMI_PLURAL, labelSelector });
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`list ${this.kind}: timed out`)), this.options.requestTimeoutMs);
    });
    try {
      return (await Promise.race([request(), timeout])) as never;
    } finally {
      clearTimeout(timer);
    }
  }

  private async watch(generation: number): Promise<void> {
    let gone = false;
    let errorEvent: { code?: number; message?: string } | undefined;
    const query = {
      labelSelector: this.options.labelSelector,
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: this.options.watchTimeoutSeconds,
    };
    this.armStallTimer(generation);
    const controller = await watch(
      this.kubeConfig,
      PATHS[this.kind],
      query,
      (type, obj) => {
        if (generation !== this.generation) return;
        this.armStallTimer(generation);
        if (type === 'ERROR') {
          gone = (obj as { code?: number })?.code === 410;
          if (!gone) {
            errorEvent = (obj ?? {}) as { code?: number; message?: string };
            this.logger.warn('watch error event', { kind: this.kind, status: obj });
          }
          return;
        }
        this.failures = 0;
        this.apply(type, obj as KubeObject);
      },
      (err) => {
        if (generation !== this.generation || this.stopped) return;
        clearTimeout(this.stallTimer);
        if (gone) {
          this.logger.info('watch history expired (410 Gone); relisting', { kind: this.kind });
          void this.relist();
        } else if (err || errorEvent) {
          // An ERROR event other than 410 (a 500, a 429, an expired token) is a failure like a broken
          // connection: retried with backoff, never at once in a loop.
          this.fail(err ?? new Error(`watch ended with an error event: ${errorEvent?.code ?? ''} ${errorEvent?.message ?? ''}`.trim()), () => this.restartWatch());
        } else {
          void this.restartWatch(); // the server ended the watch (timeoutSeconds): resume at once
        }
      },
      { latestOnly: true }, // the cache keeps each object's latest state: superseded events go unparsed
    );
    if (generation !== this.generation || this.stopped) {
      // Superseded while connecting (a stall restart, a relist, stop()): never leave it open.
      controller.abort();
      return;
    }
    this.controller = controller;
    if (!controller.signal.aborted) {
      // The API answered 200: the watch is established again. The backoff resets only with the first
      // event it delivers: a watch that answers 200 and then an ERROR keeps backing off.
      this._healthy = true;
    }
  }

  private restartWatch(): Promise<void> {
    const generation = ++this.generation;
    return this.watch(generation).catch((err) => this.fail(err, () => this.restartWatch()));
  }

  private apply(type: string, obj: KubeObject): void {
    if (obj?.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
    if (type === 'BOOKMARK') return;
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
    let event: WatchEventType = type;
    if (this.options.keep && !this.options.keep(obj)) {
      if (!this.cache.has(keyOf(obj))) return; // never held: nothing to report
      event = 'DELETED'; // it left what the cache keeps
    }
    if (event === 'DELETED') this.remove(obj);
    else this.put(obj);
    this.handlers.onEvent(this.kind, event, obj);
  }

  private armStallTimer(generation: number): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      if (generation !== this.generation || this.stopped) return;
      this.logger.warn('watch stalled; restarting', { kind: this.kind, afterMs: this.options.stallTimeoutMs });
      const stalled = this.controller;
      this._healthy = false;
      this.handlers.onRestart?.(this.kind, 'stall');
      void this.restartWatch(); // supersedes the stalled watch first, so its abort is not taken for a failure
      stalled?.abort();
    }, this.options.stallTimeoutMs);
    this.stallTimer.unref();
  }

  private fail(err: unknown, retry: () => Promise<void> | void): void {
    if (this.stopped) return;
    this._healthy = false;
    clearTimeout(this.stallTimer);
    const delay = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** this.failures++);
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    this.logger.warn('watch failed; retrying', { kind: this.kind, error: (err as Error)?.message ?? String(err), retryInMs: jittered });
    this.handlers.onRestart?.(this.kind, 'error');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void retry(), jittered);
    this.retryTimer.unref();
  }

  private replaceCache(listed: KubeObject[]): void {
    const keep = this.options.keep;
    const items = keep ? listed.filter(keep) : listed;
    const fresh = new Map(items.map((o) => [keyOf(o), o]));
    // Objects that vanished while the watch was down: report them as deleted.
    for (const [key, old] of this.cache) if (!fresh.has(key)) this.handlers.onEvent(this.kind, 'DELETED', old);
    this.cache.clear();
    this.byNamespace.clear();
    for (const o of items) this.put(o);
  }

  private put(obj: KubeObject): void {
    this.cache.set(keyOf(obj), obj);
    const ns = obj.metadata.namespace ?? '';
    let map = this.byNamespace.get(ns);
    if (!map) this.byNamespace.set(ns, (map = new Map()));
    map.set(obj.metadata.name, obj);
  }

  private remove(obj: KubeObject): void {
    this.cache.delete(keyOf(obj));
    const ns = obj.metadata.namespace ?? '';
    const map = this.byNamespace.get(ns);
    map?.delete(obj.metadata.name);
    if (map && !map.size) this.byNamespace.delete(ns);
  }
}
