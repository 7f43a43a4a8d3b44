import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Authorized, Ctx, ID, Info, Int, Mutation, Query, Resolver } from 'type-graphql';
import { Image } from '../entities/index.js';
import { Role } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { connectionTypes, selects } from '../graphql/connection.js';
import { CreateImageInput, UpdateImageInput } from './image.inputs.js';

export const ImageConnection = connectionTypes('Image', Image);

@Resolver(() => Image)
export class ImageResolver {
  @Query(() => Image, { nullable: true, description: 'Anyone may read the catalogue.' })
  image(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.images.get(id);
  }

  @Query(() => ImageConnection, { description: 'Images by id; `search` matches name and description, ignoring case.' })
  images(
    @Ctx() ctx: Context,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after?: string,
    @Arg('search', () => String, { nullable: true }) search?: string,
    @Info() info?: GraphQLResolveInfo,
  ) {
    return ctx.services.images.list({ first, after, search, withCount: selects(info!, 'totalCount') });
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Image, { description: 'Admins only, as are all catalogue mutations.' })
  createImage(@Arg('input', () => CreateImageInput) input: CreateImageInput, @Ctx() ctx: Context) {
    return ctx.services.images.create(input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Image, { description: 'Running instances keep the image they started with.' })
  updateImage(
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateImageInput) input: UpdateImageInput,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.images.update(id, input);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => Boolean, { description: 'CONFLICT while a lab uses the image.' })
  deleteImage(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.images.delete(id);
  }
}
