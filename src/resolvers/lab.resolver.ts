import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Authorized, Ctx, FieldResolver, ID, Info, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import { Image, InstructionPage, Lab, LabVm } from '../entities/index.js';
import { Role } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { idOf } from '../graphql/loaders.js';
import { connectionTypes, selects } from '../graphql/connection.js';
import { CreateLabInput, LabVmInput, UpdateLabInput } from './lab.inputs.js';

export const LabConnection = connectionTypes('Lab', Lab);

/** Unpaged lists are costed as ten items each, for the query cost limit. */
const LIST_COST = ({ childComplexity }: { childComplexity: number }) => 1 + 10 * childComplexity;

@Resolver(() => Lab)
export class LabResolver {
  @Query(() => Lab, { nullable: true, description: 'Anyone may read the catalogue; null when there is no such lab.' })
  lab(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.labs.get(id);
  }

  @Query(() => LabConnection, { description: 'Labs by id; `search` matches name and description, ignoring case.' })
  labs(
    @Ctx() ctx: Context,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('search', () => String, { nullable: true }) search?: string,
    @Info() info?: GraphQLResolveInfo,
  ) {
    return ctx.services.labs.list({ first, after, search, withCount: selects(info!, 'totalCount') });
  }

  @FieldResolver(() => [LabVm], { description: 'In the order they were added; the first one opens in VNC.', complexity: LIST_COST })
  vms(@Root() lab: Lab, @Ctx() ctx: Context) {
    return ctx.loaders.vmsByLab.load(lab.id);
  }

  @FieldResolver(() => [InstructionPage], { description: 'Ordered by position.', complexity: LIST_COST })
  instructionPages(@Root() lab: Lab, @Ctx() ctx: Context) {
    return ctx.loaders.pagesByLab.load(lab.id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Lab, { description: 'Admins only: a lab with its VMs, in one transaction. CONFLICT for a taken name or prefix.' })
  createLab(@Arg('input', () => CreateLabInput) input: CreateLabInput, @Ctx() ctx: Context) {
    return ctx.services.labs.create(input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Lab, { description: 'Admins only. Running instances are not affected.' })
  updateLab(@Arg('id', () => ID) id: string, @Arg('input', () => UpdateLabInput) input: UpdateLabInput, @Ctx() ctx: Context) {
    return ctx.services.labs.update(id, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, { description: 'Removes its VMs and pages. CONFLICT while the lab has instances that are not STOPPED.' })
  deleteLab(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.labs.delete(id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => LabVm, { description: 'CONFLICT when the lab already has a VM of that name.' })
  addLabVm(@Arg('labId', () => ID) labId: string, @Arg('input', () => LabVmInput) input: LabVmInput, @Ctx() ctx: Context) {
    return ctx.services.labs.addVm(labId, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, { description: 'Admins only. Running instances keep their VMs.' })
  removeLabVm(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.labs.removeVm(id);
  }
}

@Resolver(() => LabVm)
export class LabVmResolver {
  @FieldResolver(() => Image, { description: 'The image the VM starts from.' })
  async image(@Root() vm: LabVm, @Ctx() ctx: Context) {
    return ctx.loaders.image.load(idOf(vm.image));
  }

  @FieldResolver(() => Lab, { description: 'The lab this VM belongs to.' })
  async lab(@Root() vm: LabVm, @Ctx() ctx: Context) {
    return ctx.loaders.lab.load(idOf(vm.lab));
  }
}
