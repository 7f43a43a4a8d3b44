import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import { User } from '../entities/index.js';
import { requireViewer } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { AuthPayload } from './user.types.js';

@Resolver(() => User)
export class UserResolver {
  @Query(() => User, { nullable: true, description: 'The caller; null when anonymous. UNAUTHENTICATED for a refused token.' })
  me(@Ctx() ctx: Context) {
    return ctx.viewer || !ctx.authError ? (ctx.viewer?.user ?? null) : requireViewer(ctx);
  }

  @Mutation(() => AuthPayload, { description: 'Wrong e-mail and wrong password give the same UNAUTHENTICATED error.' })
  async login(
    @Arg('email', () => String) email: string,
    @Arg('password', () => String) password: string,
    @Ctx() ctx: Context,
  ): Promise<AuthPayload> {
    const { user, session } = await ctx.services.auth.login(email, password);
    return { user, token: session.token, expiresAt: session.expiresAt, verificationEmailSent: false };
  }

  @Authorized()
  @Mutation(() => Boolean, { description: 'Revokes the token that made this request, at once.' })
  async logout(@Ctx() ctx: Context) {
    await ctx.services.auth.revokeSession(ctx.viewer!.sessionId);
    return true;
  }
}
