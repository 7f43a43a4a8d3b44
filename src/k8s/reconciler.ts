import type { EntityManager } from '@mikro-orm/core';
import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import { LabInstance, LabInstanceStatus } from '../entities/index.js';
import type { Logger } from '../logger.js';
import { ACTIVE_STATUSES, snapshotOf, type InstanceEvents } from '../services/instance-events.js';
import { deriveState } from '../services/instance-state.js';
import { stopInstance, type LabInstanceDeps } from '../services/lab-instance.service.js';
import { Informer, type KubeObject, type WatchedKind } from './informer.js';
import { instanceIdOf, MANAGED_SELECTOR } from './templates/labels.js';

const KINDS: WatchedKind[] = ['namespaces', 'pods', 'virtualmachineinstances'];

/** Longer than any watch lag: a namespace missing from the cache for an instance this old is gone. */
const ABSENCE_GRACE_MS = 60_000;

/** Conditional updates sent at once while reconciling a batch. */
const WRITE_CONCURRENCY = 8;

/**
 * Keeps every lab instance's status and VMs in line with the cluster (kubebuilder's reconcile
 * loop): one informer per kind feeds a set of dirty instance ids; each is re-derived from the caches,
 * written only when it changed (a conditional update, so replicas agree), then published.
 */
export class Reconciler {
  readonly informers: Record<WatchedKind, Informer>;
  private readonly dirty = new Set<number>();
  private flushing: Promise<void> | undefined;
  private scheduled = false;
  private resyncTimer: NodeJS.Timeout | undefined;
  /** What this replica last published per instance, so that subscribers here see every change once. */
  private readonly published = new Map<number, string>();
  private stopped = false;
  /** Namespaces whose deletion this replica watched (or found missing on a relist). */
  private readonly goneNamespaces = new Set<string>();

  constructor(
    private readonly orm: Orm,
    private readonly deps: LabInstanceDeps,
    private readonly config: Config,
    private readonly logger: Logger,
  ) {
    const k = config.kubernetes;
    const options = {
      labelSelector: MANAGED_SELECTOR,
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
      onSynced: () => this.resyncSoon(),
    };
    const kc = deps.kube.kubeConfig;
    this.informers = Object.fromEntries(KINDS.map((kind) => [kind, new Informer(kind, kc, options, handlers, logger)])) as Record<
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

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.flushing) {
        void this.flushing.then(() => this.schedule());
        return;
      }
      this.flushing = this.flush()
        .catch((err) => this.logger.error('reconcile failed', { error: err }))
        .finally(() => (this.flushing = undefined));
    });
  }

  private async flush(): Promise<void> {
    if (!this.synced || !this.dirty.size) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    const em = this.orm.em.fork();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await em.find(LabInstance, { id: { $in: ids.slice(i, i + 500) } });
      // Several writes in flight at once (the pool has several connections): a burst of hundreds of
      // instances is not hundreds of round trips one after the other.
      for (let j = 0; j < rows.length; j += WRITE_CONCURRENCY) {
        await Promise.all(rows.slice(j, j + WRITE_CONCURRENCY).map((row) => this.reconcile(em, row)));
      }
    }
  }

  /** All active instances: catches what events alone cannot (other replicas' writes, expiry). */
  private async resync(): Promise<void> {
    const em = this.orm.em.fork();
    const rows = await em.find(LabInstance, { status: { $in: ACTIVE_STATUSES } });
    const now = Date.now();
    for (const row of rows) {
      if (row.expiresAt && row.expiresAt.getTime() <= now && row.status !== LabInstanceStatus.PENDING && row.status !== LabInstanceStatus.STOPPING) {
        await this.expire(em, row);
      } else {
        this.dirty.add(row.id);
      }
    }
    this.schedule();
  }

  private async expire(em: EntityManager, row: LabInstance): Promise<void> {
    this.logger.info('instance lifetime over; stopping', { instanceId: row.id, namespace: row.namespace });
    row.statusMessage = 'Stopped automatically: the lab instance lifetime is over';
    try {
      await stopInstance(em, this.deps, row);
    } catch (err) {
      this.logger.warn('could not stop an expired instance; will retry', { instanceId: row.id, error: (err as Error).message });
    }
  }

  private async reconcile(em: EntityManager, row: LabInstance): Promise<void> {
    const ns = row.namespace || undefined;
    this.collectGarbage(row, ns ? this.informers.namespaces.get(undefined, ns) : undefined);
    const derived = deriveState({
      status: row.status,
      statusMessage: row.statusMessage ?? null,
      vmNames: row.vms.map((vm) => vm.name),
      namespace: ns ? this.informers.namespaces.get(undefined, ns) : undefined,
      namespaceGone: !ns || this.goneNamespaces.has(ns) || Date.now() - row.updatedAt.getTime() > ABSENCE_GRACE_MS,
      vmis: (name) => (ns ? this.informers.virtualmachineinstances.get(ns, name) : undefined),
      pods: ns ? this.informers.pods.inNamespace(ns) : [],
    });
    const vms = derived.vms.length ? derived.vms : row.vms;
    const changed =
      derived.status !== row.status || derived.statusMessage !== (row.statusMessage ?? null) || JSON.stringify(vms) !== JSON.stringify(row.vms);
    if (changed) {
      const now = new Date();
      const stoppedAt = derived.status === LabInstanceStatus.STOPPED ? (row.stoppedAt ?? now) : row.stoppedAt;
      const updated = await em.nativeUpdate(
        LabInstance,
        { id: row.id, status: row.status },
        { status: derived.status, statusMessage: derived.statusMessage, vms, updatedAt: now, stoppedAt },
      );
      if (!updated) {
        // Someone else wrote first (another replica or a mutation): read again next round.
        this.touch(row.id);
        return;
      }
      Object.assign(row, { status: derived.status, statusMessage: derived.statusMessage, vms, updatedAt: now, stoppedAt });
    }
    this.publishIfNew(row);
  }

  /**
   * A namespace that should not exist any more (its instance is STOPPED, or its start failed and the
   * rollback's delete did not get through) is deleted again.
   */
  private collectGarbage(row: LabInstance, namespace: KubeObject | undefined): void {
    if (!namespace || namespace.metadata.deletionTimestamp || namespace.status?.phase === 'Terminating') return;
    const failedStart = row.status === LabInstanceStatus.FAILED && row.statusMessage?.startsWith('Start failed');
    if (row.status !== LabInstanceStatus.STOPPED && !failedStart) return;
    this.logger.info('deleting a leftover namespace', { namespace: row.namespace, instanceId: row.id, status: row.status });
    void this.deps.kube.deleteNamespace(row.namespace).catch((err) =>
      this.logger.warn('could not delete a leftover namespace; will retry', { namespace: row.namespace, error: (err as Error).message }),
    );
  }

  private publishIfNew(row: LabInstance): void {
    const signature = JSON.stringify([row.status, row.statusMessage ?? null, row.vms]);
    if (this.published.get(row.id) === signature) return;
    this.published.set(row.id, signature);
    if (row.status === LabInstanceStatus.STOPPED) {
      this.published.delete(row.id);
      this.goneNamespaces.delete(row.namespace);
    }
    this.deps.events.publish(snapshotOf(row));
  }
}
