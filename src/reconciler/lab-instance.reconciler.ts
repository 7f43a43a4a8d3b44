import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import { LabInstance, LabInstanceStatus, type VmStatus } from '../entities/index.js';
import type { Logger } from '../logger.js';
import { ACTIVE_STATUSES, snapshotOf } from '../services/lab-instance.events.js';
import { deriveState } from '../services/lab-instance.state.js';
import { readInstanceRows, writeInstanceStates, type InstanceRow, type StateWrite } from '../services/lab-instance.rows.js';
import type { LabInstanceDeps } from '../services/lab-instance.service.js';
import { Informer, type KubeObject, type WatchedKind } from '../k8s/informer.js';
import { ADOPTED_AT, LABEL, anyDeploymentSelector, instanceIdOf, managedSelector, ownOrUnadopted } from '../k8s/templates/labels.js';

const KINDS: WatchedKind[] = ['namespaces', 'pods', 'virtualmachineinstances'];

/** A flush waits until no event has arrived for this long... */
const SETTLE_QUIET_MS = 10;
/** ...but no longer than this after the first event it will handle. */
const SETTLE_MAX_MS = 100;

/** Longer than any watch lag: a namespace missing from the cache for an instance this old is gone. */
const ABSENCE_GRACE_MS = 60_000;


const VM_FIELDS = ['name', 'phase', 'ready', 'podReady', 'reason', 'podName', 'nodeName', 'message'] as const;

/** Field by field: PostgreSQL's jsonb gives the keys back in its own order, so JSON text would always differ. */
function sameVms(a: VmStatus[], b: VmStatus[]): boolean {
  return a.length === b.length && a.every((vm, i) => VM_FIELDS.every((f) => (vm[f] ?? null) === (b[i][f] ?? null)));
}

/**
 * Keeps every lab instance's status and VMs in line with the cluster (kubebuilder's reconcile
 * loop): one informer per kind feeds a set of dirty instance ids; each is re-derived from the caches,
 * written only when it changed (a conditional update, so replicas agree), then published.
 */
export class Reconciler {
  readonly informers: Record<WatchedKind, Informer>;
  private readonly dirty = new Set<number>();
  private flushing: Promise<void> | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private firstTouch: number | undefined;
  private lastTouch: number | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** What this replica last published per instance, so that subscribers here see every change once. */
  private readonly published = new Map<number, string>();
  private stopped = false;
  private readonly engine: 'sqlite' | 'postgres';
  /** Namespaces whose deletion this replica watched (or found missing on a relist). */
  private readonly goneNamespaces = new Set<string>();

  /** The services' dependencies with this reconciler in them, for the stops it makes itself. */
  private readonly deps: LabInstanceDeps;

  constructor(
    private readonly orm: Orm,
    deps: Omit<LabInstanceDeps, 'reconciler'>,
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    this.deps = { ...deps, reconciler: this };
    this.engine = config.database.engine;
    const k = config.kubernetes;
    const options = {
      labelSelector: managedSelector(config.deploymentId),
      requestTimeoutMs: k.requestTimeoutMs,
      stallTimeoutMs: k.watchStallMs,
      watchTimeoutSeconds: 300,
      backoffMinMs: 200,
      backoffMaxMs: k.watchBackoffMaxMs,
    };
    const handlers = {
      onEvent: (kind: WatchedKind, type: string, obj: KubeObject) => {
        if (kind === 'namespaces') {
          if (type === 'DELETED') this.goneNamespaces.add(obj.metadata.name);
          else this.goneNamespaces.delete(obj.metadata.name);
        }
        this.markObject(obj);
      },
      onSynced: (kind: WatchedKind) => {
        this.deps.metrics?.watchRelists.inc({ kind });
        this.resyncSoon();
      },
      onRestart: (kind: WatchedKind, cause: 'error' | 'stall') => this.deps.metrics?.watchRestarts.inc({ kind, cause }),
    };
    // Namespaces: every managed one is watched, and those of other deployments dropped as they arrive,
    // so that an older server's (no deployment label) is seen, and its adoption is one MODIFIED event.
    const namespaceOptions = {
      ...options,
      labelSelector: anyDeploymentSelector(),
      keep: (obj: KubeObject) => ownOrUnadopted(obj.metadata.labels, config.deploymentId),
    };
    const kc = deps.kube.kubeConfig;
    const optionsOf = (kind: WatchedKind) => (kind === 'namespaces' ? namespaceOptions : options);
    this.informers = Object.fromEntries(KINDS.map((kind) => [kind, new Informer(kind, kc, optionsOf(kind), handlers, logger)])) as Record<
      WatchedKind,
      Informer
    >;
  }

  /** Every kind listed at least once and no watch failing. */
  get healthy(): boolean {
    return KINDS.every((k) => this.informers[k].healthy);
  }

  get synced(): boolean {
    return KINDS.every((k) => this.informers[k].synced);
  }

  start(): void {
    for (const kind of KINDS) this.informers[kind].start();
    const tick = () => {
      this.resyncTimer = setTimeout(() => {
        this.resyncSoon();
        if (!this.stopped) tick();
      }, this.config.kubernetes.resyncMs);
      this.resyncTimer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.resyncTimer);
    clearTimeout(this.settleTimer);
    for (const kind of KINDS) this.informers[kind].stop();
    await this.flushing;
  }

  /** Re-derives one instance soon (after startLab or stopLabInstance on this replica). */
  touch(id: number): void {
    this.dirty.add(id);
    this.schedule();
  }

  private markObject(obj: KubeObject): void {
    const id = instanceIdOf(obj.metadata.labels);
    if (id !== undefined) this.touch(id);
  }

  private resyncSoon(): void {
    if (this.stopped || !this.synced) return;
    void this.resync().catch((err) => this.logger.error('resync failed', { error: err }));
  }

  /**
   * Flushes once the events have settled: after SETTLE_QUIET_MS without a new one, or SETTLE_MAX_MS after
   * the first unflushed one. A burst (hundreds of pods turning Ready, read from the watches over tens of
   * milliseconds) is then derived, written and published in one pass, each instance once, rather than
   * in many passes that each publish half-updated instances to every subscriber.
   */
  private schedule(): void {
    if (this.stopped) return;
    const now = performance.now();
    this.lastTouch = now;
    this.firstTouch ??= now;
    if (!this.settleTimer) this.settleTimer = setTimeout(() => this.settled(), SETTLE_QUIET_MS);
  }

  private settled(): void {
    this.settleTimer = undefined;
    if (this.stopped) return;
    const now = performance.now();
    const quietFor = now - (this.lastTouch ?? now);
    if (quietFor < SETTLE_QUIET_MS && now - (this.firstTouch ?? now) < SETTLE_MAX_MS) {
      this.settleTimer = setTimeout(() => this.settled(), SETTLE_QUIET_MS - quietFor);
      return;
    }
    if (this.flushing) return; // the running flush settles again when it ends
    this.firstTouch = undefined;
    this.flushing = this.flush()
      .catch((err) => this.logger.error('reconcile failed', { error: err }))
      .finally(() => {
        this.flushing = undefined;
        if (this.dirty.size && this.synced) this.schedule(); // what arrived during the flush
      });
  }

  private async flush(): Promise<void> {
    if (!this.synced || !this.dirty.size) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    const started = performance.now();
    const em = this.orm.em.fork();
    const rows = await readInstanceRows(em, ids);
    await this.reconcile(em, rows);
    this.deps.metrics?.reconcileSeconds.observe((performance.now() - started) / 1000);
  }

  /** All active instances: catches what events alone cannot (other replicas' writes, a namespace gone while down). */
  private async resync(): Promise<void> {
    const em = this.orm.em.fork();
    const rows: Array<Pick<LabInstance, 'id'>> = await (em as unknown as SqlEntityManager)
      .createQueryBuilder(LabInstance)
      .select(['id'])
      .where({ status: { $in: ACTIVE_STATUSES } })
      .execute('all', true);
    for (const row of rows) this.dirty.add(row.id);
    this.schedule();
  }

  /** The namespaces of this deployment in the watch cache (for the leader's garbage collection). */
  namespaces(): KubeObject[] {
    return [...this.informers.namespaces.all()].filter((ns) => ns.metadata.labels?.[LABEL.deployment] === this.config.deploymentId);
  }

  /** The managed namespaces of no deployment (an older server's) in the watch cache, for the leader's adoption. */
  unadoptedNamespaces(): KubeObject[] {
    return [...this.informers.namespaces.all()].filter((ns) => ns.metadata.labels?.[LABEL.deployment] === undefined);
  }

  /**
   * Derives every row's state, then writes the changed ones in batches of STATUS_WRITE_BATCH, all sent at
   * once (each row written only if its status is still what was read), and publishes each batch as
   * soon as it is written: a burst of hundreds of instances is a few statements, and the database
   * writes the later batches while the first ones are fanned out to their subscribers.
   */
  private async reconcile(em: EntityManager, rows: InstanceRow[]): Promise<void> {
    const changed: Array<{ row: InstanceRow; write: StateWrite }> = [];
    for (const row of rows) {
      const write = this.derive(row);
      if (write) changed.push({ row, write });
      else this.publishIfNew(row);
    }
    const batches: Array<typeof changed> = [];
    const size = this.config.kubernetes.writeBatch;
    for (let i = 0; i < changed.length; i += size) batches.push(changed.slice(i, i + size));
    const results = batches.map((batch) =>
      writeInstanceStates(em, this.engine, batch.map((c) => c.write)).then(
        (written) => ({ batch, written }),
        (error: unknown) => ({ batch, error }),
      ),
    );
    let failure: unknown;
    for (const result of results) {
      const outcome = await result;
      if ('error' in outcome) {
        failure ??= outcome.error;
        continue;
      }
      for (const { row, write } of outcome.batch) {
        if (!outcome.written.has(row.id)) {
          this.touch(row.id); // someone else wrote first (another replica or a mutation): read again
          continue;
        }
        this.observeTransition(row, write);
        Object.assign(row, { status: write.status, statusMessage: write.statusMessage, vms: write.vms, updatedAt: write.updatedAt, stoppedAt: write.stoppedAt });
        this.publishIfNew(row);
      }
    }
    if (failure) throw failure;
  }

  /** The write that brings the row in line with the watch caches, or undefined when it already is. */
  private derive(row: InstanceRow): StateWrite | undefined {
    const ns = row.namespace || undefined;
    const namespace = ns ? this.informers.namespaces.get(undefined, ns) : undefined;
    if (namespace && this.awaitingAdoption(row, namespace)) return undefined;
    this.collectGarbage(row, namespace);
    const derived = deriveState({
      status: row.status,
      statusMessage: row.statusMessage ?? null,
      vmNames: row.vms.map((vm) => vm.name),
      namespace,
      namespaceGone: !ns || this.goneNamespaces.has(ns) || Date.now() - row.updatedAt.getTime() > ABSENCE_GRACE_MS,
      vmis: (name) => (ns ? this.informers.virtualmachineinstances.get(ns, name) : undefined),
      pods: ns ? this.informers.pods.inNamespace(ns) : [],
      startDeadline: {
        at: row.createdAt.getTime() + this.config.kubernetes.startTimeoutMs,
        seconds: this.config.kubernetes.startTimeoutMs / 1000,
        now: Date.now(),
      },
    });
    const vms = derived.vms.length ? derived.vms : row.vms;
    const changed = derived.status !== row.status || derived.statusMessage !== (row.statusMessage ?? null) || !sameVms(vms, row.vms);
    if (!changed) return undefined;
    const now = new Date();
    return {
      id: row.id,
      expectedStatus: row.status,
      status: derived.status,
      statusMessage: derived.statusMessage,
      vms,
      // When the status last changed: the leader's recovery times PENDING and STOPPING from it.
      updatedAt: derived.status !== row.status ? now : row.updatedAt,
      stoppedAt: derived.status === LabInstanceStatus.STOPPED ? (row.stoppedAt ?? now) : (row.stoppedAt ?? null),
    };
  }

  /**
   * An older server's namespace is held as it is, neither derived nor collected: while it carries no
   * deployment label (its VMIs are not watched yet; the leader adopts it), and for a while after its
   * adoption until every VMI of the instance is seen (the leader labels them first, but the watches
   * deliver in no common order), so that a READY instance never looks half gone.
   */
  private awaitingAdoption(row: InstanceRow, namespace: KubeObject): boolean {
    if (namespace.metadata.labels?.[LABEL.deployment] === undefined) return true;
    const adoptedAt = Date.parse(namespace.metadata.annotations?.[ADOPTED_AT] ?? '');
    if (!(Date.now() - adoptedAt < ABSENCE_GRACE_MS)) return false;
    return row.vms.some((vm) => !this.informers.virtualmachineinstances.get(namespace.metadata.name, vm.name));
  }

  /**
   * A namespace that should not exist any more (its instance is STOPPED, or its start failed and the
   * rollback's delete did not get through) is deleted again.
   */
  private collectGarbage(row: InstanceRow, namespace: KubeObject | undefined): void {
    if (!namespace || namespace.metadata.deletionTimestamp || namespace.status?.phase === 'Terminating') return;
    const failedStart = row.status === LabInstanceStatus.FAILED && row.statusMessage?.startsWith('Start failed');
    if (row.status !== LabInstanceStatus.STOPPED && !failedStart) return;
    const reason = row.status === LabInstanceStatus.STOPPED ? 'its instance is STOPPED' : 'its start failed and the rollback could not delete it';
    this.logger.info('deleting namespace', { namespace: row.namespace, instanceId: row.id, reason });
    void this.deps.kube.deleteNamespace(row.namespace).catch((err) =>
      this.logger.warn('could not delete a leftover namespace; will retry', { namespace: row.namespace, error: (err as Error).message }),
    );
  }

  /** This replica wrote the transition (conditionally), so it alone counts it. */
  private observeTransition(row: InstanceRow, write: StateWrite): void {
    const metrics = this.deps.metrics;
    if (!metrics || write.status === write.expectedStatus) return;
    if (write.status === LabInstanceStatus.READY && write.expectedStatus === LabInstanceStatus.STARTING) {
      metrics.instanceStartSeconds.observe((write.updatedAt.getTime() - row.createdAt.getTime()) / 1000);
    } else if (write.status === LabInstanceStatus.FAILED) {
      metrics.startFailures.inc({ reason: write.statusMessage?.startsWith('Did not start within') ? 'start_timeout' : 'vm_failed' });
    }
  }

  private publishIfNew(row: InstanceRow): void {
    const vms = row.vms.map((vm) => VM_FIELDS.map((f) => vm[f] ?? null));
    // expiresAt too: an extension made on another replica reaches this one's subscribers at the next resync.
    const signature = JSON.stringify([row.status, row.statusMessage ?? null, vms, row.expiresAt?.getTime() ?? null]);
    if (this.published.get(row.id) === signature) return;
    this.published.set(row.id, signature);
    if (row.status === LabInstanceStatus.STOPPED) {
      this.published.delete(row.id);
      this.goneNamespaces.delete(row.namespace);
    }
    this.deps.events.publish(snapshotOf(row));
  }
}
