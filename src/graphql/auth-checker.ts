import type { AuthChecker } from 'type-graphql';
import type { Context } from './context.js';
import { forbidden, unauthenticated } from '../errors.js';

/** Roles for `@Authorized(...)`: none means "any signed-in user". */
export const Role = { ADMIN: 'ADMIN', TRUSTED: 'TRUSTED' } as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Throws the contract's codes itself, so that callers see UNAUTHENTICATED vs FORBIDDEN with a reason. */
export const authChecker: AuthChecker<Context, Role> = ({ context }, roles) => {
  const user = context.viewer?.user;
  if (!user) throw unauthenticated(context.authError ?? undefined);
  if (roles.includes(Role.ADMIN) && !user.isAdmin) throw forbidden('Only admins may do this');
  if (roles.includes(Role.TRUSTED) && !user.isTrusted && !user.isAdmin) {
    throw forbidden('Only trusted users and admins may start labs');
  }
  return true;
};

/** For resolvers that allow anonymous callers but must refuse a bad token rather than ignore it. */
export function requireViewer(ctx: Context) {
  if (!ctx.viewer) throw unauthenticated(ctx.authError ?? undefined);
  return ctx.viewer.user;
}
