import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import type { Config, CrashStep } from '../config.js';
import { Image, Lab, LabInstance, LabInstanceStatus, LabVm, User, VmPhase } from '../entities/index.js';
import { AppError, badInput, conflict, kubernetesError, notFound } from '../errors.js';
import { paginate, type Connection, type PageArgs } from './pagination.js';
import type { KubeClient } from '../k8s/client.js';
import { buildNamespace, buildNetworkPolicy, buildVirtualMachineInstance, type InstanceSpec } from '../k8s/templates/instance.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { parseId } from './ids.js';
import { snapshotOf, type InstanceEvents } from './lab-instance.events.js';
import { transition } from './lab-instance.rows.js';
import { Quotas, type QuotaReport } from './lab-instance.quota.js';
import { memoryBytes } from './rules.js';
import { lockInstances } from '../db.js';
import { issueVncAccess, type VncAccessData } from './lab-instance.vnc.js';

export interface InstanceFilter {
  labId?: string | null;
  userId?: string | null;
  status?: LabInstanceStatus[] | null;
}

/** What the services need of the live-status reconciler. */
export interface InstanceTouch {
  touch(id: number): void;
}

export interface LabInstanceDeps {
  config: Config;
  kube: KubeClient;
  events: InstanceEvents;
  logger: Logger;
  /** Re-derives an instance from the cluster soon (the live-status reconciler). */
  reconciler: InstanceTouch;
  /** Prometheus metrics (start failures); absent in unit set-ups. */
  metrics?: Metrics;
  /** Checks the quotas inside startLab's transaction, and reports usage; none: no limits. */
  quotas?: Quotas;
  /**
   * Test-only (TEST_CRASH_AT): called at each step of startLab, so that a test can kill the process
   * there; undefined in production.
   */
  crashPoint?: (step: CrashStep) => void;
}

export type { CrashStep };

/** What startLab asks of the quotas, inside its transaction (under the instances lock). */
export interface QuotaCheck {
  check(tx: EntityManager, viewer: User, lab: Lab, demand: { cpuCores: number; memoryBytes: number }): Promise<void>;
}

/** Starting, stopping and reading lab instances; the cluster is reached only through KubeClient. */
export class LabInstanceService {
  constructor(
    private readonly em: EntityManager,
    private readonly deps: LabInstanceDeps,
  ) {}

  /** The instance if the viewer may see it (owner or admin); NOT_FOUND otherwise, as for a missing one. */
  getVisible(viewer: User, id: string, field = 'id'): Promise<LabInstance> {
    return findVisibleInstance(this.em, viewer, id, field);
  }

  async list(viewer: User, args: PageArgs & { filter?: InstanceFilter | null }): Promise<Connection<LabInstance>> {
    const f = args.filter ?? {};
    const where: FilterQuery<LabInstance>[] = [];
    if (!viewer.isAdmin) where.push({ user: viewer.id });
    if (f.userId) where.push({ user: parseId(f.userId, 'filter.userId') });
    if (f.labId) where.push({ lab: parseId(f.labId, 'filter.labId') });
    if (f.status?.length) where.push({ status: { $in: f.status } });
    const max = this.deps.config.graphql.maxPageSize;
    return paginate(this.em, LabInstance, where.length ? { $and: where } : {}, args, max, { sort: { field: 'id', direction: 'desc' } });
  }

  /**
   * Records the instance, then creates its namespace, network policy and VMIs. All or nothing: on
   * any failure what was created is deleted again, the instance is FAILED and KUBERNETES_ERROR is thrown.
   * A stop (or the leader's recovery) that came while the objects were being created wins: the
   * instance is not moved to STARTING over it, what was created is deleted, and the answer is CONFLICT.
   */
  async start(viewer: User, labId: string): Promise<{ instance: LabInstance; vnc: VncAccessData }> {
    const id = parseId(labId, 'labId');
    const vms = await this.em.find(LabVm, { lab: id }, { orderBy: { id: 'asc' }, populate: ['image'] });
    const instance = await this.record(viewer, id, vms);
    const lab = instance.lab.getEntity();
    const spec = this.specOf(instance, lab, vms);
    this.deps.crashPoint?.('after-row');
    try {
      await this.createObjects(spec);
    } catch (err) {
      await this.rollBack(instance, err);
      throw (await this.stoppedMeanwhile(instance)) ?? kubernetesError(`Could not start the lab: ${(err as Error).message}`);
    }
    if (!(await transition(this.em, instance.id, [LabInstanceStatus.PENDING], LabInstanceStatus.STARTING))) {
      await this.deleteCreated(instance, 'stopped while it was starting');
      throw (await this.stoppedMeanwhile(instance)) ?? conflict('The instance changed while it was starting');
    }
    await this.em.refresh(instance);
    this.deps.events.publish(snapshotOf(instance));
    this.deps.reconciler.touch(instance.id);
    return { instance, vnc: await this.vncFor(viewer, instance) };
  }

  /** Deletes the namespace; idempotent, and a namespace already gone is not an error. */
  async stop(viewer: User, id: string): Promise<LabInstance> {
    const instance = await this.getVisible(viewer, id);
    if (instance.status === LabInstanceStatus.STOPPED) return instance;
    await stopInstance(this.em, this.deps, instance);
    return instance;
  }

  /**
   * Moves expiresAt later by `minutes` (the owner or an admin), never past createdAt + the lab's
   * maxInstanceLifetimeMinutes (null: its instanceLifetimeMinutes, so no extension). CONFLICT for a
   * stopped or stopping instance, one without a lifetime, or one already at its maximum. Written
   * conditionally on the expiresAt and status read, so two extensions at once never lose one.
   */
  async extend(viewer: User, id: string, minutes: number): Promise<LabInstance> {
    const max = this.deps.config.lifecycle.maxExtensionMinutes;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > (max || 525_600)) {
      throw badInput('minutes', `minutes must be an integer from 1 to ${max || 525_600}`);
    }
    const instance = await this.getVisible(viewer, id);
    if (!EXTENDABLE.includes(instance.status)) throw conflict(`The instance is ${instance.status}; only a running instance can be extended`);
    if (!instance.expiresAt) throw conflict('The instance has no lifetime limit: there is nothing to extend');
    const lab = await this.em.findOneOrFail(Lab, instance.lab.id);
    const maxMinutes = lab.maxInstanceLifetimeMinutes ?? lab.instanceLifetimeMinutes;
    const cap = maxMinutes ? instance.createdAt.getTime() + maxMinutes * 60_000 : Infinity;
    const from = instance.expiresAt;
    const next = new Date(Math.min(from.getTime() + minutes * 60_000, cap));
    if (next.getTime() <= from.getTime()) {
      throw conflict(`The instance already lives as long as this lab allows (${maxMinutes} minutes in all)`, 'minutes');
    }
    const written = await this.em.nativeUpdate(LabInstance, { id: instance.id, status: { $in: EXTENDABLE }, expiresAt: from }, { expiresAt: next });
    if (!written) throw conflict('The instance changed meanwhile; try again');
    await this.em.refresh(instance);
    this.deps.events.publish(snapshotOf(instance));
    this.deps.reconciler.touch(instance.id);
    return instance;
  }

  /** The user's instance usage and limits; the user themselves or an admin (others NOT_FOUND). */
  async quotaReport(viewer: User, user: User): Promise<QuotaReport> {
    if (!viewer.isAdmin && viewer.id !== user.id) throw notFound('User', user.id);
    const quotas = this.deps.quotas ?? new Quotas({ perUser: 0, perLab: 0, total: 0, cpuCores: 0, memoryBytes: 0 });
    return quotas.report(this.em, user);
  }

  async renewVnc(viewer: User, id: string): Promise<VncAccessData> {
    const instance = await this.getVisible(viewer, id, 'labInstanceId');
    if (instance.status === LabInstanceStatus.STOPPED || instance.status === LabInstanceStatus.STOPPING) {
      throw conflict('The instance is stopped; start the lab again');
    }
    return this.vncFor(viewer, instance);
  }

  private vncFor(viewer: User, instance: LabInstance): Promise<VncAccessData> {
    return issueVncAccess(this.deps.config.vnc, {
      userId: viewer.id,
      labId: instance.lab.id,
      instanceId: instance.id,
      namespace: instance.namespace,
      vmNames: instance.vms.map((vm) => vm.name),
    });
  }

  /**
   * Inserts the PENDING row, namespace name included, in one transaction that holds the instances
   * lock (see lockInstances): a lab being deleted at the same moment either sees this instance and
   * refuses, or is gone before it is read here (NOT_FOUND). Quotas are counted under the same lock.
   */
  private async record(viewer: User, labId: number, vms: LabVm[]): Promise<LabInstance> {
    const id = await this.em.transactional(async (tx) => {
      await lockInstances(tx);
      const lab = await tx.findOne(Lab, { id: labId, deletedAt: null });
      if (!lab) throw notFound('Lab', labId);
      if (!vms.length) throw badInput('labId', 'This lab has no VMs to start');
      const images = vms.map((vm) => vm.image.getEntity() as Image);
      const demand = { cpuCores: images.reduce((n, i) => n + i.cpuCores, 0), memoryBytes: images.reduce((n, i) => n + memoryBytes(i.memory), 0) };
      await this.deps.quotas?.check(tx, viewer, lab, demand);
      const now = new Date();
      const instance = tx.create(LabInstance, {
        lab,
        user: viewer.id,
        status: LabInstanceStatus.PENDING,
        vms: vms.map((vm) => ({ name: vm.name, phase: VmPhase.PENDING, ready: false })),
        createdAt: now,
        updatedAt: now,
        expiresAt: lab.instanceLifetimeMinutes ? new Date(now.getTime() + lab.instanceLifetimeMinutes * 60_000) : null,
        ...demand,
      } as unknown as LabInstance);
      await tx.flush();
      // The name needs the id, and is stored: later changes of the prefix never change it.
      instance.namespace = `${lab.namespacePrefix}-${viewer.id}-${instance.id}`;
      await tx.flush();
      return instance.id;
    });
    const instance = await this.em.findOneOrFail(LabInstance, id, { populate: ['lab'] });
    this.deps.events.publish(snapshotOf(instance));
    return instance;
  }

  private specOf(instance: LabInstance, lab: Lab, vms: LabVm[]): InstanceSpec {
    return {
      instanceId: instance.id,
      deploymentId: this.deps.config.deploymentId,
      labId: lab.id,
      userId: instance.user.id,
      namespace: instance.namespace,
      vms: vms.map((vm) => {
        const image = vm.image.getEntity() as Image;
        return { name: vm.name, image: image.url, cpuCores: image.cpuCores, memory: image.memory };
      }),
    };
  }

  /** Namespace first, then the network policy and the VMIs in parallel (TEST_CRASH_AT can stop the process in between). */
  private async createObjects(spec: InstanceSpec): Promise<void> {
    const kube = this.deps.kube;
    await kube.createNamespace(buildNamespace(spec));
    this.deps.crashPoint?.('after-namespace');
    let created = 0;
    const results = await Promise.allSettled([
      kube.createNetworkPolicy(spec.namespace, buildNetworkPolicy(spec)),
      ...spec.vms.map(async (vm) => {
        await kube.createVirtualMachineInstance(spec.namespace, buildVirtualMachineInstance(spec, vm));
        if (++created === 1) this.deps.crashPoint?.('between-vmis');
      }),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** A failed start: the namespace is deleted and the instance FAILED, unless a stop moved it on first. */
  private async rollBack(instance: LabInstance, cause: unknown): Promise<void> {
    const message = (cause as Error).message;
    this.deps.logger.warn('lab start failed; rolling back', { instanceId: instance.id, namespace: instance.namespace, error: message });
    await this.deleteCreated(instance, 'its start failed');
    if (await transition(this.em, instance.id, [LabInstanceStatus.PENDING], LabInstanceStatus.FAILED, { statusMessage: `Start failed: ${message}` })) {
      this.deps.metrics?.startFailures.inc({ reason: 'kubernetes_error' });
    }
    await this.em.refresh(instance);
    this.deps.events.publish(snapshotOf(instance));
  }

  private async deleteCreated(instance: LabInstance, reason: string): Promise<void> {
    try {
      this.deps.logger.info('deleting namespace', { namespace: instance.namespace, instanceId: instance.id, reason });
      await this.deps.kube.deleteNamespace(instance.namespace);
    } catch (err) {
      // The reconciler deletes namespaces of FAILED and STOPPED instances it still finds; the leader's GC the rest.
      this.deps.logger.error('could not delete the namespace', { namespace: instance.namespace, error: (err as Error).message });
    }
  }

  /** CONFLICT when a stop (or the leader's recovery) moved the instance on while it was starting. */
  private async stoppedMeanwhile(instance: LabInstance): Promise<AppError | undefined> {
    await this.em.refresh(instance);
    if (instance.status === LabInstanceStatus.PENDING || (instance.status === LabInstanceStatus.FAILED && instance.statusMessage?.startsWith('Start failed'))) {
      return undefined;
    }
    this.deps.events.publish(snapshotOf(instance));
    return conflict(`The instance was stopped while it was starting (now ${instance.status})`);
  }
}

/** See LabInstanceService.getVisible; usable with any EntityManager (subscriptions read through a fresh one). */
export async function findVisibleInstance(em: EntityManager, viewer: User, id: string, field = 'id'): Promise<LabInstance> {
  const instance = await em.findOne(LabInstance, { id: parseId(id, field) });
  if (!instance || (!viewer.isAdmin && instance.user.id !== viewer.id)) throw notFound('LabInstance', id);
  return instance;
}

/**
 * Stops one instance: marks it STOPPING first (from any status but STOPPED, in one conditional update,
 * so a start still creating objects sees it and gives up), then deletes its namespace; STOPPED at once
 * when the namespace is already gone or was never made. Shared by stopLabInstance and the expiry sweep.
 * A delete that fails leaves the instance STOPPING: the leader's recovery deletes it again later.
 */
export async function stopInstance(em: EntityManager, deps: LabInstanceDeps, instance: LabInstance, statusMessage?: string): Promise<void> {
  const set = statusMessage ? { statusMessage } : {};
  const stopping = await transition(em, instance.id, STOPPABLE, LabInstanceStatus.STOPPING, set);
  if (stopping) {
    deps.crashPoint?.('stop-after-mark');
    let existed = false;
    try {
      if (instance.namespace) existed = await deps.kube.deleteNamespace(instance.namespace);
    } catch (err) {
      await em.refresh(instance);
      deps.events.publish(snapshotOf(instance));
      throw new AppError(`Could not stop the lab: ${(err as Error).message}`, 'KUBERNETES_ERROR');
    }
    if (!existed) {
      const vms = instance.vms.map((vm) => ({ ...vm, ready: false }));
      await transition(em, instance.id, [LabInstanceStatus.STOPPING], LabInstanceStatus.STOPPED, { stoppedAt: new Date(), vms });
    }
  }
  await em.refresh(instance);
  deps.events.publish(snapshotOf(instance));
  deps.reconciler.touch(instance.id);
}

/** Statuses in which a lifetime may be extended. */
const EXTENDABLE = [LabInstanceStatus.PENDING, LabInstanceStatus.STARTING, LabInstanceStatus.READY, LabInstanceStatus.FAILED];

/** Every status a stop may start from. */
const STOPPABLE = [LabInstanceStatus.PENDING, LabInstanceStatus.STARTING, LabInstanceStatus.READY, LabInstanceStatus.FAILED, LabInstanceStatus.STOPPING];
