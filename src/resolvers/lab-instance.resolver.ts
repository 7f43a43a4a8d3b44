import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Lab, LabInstance, User } from '../entities/index.js';
import { Role } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { notFound } from '../errors.js';
import { LabInstanceConnection, LabInstanceFilter, StartLabPayload, VncAccess } from './lab-instance.types.js';

@Resolver(() => LabInstance)
export class LabInstanceResolver {
  @Authorized()
  @Query(() => LabInstance, { nullable: true, description: "Owners see their own; admins see all. Anyone else's is NOT_FOUND." })
  labInstance(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.instances.getVisible(ctx.viewer!.user, id);
  }

  @Authorized()
  @Query(() => LabInstanceConnection, { description: 'Newest first. Owners see their own; admins see all.' })
  labInstances(
    @Ctx() ctx: Context,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('filter', () => LabInstanceFilter, { nullable: true }) filter?: LabInstanceFilter,
  ) {
    return ctx.services.instances.list(ctx.viewer!.user, { first, after, filter });
  }

  @FieldResolver(() => Lab, { description: 'The lab this instance was started from.' })
  async lab(@Root() instance: LabInstance, @Ctx() ctx: Context) {
    const lab = await ctx.loaders.lab.load(instance.lab.id);
    if (!lab) throw notFound('Lab', instance.lab.id);
    return lab;
  }

  @FieldResolver(() => User, { description: 'Who started it.' })
  async user(@Root() instance: LabInstance, @Ctx() ctx: Context) {
    return ctx.loaders.user.load(instance.user.id);
  }

  @Authorized(Role.TRUSTED)
  @Mutation(() => StartLabPayload, { description: 'Trusted users and admins: creates the namespace, network policy and one VM per LabVm.' })
  async startLab(@Arg('labId', () => ID) labId: string, @Ctx() ctx: Context): Promise<StartLabPayload> {
    const { instance, vnc } = await ctx.services.instances.start(ctx.viewer!.user, labId);
    await ctx.services.vncGrants.record(vnc, ctx.viewer!);
    return { labInstance: instance, vncAccess: vnc };
  }

  @Authorized()
  @Mutation(() => LabInstance, { description: "The owner or an admin: deletes the instance's namespace. Idempotent." })
  stopLabInstance(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.instances.stop(ctx.viewer!.user, id);
  }

  @Authorized()
  @Mutation(() => LabInstance, {
    description:
      "The owner or an admin: moves expiresAt `minutes` later, up to the lab's maxInstanceLifetimeMinutes after createdAt. CONFLICT when stopped or already at the maximum.",
  })
  extendLabInstance(@Arg('id', () => ID) id: string, @Arg('minutes', () => Int) minutes: number, @Ctx() ctx: Context) {
    return ctx.services.instances.extend(ctx.viewer!.user, id, minutes);
  }

  @Authorized()
  @Mutation(() => VncAccess, { description: 'The owner or an admin: a fresh VNC token and URL.' })
  async renewVncAccess(@Arg('labInstanceId', () => ID) labInstanceId: string, @Ctx() ctx: Context) {
    const vnc = await ctx.services.instances.renewVnc(ctx.viewer!.user, labInstanceId);
    await ctx.services.vncGrants.record(vnc, ctx.viewer!);
    return vnc;
  }
}

@Resolver(() => User)
export class UserLabInstancesResolver {
  @FieldResolver(() => LabInstanceConnection, { description: "The user's own lab instances (visible to the user and to admins)." })
  labInstances(
    @Root() user: User,
    @Ctx() ctx: Context,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
  ) {
    const viewer = ctx.viewer?.user;
    if (!viewer || (!viewer.isAdmin && viewer.id !== user.id)) throw notFound('User', user.id);
    return ctx.services.instances.list(viewer, { first, after, filter: { userId: String(user.id) } });
  }
}
