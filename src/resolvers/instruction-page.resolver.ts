import { Arg, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { InstructionPage, Lab } from '../entities/index.js';
import { Role } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { CreateInstructionPageInput, UpdateInstructionPageInput } from './lab.inputs.js';

@Resolver(() => InstructionPage)
export class InstructionPageResolver {
  @Query(() => InstructionPage, { nullable: true })
  instructionPage(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.pages.get(id);
  }

  @FieldResolver(() => Lab)
  lab(@Root() page: InstructionPage, @Ctx() ctx: Context) {
    return ctx.loaders.lab.load(page.lab.id);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => InstructionPage)
  createInstructionPage(
    @Arg('input', () => CreateInstructionPageInput) input: CreateInstructionPageInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.pages.create(input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => InstructionPage)
  updateInstructionPage(
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateInstructionPageInput) input: UpdateInstructionPageInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.pages.update(id, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean)
  deleteInstructionPage(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.pages.delete(id);
  }
}
