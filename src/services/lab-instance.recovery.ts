import type { EntityManager } from '@mikro-orm/core';
import { LabInstance, LabInstanceStatus } from '../entities/index.js';
import type { KubeObject } from '../k8s/informer.js';
import { LABEL, instanceIdOf } from '../k8s/templates/labels.js';
import { snapshotOf } from './lab-instance.events.js';
import { readInstanceRows, transition, type InstanceRow } from './lab-instance.rows.js';
import { stopInstance, type LabInstanceDeps } from './lab-instance.service.js';

/**
 * The leader's periodic duties over lab instances, level-based: each pass looks at what the database
 * and the watch caches hold now, so a pass interrupted by a crash is simply done again by the next
 * leader. Every Kubernetes deletion is logged with its reason.
 */

/** The message of an instance whose start was taken over; "Start failed" as for any failed start. */
export const INTERRUPTED_START = 'Start failed: the start did not finish (the replica running it stopped or took too long); rolled back';

const EXPIRABLE = [LabInstanceStatus.PENDING, LabInstanceStatus.STARTING, LabInstanceStatus.READY, LabInstanceStatus.FAILED];

/** Stops every instance whose lifetime is over, in any status but STOPPING and STOPPED. Resolves with how many. */
export async function expireInstances(em: EntityManager, deps: LabInstanceDeps, now = new Date()): Promise<number> {
  const rows = await em.find(LabInstance, { status: { $in: EXPIRABLE }, expiresAt: { $lte: now } });
  for (const row of rows) {
    deps.logger.info('instance lifetime over; stopping', { instanceId: row.id, namespace: row.namespace, reason: 'lifetime over' });
    try {
      await stopInstance(em, deps, row, 'Stopped automatically: the lab instance lifetime is over');
    } catch (err) {
      deps.logger.warn('could not stop an expired instance; will retry', { instanceId: row.id, error: (err as Error).message });
    }
  }
  return rows.length;
}

/**
 * Crash recovery. An instance PENDING for longer than RECOVERY_AFTER_SECONDS (or past its start
 * deadline) had a startLab that will never finish: the replica running it died, or is hopelessly slow.
 * It is rolled back, not finished: moved to FAILED first (a conditional update, so a start still
 * running sees it and gives up, and a stop that came first wins), then its namespace is deleted, with
 * all that was created in it. Rolling back needs nothing but the namespace's name, is correct whatever
 * step the start reached, and never builds VMs from a lab that may have changed since; the user
 * starts again. An instance STOPPING for as long had its delete lost: it is deleted again, and STOPPED
 * once the namespace is gone. Resolves with how many instances were taken over.
 */
export async function recoverInstances(
  em: EntityManager,
  deps: LabInstanceDeps,
  namespaceOf: (name: string) => KubeObject | undefined,
  now = new Date(),
): Promise<number> {
  const { recoveryAfterMs } = deps.config.lifecycle;
  const stale = new Date(now.getTime() - recoveryAfterMs);
  const deadline = new Date(now.getTime() - deps.config.kubernetes.startTimeoutMs);
  const rows = await em.find(LabInstance, {
    $or: [
      { status: LabInstanceStatus.PENDING, $or: [{ updatedAt: { $lte: stale } }, { createdAt: { $lte: deadline } }] },
      { status: LabInstanceStatus.STOPPING, updatedAt: { $lte: stale } },
    ],
  });
  let taken = 0;
  for (const row of rows) {
    try {
      if (row.status === LabInstanceStatus.PENDING) taken += Number(await rollBackStart(em, deps, row));
      else taken += Number(await finishStop(em, deps, row, namespaceOf(row.namespace)));
    } catch (err) {
      deps.logger.warn('recovery of an instance failed; will retry', { instanceId: row.id, error: (err as Error).message });
    }
  }
  return taken;
}

async function rollBackStart(em: EntityManager, deps: LabInstanceDeps, row: LabInstance): Promise<boolean> {
  if (!(await transition(em, row.id, [LabInstanceStatus.PENDING], LabInstanceStatus.FAILED, { statusMessage: INTERRUPTED_START }))) return false;
  deps.logger.warn('taking over an interrupted start: rolled back to FAILED', { instanceId: row.id, namespace: row.namespace });
  deps.metrics?.startFailures.inc({ reason: 'interrupted' });
  if (row.namespace) {
    deps.logger.info('deleting namespace', { namespace: row.namespace, instanceId: row.id, reason: 'its start was interrupted' });
    await deps.kube.deleteNamespace(row.namespace);
  }
  await em.refresh(row);
  deps.events.publish(snapshotOf(row));
  deps.reconciler.touch(row.id);
  return true;
}

async function finishStop(em: EntityManager, deps: LabInstanceDeps, row: LabInstance, namespace: KubeObject | undefined): Promise<boolean> {
  if (namespace?.metadata.deletionTimestamp || namespace?.status?.phase === 'Terminating') return false; // on its way out
  deps.logger.info('deleting namespace', { namespace: row.namespace, instanceId: row.id, reason: 'its stop did not finish' });
  const exists = row.namespace ? await deps.kube.deleteNamespace(row.namespace) : false;
  if (!exists) {
    const vms = row.vms.map((vm) => ({ ...vm, ready: false }));
    await transition(em, row.id, [LabInstanceStatus.STOPPING], LabInstanceStatus.STOPPED, { stoppedAt: new Date(), vms });
    await em.refresh(row);
    deps.events.publish(snapshotOf(row));
  }
  deps.reconciler.touch(row.id);
  return true;
}

/** Why a namespace of this deployment is an orphan, or undefined when an active instance accounts for it. */
export function orphanReason(namespace: KubeObject, row: InstanceRow | undefined): string | undefined {
  const id = instanceIdOf(namespace.metadata.labels);
  if (id === undefined) return 'it carries no instance label';
  if (!row) return `instance ${id} does not exist in this deployment's database`;
  if (row.namespace !== namespace.metadata.name) return `instance ${id} uses namespace ${row.namespace || '(none)'}`;
  if (row.status === LabInstanceStatus.STOPPED) return `instance ${id} is STOPPED`;
  if (row.status === LabInstanceStatus.FAILED && row.statusMessage?.startsWith('Start failed')) return `the start of instance ${id} failed`;
  return undefined;
}

/**
 * Garbage collection: deletes each managed namespace of this deployment (`namespaces` holds only those
 * labelled with it: another deployment's never reach the watch cache, and an older server's unlabelled
 * ones are adopted first, or left alone) that no active instance accounts for, once it is older than
 * GC_GRACE_SECONDS. Resolves with how many deletions were asked.
 */
export async function collectOrphans(em: EntityManager, deps: LabInstanceDeps, namespaces: KubeObject[], now = Date.now()): Promise<number> {
  const grace = deps.config.lifecycle.gcGraceMs;
  const candidates = namespaces.filter((ns) => {
    if (ns.metadata.labels?.[LABEL.deployment] !== deps.config.deploymentId) return false; // never another's, nor an unadopted one
    if (ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating') return false;
    const created = ns.metadata.creationTimestamp ? new Date(ns.metadata.creationTimestamp).getTime() : now;
    return now - created >= grace;
  });
  if (!candidates.length) return 0;
  const ids = candidates.map((ns) => instanceIdOf(ns.metadata.labels)).filter((id): id is number => id !== undefined);
  const rows = new Map((ids.length ? await readInstanceRows(em, ids) : []).map((r) => [r.id, r]));
  let deleted = 0;
  for (const ns of candidates) {
    const id = instanceIdOf(ns.metadata.labels);
    const reason = orphanReason(ns, id === undefined ? undefined : rows.get(id));
    if (!reason) continue;
    deps.logger.warn('deleting namespace', { namespace: ns.metadata.name, instanceId: id, reason: `orphan: ${reason}` });
    try {
      await deps.kube.deleteNamespace(ns.metadata.name);
      deleted++;
    } catch (err) {
      deps.logger.warn('could not delete an orphaned namespace; will retry', { namespace: ns.metadata.name, error: (err as Error).message });
    }
  }
  return deleted;
}
