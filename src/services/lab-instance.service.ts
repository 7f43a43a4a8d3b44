import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import type { Config } from '../config.js';
import { Image, Lab, LabInstance, LabInstanceStatus, LabVm, User, VmPhase } from '../entities/index.js';
import { AppError, badInput, conflict, kubernetesError, notFound } from '../errors.js';
import { paginate, type Connection, type PageArgs } from './pagination.js';
import type { KubeClient } from '../k8s/client.js';
import { buildNamespace, buildNetworkPolicy, buildVirtualMachineInstance, type InstanceSpec } from '../k8s/templates/instance.js';
import type { Logger } from '../logger.js';
import { parseId } from './ids.js';
import { snapshotOf, type InstanceEvents } from './lab-instance.events.js';
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
   */
  async start(viewer: User, labId: string): Promise<{ instance: LabInstance; vnc: VncAccessData }> {
    const lab = await this.em.findOne(Lab, { id: parseId(labId, 'labId') });
    if (!lab) throw notFound('Lab', labId);
    const vms = await this.em.find(LabVm, { lab: lab.id }, { orderBy: { id: 'asc' }, populate: ['image'] });
    if (!vms.length) throw badInput('labId', 'This lab has no VMs to start');
    const instance = await this.record(viewer, lab, vms.map((vm) => vm.name));
    const spec = this.specOf(instance, lab, vms);
    try {
      await this.createObjects(spec);
    } catch (err) {
      await this.rollBack(instance, err);
      throw kubernetesError(`Could not start the lab: ${(err as Error).message}`);
    }
    instance.status = LabInstanceStatus.STARTING;
    instance.updatedAt = new Date();
    await this.em.flush();
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

  private async record(viewer: User, lab: Lab, vmNames: string[]): Promise<LabInstance> {
    const now = new Date();
    const instance = this.em.create(LabInstance, {
      lab,
      user: viewer,
      status: LabInstanceStatus.PENDING,
      vms: vmNames.map((name) => ({ name, phase: VmPhase.PENDING, ready: false })),
      createdAt: now,
      updatedAt: now,
      expiresAt: lab.instanceLifetimeMinutes ? new Date(now.getTime() + lab.instanceLifetimeMinutes * 60_000) : null,
    } as unknown as LabInstance);
    await this.em.flush();
    // The name needs the id, and is stored: later changes of the prefix never change it.
    instance.namespace = `${lab.namespacePrefix}-${viewer.id}-${instance.id}`;
    await this.em.flush();
    this.deps.events.publish(snapshotOf(instance));
    return instance;
  }

  private specOf(instance: LabInstance, lab: Lab, vms: LabVm[]): InstanceSpec {
    return {
      instanceId: instance.id,
      labId: lab.id,
      userId: instance.user.id,
      namespace: instance.namespace,
      vms: vms.map((vm) => {
        const image = vm.image.getEntity() as Image;
        return { name: vm.name, image: image.url, cpuCores: image.cpuCores, memory: image.memory };
      }),
    };
  }

  private async createObjects(spec: InstanceSpec): Promise<void> {
    const kube = this.deps.kube;
    await kube.createNamespace(buildNamespace(spec));
    const results = await Promise.allSettled([
      kube.createNetworkPolicy(spec.namespace, buildNetworkPolicy(spec)),
      ...spec.vms.map((vm) => kube.createVirtualMachineInstance(spec.namespace, buildVirtualMachineInstance(spec, vm))),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async rollBack(instance: LabInstance, cause: unknown): Promise<void> {
    const message = (cause as Error).message;
    this.deps.logger.warn('lab start failed; rolling back', { instanceId: instance.id, namespace: instance.namespace, error: message });
    try {
      await this.deps.kube.deleteNamespace(instance.namespace);
    } catch (err) {
      // The reconciler deletes namespaces of FAILED instances it still finds.
      this.deps.logger.error('rollback could not delete the namespace', { namespace: instance.namespace, error: (err as Error).message });
    }
    instance.status = LabInstanceStatus.FAILED;
    instance.statusMessage = `Start failed: ${message}`;
    instance.updatedAt = new Date();
    await this.em.flush();
    this.deps.events.publish(snapshotOf(instance));
  }
}

/** See LabInstanceService.getVisible; usable with any EntityManager (subscriptions read through a fresh one). */
export async function findVisibleInstance(em: EntityManager, viewer: User, id: string, field = 'id'): Promise<LabInstance> {
  const instance = await em.findOne(LabInstance, { id: parseId(id, field) });
  if (!instance || (!viewer.isAdmin && instance.user.id !== viewer.id)) throw notFound('LabInstance', id);
  return instance;
}

/**
 * Stops one instance: deletes its namespace and marks it STOPPING (or STOPPED when the namespace
 * is already gone or was never made). Shared by stopLabInstance and the expiry sweep.
 */
export async function stopInstance(em: EntityManager, deps: LabInstanceDeps, instance: LabInstance): Promise<void> {
  let existed = false;
  if (instance.namespace) {
    try {
      existed = await deps.kube.deleteNamespace(instance.namespace);
    } catch (err) {
      throw new AppError(`Could not stop the lab: ${(err as Error).message}`, 'KUBERNETES_ERROR');
    }
  }
  const now = new Date();
  instance.status = existed ? LabInstanceStatus.STOPPING : LabInstanceStatus.STOPPED;
  if (!existed) {
    instance.stoppedAt = now;
    instance.vms = instance.vms.map((vm) => ({ ...vm, ready: false }));
  }
  instance.updatedAt = now;
  await em.flush();
  deps.events.publish(snapshotOf(instance));
  deps.reconciler.touch(instance.id);
}
