import type { EntityManager } from '@mikro-orm/core';
import type { Config } from '../config.js';
import type { Lab, User } from '../entities/index.js';
import { quotaExceeded } from '../errors.js';
import type { QuotaCheck } from './lab-instance.service.js';

/** What the instances that are not STOPPED hold: in all, and of one user and one lab. */
export interface Usage {
  instances: number;
  cpuCores: number;
  memoryBytes: number;
  userInstances: number;
  labInstances: number;
}

/** A used amount and its limit (null: no limit). */
export interface Figure {
  used: number;
  limit: number | null;
}

export interface QuotaReport {
  instances: Figure;
  clusterInstances: Figure;
  clusterCpuCores: Figure;
  clusterMemoryBytes: Figure;
}

/**
 * The quotas of startLab: instances per user (MAX_INSTANCES_PER_USER), per lab (the lab's maxInstances,
 * else MAX_INSTANCES_PER_LAB), in total (MAX_INSTANCES), and a total budget of CPU cores and memory
 * (MAX_TOTAL_CPU_CORES, MAX_TOTAL_MEMORY) over every instance that is not STOPPED; FAILED ones count,
 * as they keep their VMs until stopped. Admins are limited only by the totals. 0 means no limit.
 * check() runs inside startLab's transaction, under the instances lock (lockInstances), so that the
 * counting and the insert that follows are one step for every replica: no two starts can both see
 * the last free place.
 */
export class Quotas implements QuotaCheck {
  constructor(
    private readonly limits: Config['quotas'],
    private readonly onRefused?: (quota: string) => void,
  ) {}

  async check(tx: EntityManager, viewer: User, lab: Lab, demand: { cpuCores: number; memoryBytes: number }): Promise<void> {
    const used = await usage(tx, viewer.id, lab.id);
    const perLab = lab.maxInstances ?? this.limits.perLab;
    const refuse = (quota: string, limit: number, inUse: number, what: string) => {
      this.onRefused?.(quota);
      throw quotaExceeded(quota, limit, inUse, `Quota exceeded: ${what} (limit ${limit}, in use ${inUse}); stop an instance first`);
    };
    if (!viewer.isAdmin && this.limits.perUser && used.userInstances + 1 > this.limits.perUser) {
      refuse('instancesPerUser', this.limits.perUser, used.userInstances, 'your running lab instances');
    }
    if (!viewer.isAdmin && perLab && used.labInstances + 1 > perLab) refuse('instancesPerLab', perLab, used.labInstances, 'running instances of this lab');
    if (this.limits.total && used.instances + 1 > this.limits.total) refuse('instances', this.limits.total, used.instances, 'running lab instances in all');
    if (this.limits.cpuCores && used.cpuCores + demand.cpuCores > this.limits.cpuCores) {
      refuse('cpuCores', this.limits.cpuCores, used.cpuCores, `CPU cores of all running instances (this lab needs ${demand.cpuCores})`);
    }
    if (this.limits.memoryBytes && used.memoryBytes + demand.memoryBytes > this.limits.memoryBytes) {
      refuse('memoryBytes', this.limits.memoryBytes, used.memoryBytes, `memory of all running instances in bytes (this lab needs ${demand.memoryBytes})`);
    }
  }

  /** The caller's usage and limits, for `me`. Admins have no limit of their own. */
  async report(em: EntityManager, user: User): Promise<QuotaReport> {
    const used = await usage(em, user.id, 0);
    const limit = (n: number) => (n ? n : null);
    return {
      instances: { used: used.userInstances, limit: user.isAdmin ? null : limit(this.limits.perUser) },
      clusterInstances: { used: used.instances, limit: limit(this.limits.total) },
      clusterCpuCores: { used: used.cpuCores, limit: limit(this.limits.cpuCores) },
      clusterMemoryBytes: { used: used.memoryBytes, limit: limit(this.limits.memoryBytes) },
    };
  }
}

/** One statement over the instances that are not STOPPED (in the transaction, when `em` is one). */
export async function usage(em: EntityManager, userId: number, labId: number): Promise<Usage> {
  const sql =
    'select count(*) as instances, coalesce(sum(cpu_cores), 0) as cpu_cores, coalesce(sum(memory_bytes), 0) as memory_bytes, ' +
    'coalesce(sum(case when user_id = ? then 1 else 0 end), 0) as user_instances, ' +
    'coalesce(sum(case when lab_id = ? then 1 else 0 end), 0) as lab_instances ' +
    "from lab_instances where status <> 'STOPPED'";
  const row = await em.getConnection().execute<Record<string, string | number>>(sql, [userId, labId], 'get', em.getTransactionContext());
  return {
    instances: Number(row.instances),
    cpuCores: Number(row.cpu_cores),
    memoryBytes: Number(row.memory_bytes),
    userInstances: Number(row.user_instances),
    labInstances: Number(row.lab_instances),
  };
}
