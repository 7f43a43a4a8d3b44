import { Arg, Ctx, ID, Resolver, Root, Subscription, type ResolverData } from 'type-graphql';
import { LabInstance, LabInstanceStatus } from '../entities/index.js';
import { requireViewer } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { completesAfterStopped, instanceStream } from '../services/lab-instance.stream.js';
import { snapshotOf, ACTIVE_STATUSES, type InstanceSnapshot } from '../services/lab-instance.events.js';
import { findVisibleInstance } from '../services/lab-instance.service.js';
import { LabInstanceStatusEvent } from './lab-instance.types.js';

/** A LabInstance-shaped object from a snapshot, so that its field resolvers work without a query. */
function toEvent(s: InstanceSnapshot): LabInstanceStatusEvent {
  const labInstance = {
    id: s.id,
    lab: { id: s.labId },
    user: { id: s.userId },
    namespace: s.namespace,
    status: s.status,
    statusMessage: s.statusMessage,
    vms: s.vms,
    createdAt: s.createdAt,
    expiresAt: s.expiresAt,
    stoppedAt: s.stoppedAt,
  } as unknown as LabInstance;
  return { labInstance, status: s.status, vms: s.vms, ready: s.vms.length > 0 && s.vms.every((vm) => vm.ready), expiresAt: s.expiresAt, at: s.at };
}

async function subscribeOne({ args, context }: ResolverData<Context>) {
  const viewer = requireViewer(context);
  // A fresh EntityManager: the connection's own one may hold an older copy of this row.
  const row = await findVisibleInstance(context.em.fork(), viewer, String(args.id));
  return instanceStream(context.events, {
    instanceId: row.id,
    visible: () => true,
    initial: [snapshotOf(row)],
    completeAfter: completesAfterStopped,
    congested: context.congested,
  });
}

async function subscribeAll({ context }: ResolverData<Context>) {
  const viewer = requireViewer(context);
  const where = viewer.isAdmin ? { status: { $in: ACTIVE_STATUSES } } : { status: { $in: ACTIVE_STATUSES }, user: viewer.id };
  const rows = await context.em.fork().find(LabInstance, where, { orderBy: { id: 'asc' } });
  return instanceStream(context.events, {
    visible: (s) => viewer.isAdmin || s.userId === viewer.id,
    initial: rows.map(snapshotOf),
    congested: context.congested,
  });
}

@Resolver()
export class LabInstanceStatusResolver {
  @Subscription(() => LabInstanceStatusEvent, {
    description: 'The owner or an admin. Starts with the current state; ends after STOPPED.',
    subscribe: subscribeOne as never,
  })
  labInstanceStatus(@Root() snapshot: InstanceSnapshot, @Arg('id', () => ID) _id: string): LabInstanceStatusEvent {
    return toEvent(snapshot);
  }

  @Subscription(() => LabInstanceStatusEvent, {
    description: 'Every instance the caller may see (admins: all), for dashboards. Starts with the current state of each active one.',
    subscribe: subscribeAll as never,
  })
  labInstancesStatus(@Root() snapshot: InstanceSnapshot, @Ctx() _ctx: Context): LabInstanceStatusEvent {
    return toEvent(snapshot);
  }
}

/**
 * The subscriptions' resolve functions as plain functions. TypeGraphQL's wrapper validates a field's
 * arguments asynchronously on every call, which would make every event's execution a promise; these
 * only map the event (arguments were checked once, in subscribe), so the schema uses them as they are.
 */
export const eventResolvers: Record<string, (snapshot: InstanceSnapshot) => LabInstanceStatusEvent> = {
  labInstanceStatus: toEvent,
  labInstancesStatus: toEvent,
};

export { LabInstanceStatus };
