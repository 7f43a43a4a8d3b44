import { LabInstanceStatus, type VmStatus } from '../entities/index.js';

/** A lab instance's state as published to subscribers: plain data, detached from any EntityManager. */
export interface InstanceSnapshot {
  id: number;
  labId: number;
  userId: number;
  namespace: string;
  status: LabInstanceStatus;
  statusMessage: string | null;
  vms: VmStatus[];
  createdAt: Date;
  expiresAt: Date | null;
  stoppedAt: Date | null;
  /** When this state was observed. */
  at: Date;
}

export type SnapshotListener = (snapshot: InstanceSnapshot) => void;

/**
 * In-process fan-out of instance state changes. Every replica publishes what it observes itself
 * (from its own watches and its own writes), so no cross-process bus is needed.
 */
export class InstanceEvents {
  private readonly all = new Set<SnapshotListener>();
  private readonly byInstance = new Map<number, Set<SnapshotListener>>();

  publish(snapshot: InstanceSnapshot): void {
    for (const l of this.byInstance.get(snapshot.id) ?? []) l(snapshot);
    for (const l of this.all) l(snapshot);
  }

  /** Listens to one instance, or to all when id is undefined; returns the unsubscribe function. */
  listen(id: number | undefined, listener: SnapshotListener): () => void {
    if (id === undefined) {
      this.all.add(listener);
      return () => this.all.delete(listener);
    }
    let set = this.byInstance.get(id);
    if (!set) this.byInstance.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (!set.size) this.byInstance.delete(id);
    };
  }

  listenerCount(): number {
    let n = this.all.size;
    for (const s of this.byInstance.values()) n += s.size;
    return n;
  }
}

export function snapshotOf(instance: {
  id: number;
  lab: { id: number };
  user: { id: number };
  namespace: string;
  status: LabInstanceStatus;
  statusMessage?: string | null;
  vms: VmStatus[];
  createdAt: Date;
  expiresAt?: Date | null;
  stoppedAt?: Date | null;
}): InstanceSnapshot {
  return {
    id: instance.id,
    labId: instance.lab.id,
    userId: instance.user.id,
    namespace: instance.namespace,
    status: instance.status,
    statusMessage: instance.statusMessage ?? null,
    vms: instance.vms.map((vm) => ({ ...vm })),
    createdAt: instance.createdAt,
    expiresAt: instance.expiresAt ?? null,
    stoppedAt: instance.stoppedAt ?? null,
    at: new Date(),
  };
}

export const ACTIVE_STATUSES = [
  LabInstanceStatus.PENDING,
  LabInstanceStatus.STARTING,
  LabInstanceStatus.READY,
  LabInstanceStatus.FAILED,
  LabInstanceStatus.STOPPING,
];
