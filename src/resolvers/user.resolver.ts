import { Arg, Authorized, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { User } from '../entities/index.js';
import { Role, requireViewer } from '../graphql/auth-checker.js';
import type { Context } from '../graphql/context.js';
import { RegisterInput, UpdateMeInput, UpdateUserInput, UserFilter, UserOrder } from './user.inputs.js';
import { AuthPayload, UserConnection } from './user.types.js';

/**
 * Accounts: registration, e-mail verification, sign-in, passwords, the caller's profile, and user
 * administration. Password-policy errors name the argument or input field (`password`, `newPassword`).
 */
@Resolver(() => User)
export class UserResolver {
  @Query(() => User, { nullable: true, description: 'The caller; null when anonymous. UNAUTHENTICATED for a refused token.' })
  me(@Ctx() ctx: Context) {
    return ctx.viewer || !ctx.authError ? (ctx.viewer?.user ?? null) : requireViewer(ctx);
  }

  @Authorized()
  @Query(() => User, { nullable: true, description: 'Admins: anyone; others: only themselves. Anyone else is NOT_FOUND.' })
  user(@Arg('id', () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.users.get(ctx.viewer!.user, id);
  }

  @Authorized()
  @Query(() => UserConnection, { description: 'Admins: every user; others: only themselves. Ordered by id unless orderBy says otherwise.' })
  users(
    @Ctx() ctx: Context,
    @Arg('first', () => Int, { nullable: true, defaultValue: 20, description: 'Page size, 0-100.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after?: string,
    @Arg('filter', () => UserFilter, { nullable: true, description: 'Admins narrow the list; for others it applies to themselves.' }) filter?: UserFilter,
    @Arg('orderBy', () => UserOrder, { nullable: true, description: 'Default: by id, ascending.' }) orderBy?: UserOrder,
  ) {
    return ctx.services.users.list(ctx.viewer!.user, { first, after, filter, orderBy });
  }

  @Mutation(() => AuthPayload, {
    description: 'Creates an account. ACCOUNT_EMAIL_VERIFICATION decides whether a verification mail goes out and whether a token comes back (none while verification is mandatory). CONFLICT on `email` when taken.',
  })
  async register(@Arg('input', () => RegisterInput) input: RegisterInput, @Ctx() ctx: Context): Promise<AuthPayload> {
    const { user, session, verificationEmailSent } = await ctx.services.accounts.register(input, ctx.ip);
    return { user, token: session?.token ?? null, expiresAt: session?.expiresAt ?? null, verificationEmailSent };
  }

  @Mutation(() => Boolean, { description: 'Marks the address verified; the token comes from the link in the verification mail and works once.' })
  verifyEmail(@Arg('token', () => String) token: string, @Ctx() ctx: Context) {
    return ctx.services.accounts.verifyEmail(token, ctx.ip);
  }

  @Mutation(() => Boolean, { description: 'Mails a new verification link to an unverified account. Always true, whether or not the address is known.' })
  resendVerificationEmail(@Arg('email', () => String) email: string, @Ctx() ctx: Context) {
    return ctx.services.accounts.resendVerificationEmail(email, ctx.ip);
  }

  @Mutation(() => AuthPayload, {
    description: 'Wrong e-mail and wrong password give the same UNAUTHENTICATED error. FORBIDDEN (reason EMAIL_NOT_VERIFIED) while mandatory verification is pending.',
  })
  async login(
    @Arg('email', () => String) email: string,
    @Arg('password', () => String) password: string,
    @Ctx() ctx: Context,
  ): Promise<AuthPayload> {
    const { user, session } = await ctx.services.accounts.login(email, password, ctx.ip);
    return { user, token: session.token, expiresAt: session.expiresAt, verificationEmailSent: false };
  }

  @Authorized()
  @Mutation(() => Boolean, { description: 'Revokes the token that made this request, at once.' })
  async logout(@Ctx() ctx: Context) {
    await ctx.services.auth.revokeSession(ctx.viewer!.sessionId, ctx.viewer!.user.id);
    return true;
  }

  @Authorized()
  @Mutation(() => User, { description: "Changes the caller's names." })
  updateMe(@Arg('input', () => UpdateMeInput) input: UpdateMeInput, @Ctx() ctx: Context) {
    return ctx.services.accounts.updateMe(ctx.viewer!.user, input);
  }

  @Authorized()
  @Mutation(() => Boolean, {
    description: 'Needs the current password; revokes every other token of the caller at once (this one stays valid).',
  })
  changePassword(
    @Arg('currentPassword', () => String) currentPassword: string,
    @Arg('newPassword', () => String) newPassword: string,
    @Ctx() ctx: Context,
  ) {
    const { user, sessionId } = ctx.viewer!;
    return ctx.services.accounts.changePassword(user, sessionId, currentPassword, newPassword, ctx.ip);
  }

  @Mutation(() => Boolean, { description: 'Mails a password reset link to an active account. Always true, whether or not the address is known.' })
  requestPasswordReset(@Arg('email', () => String) email: string, @Ctx() ctx: Context) {
    return ctx.services.accounts.requestPasswordReset(email, ctx.ip);
  }

  @Mutation(() => Boolean, { description: 'Sets a new password with the token from the reset mail and revokes every token of that user at once.' })
  resetPassword(@Arg('token', () => String) token: string, @Arg('newPassword', () => String) newPassword: string, @Ctx() ctx: Context) {
    return ctx.services.accounts.resetPassword(token, newPassword, ctx.ip);
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => User, { description: 'Admins only. Deactivation revokes all tokens of the user at once.' })
  updateUser(@Arg('id', () => ID) id: string, @Arg('input', () => UpdateUserInput) input: UpdateUserInput, @Ctx() ctx: Context) {
    return ctx.services.users.update(id, input);
  }
}
