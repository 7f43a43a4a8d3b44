import { Ctx, Field, FieldResolver, Float, ObjectType, Resolver, Root } from 'type-graphql';
import { User } from '../entities/index.js';
import type { Context } from '../graphql/context.js';

@ObjectType({ description: 'An amount in use and its limit.' })
export class QuotaFigure {
  @Field(() => Float, { description: 'In use now, by instances that are not STOPPED (FAILED ones count: they keep their VMs).' })
  used!: number;

  @Field(() => Float, { nullable: true, description: 'The limit; null: none.' })
  limit!: number | null;
}

@ObjectType({ description: "A user's lab instance quota, and the cluster-wide budget that limits everyone (admins only by it)." })
export class InstanceQuota {
  @Field(() => QuotaFigure, { description: "This user's instances (MAX_INSTANCES_PER_USER; admins have no limit of their own)." })
  instances!: QuotaFigure;

  @Field(() => QuotaFigure, { description: 'Instances of everyone (MAX_INSTANCES).' })
  clusterInstances!: QuotaFigure;

  @Field(() => QuotaFigure, { description: 'CPU cores asked by the VMs of every instance (MAX_TOTAL_CPU_CORES).' })
  clusterCpuCores!: QuotaFigure;

  @Field(() => QuotaFigure, { description: 'Memory asked by the VMs of every instance, in bytes (MAX_TOTAL_MEMORY).' })
  clusterMemoryBytes!: QuotaFigure;
}

@Resolver(() => User)
export class UserQuotaResolver {
  @FieldResolver(() => InstanceQuota, {
    description: "The user's lab instance usage and limits (the user and admins only); startLab answers QUOTA_EXCEEDED beyond them.",
  })
  instanceQuota(@Root() user: User, @Ctx() ctx: Context) {
    return ctx.services.instances.quotaReport(ctx.viewer!.user, user);
  }
}
