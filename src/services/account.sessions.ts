import type { EntityManager } from '@mikro-orm/core';
import { sqlEm } from '../db.js';
import { Session, User } from '../entities/index.js';
import type { SessionTokens } from './session-tokens.js';

/** The authenticated caller of a request or WebSocket connection. */
export interface Viewer {
  user: User;
  sessionId: string;
}

/**
 * For contexts that outlive a request (one per WebSocket connection): false once the session behind
 * the viewer has been revoked or has expired, or the account deactivated.
 */
export async function sessionStillValid(em: EntityManager, viewer: Viewer | null): Promise<boolean> {
  if (!viewer) return true;
  return !(await endedSessions(em, [viewer])).has(viewer.sessionId);
}

/** The facts about a session that decide whether it still authenticates its user. */
interface SessionFacts {
  userId: number;
  expiresAt: Date;
  revokedAt: Date | null;
  userActive: boolean;
}

/** The rights a connection was granted with; when the account's rights differ now, they have ended. */
export const rightsOf = (u: { isAdmin: boolean; isTrusted: boolean }) => `${u.isAdmin ? 'admin' : ''}/${u.isTrusted ? 'trusted' : ''}`;

const factsOf = (session: Session | null): SessionFacts | null => {
  const user = session?.user.getEntity();
  return session && user ? { userId: user.id, expiresAt: session.expiresAt, revokedAt: session.revokedAt ?? null, userActive: user.isActive } : null;
};


/**
 * Of these viewers' sessions, the ones that no longer authenticate their user: two plain queries per
 * 500 sessions (rows mapped by the query builder, no entities), as it runs periodically over every
 * open WebSocket connection.
 */
export async function endedSessions(root: EntityManager, viewers: Iterable<Viewer>): Promise<Set<string>> {
  const changes = await sessionChanges(root, viewers);
  return new Set([...changes].filter(([, change]) => change === 'ended').map(([id]) => id));
}

/**
 * Of these viewers' sessions, those that changed since the viewer was authenticated: 'ended' (no
 * longer authenticates its user) or 'rights' (the user's admin or trusted right differs now).
 */
export async function sessionChanges(root: EntityManager, viewers: Iterable<Viewer>): Promise<Map<string, 'ended' | 'rights'>> {
  const users = new Map<string, number>();
  const granted = new Map<string, string>();
  for (const v of viewers) {
    users.set(v.sessionId, v.user.id);
    granted.set(v.sessionId, rightsOf(v.user));
  }
  const ids = [...users.keys()];
  const changed = new Map<string, 'ended' | 'rights'>();
  const em = sqlEm(root.fork());
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const sessions: Array<{ id: string; user: number; expiresAt: Date; revokedAt: Date | null }> = await em
      .createQueryBuilder(Session)
      .select(['id', 'user', 'expiresAt', 'revokedAt'])
      .where({ id: { $in: chunk } })
      .execute('all', true);
    const owners: Array<{ id: number; isActive: boolean; isAdmin: boolean; isTrusted: boolean }> = await em
      .createQueryBuilder(User)
      .select(['id', 'isActive', 'isAdmin', 'isTrusted'])
      .where({ id: { $in: [...new Set(sessions.map((s) => s.user))] } })
      .execute('all', true);
    const active = new Map(owners.map((u) => [u.id, u.isActive]));
    const rights = new Map(owners.map((u) => [u.id, rightsOf(u)]));
    const facts = new Map<string, SessionFacts>(
      sessions.map((s) => [s.id, { userId: s.user, expiresAt: s.expiresAt, revokedAt: s.revokedAt ?? null, userActive: active.get(s.user) === true }]),
    );
    for (const id of chunk) {
      const fact = facts.get(id) ?? null;
      if (sessionProblem(fact, users.get(id)!) !== null) changed.set(id, 'ended');
      else if (fact && rights.get(fact.userId) !== granted.get(id)) changed.set(id, 'rights');
    }
  }
  return changed;
}

/** Why a session no longer authenticates its user, or null while it does: the one place for these rules. */
function sessionProblem(session: SessionFacts | null, userId: number): string | null {
  if (!session || session.userId !== userId) return 'session ended';
  if (session.revokedAt || session.expiresAt.getTime() <= Date.now()) return 'session ended';
  if (!session.userActive) return 'account deactivated';
  return null;
}

/** The viewer a bearer token stands for, or why it is refused (the request then runs as anonymous). */
export async function authenticate(
  sessionTokens: SessionTokens,
  em: EntityManager,
  authorization: string | null,
): Promise<{ viewer: Viewer | null; authError: string | null }> {
  if (!authorization) return { viewer: null, authError: null };
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) return { viewer: null, authError: 'Authorization must be "Bearer <token>"' };
  const claims = await sessionTokens.verify(match[1]);
  if ('invalid' in claims) return { viewer: null, authError: `Bearer token refused: ${claims.invalid}` };
  const session = await em.findOne(Session, { id: claims.sessionId }, { populate: ['user'] });
  const problem = sessionProblem(factsOf(session), claims.userId);
  if (problem) return { viewer: null, authError: `Bearer token refused: ${problem}` };
  return { viewer: { user: session!.user.getEntity(), sessionId: session!.id }, authError: null };
}

