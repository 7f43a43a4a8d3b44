import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { InstructionPage, Lab } from '../entities/index.js';
import { Role } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { idOf } from '../graphql/loaders.js';
import { CreateInstructionPageInput, UpdateInstructionPageInput } from './instruction-page.inputs.js';

@Resolver(() => InstructionPage)
export class InstructionPageResolver {
  @Query(() => InstructionPage, { nullable: true, description: 'Anyone may read it; null when there is no such page.' })
  instructionPage(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.pages.get(id);
  }

  @FieldResolver(() => Lab, { description: 'The lab the page belongs to.' })
  lab(@Root() page: InstructionPage, @Ctx() ctx: Context) {
    return ctx.loaders.lab.load(idOf(page.lab));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => InstructionPage, { description: 'Admins only. Without a position, the page goes last.' })
  createInstructionPage(
    @Arg('input', () => CreateInstructionPageInput) input: CreateInstructionPageInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.pages.create(input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => InstructionPage, { description: 'Admins only.' })
  updateInstructionPage(
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateInstructionPageInput) input: UpdateInstructionPageInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.pages.update(id, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, { description: 'Admins only.' })
  deleteInstructionPage(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.pages.delete(id);
  }
}
