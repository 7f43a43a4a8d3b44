import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/knex';
import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import { Session, User } from '../entities/index.js';
import type { Logger } from '../logger.js';
import { createServices, type AppDeps, type Services } from '../services/index.js';
import { createLoaders, type Loaders } from './loaders.js';

export interface Viewer {
  user: User;
  sessionId: string;
}

/** Everything a resolver may use, built per HTTP request or per WebSocket operation. */
export interface Context {
  requestId: string;
  ip: string;
  em: EntityManager;
  /** The authenticated caller, or null. */
  viewer: Viewer | null;
  /** Why a presented bearer token was refused (the request then runs as anonymous). */
  authError: string | null;
  config: Config;
  logger: Logger;
  loaders: Loaders;
  services: Services;
  /** Instance state changes on this replica. */
  events: AppDeps['events'];
  /** WebSocket only: true while the client's socket has too much unsent data. */
  congested?: () => boolean;
}

export interface ContextInput {
  authorization?: string | null;
  ip?: string;
  requestId?: string;
  congested?: () => boolean;
}

/** The one context builder, shared by HTTP and both WebSocket protocols. */
export async function buildContext(deps: AppDeps, input: ContextInput): Promise<Context> {
  const em = deps.orm.em.fork();
  const requestId = input.requestId ?? randomUUID();
  const { viewer, authError } = await authenticate(deps, em, input.authorization ?? null);
  const ctx: Context = {
    requestId,
    ip: input.ip ?? 'unknown',
    em,
    viewer,
    authError,
    config: deps.config,
    logger: deps.logger.child({ requestId }),
    loaders: createLoaders(em),
    services: undefined as unknown as Services,
    events: deps.events,
    congested: input.congested,
  };
  ctx.services = createServices(deps, ctx);
  return ctx;
}

/**
 * For contexts that outlive a request (one per WebSocket connection): false once the session behind
 * the viewer has been revoked or has expired, or the account deactivated.
 */
export async function sessionStillValid(deps: AppDeps, ctx: Context): Promise<boolean> {
  if (!ctx.viewer) return true;
  return !(await endedSessions(deps, [ctx.viewer])).has(ctx.viewer.sessionId);
}

/** The facts about a session that decide whether it still authenticates its user. */
interface SessionFacts {
  userId: number;
  expiresAt: Date;
  revokedAt: Date | null;
  userActive: boolean;
}

const factsOf = (session: Session | null): SessionFacts | null => {
  const user = session?.user.getEntity();
  return session && user ? { userId: user.id, expiresAt: session.expiresAt, revokedAt: session.revokedAt ?? null, userActive: user.isActive } : null;
};


/**
 * Of these viewers' sessions, the ones that no longer authenticate their user: two plain queries per
 * 500 sessions (rows mapped by the query builder, no entities), as it runs periodically over every
 * open WebSocket connection.
 */
export async function endedSessions(deps: AppDeps, viewers: Iterable<Viewer>): Promise<Set<string>> {
  const users = new Map<string, number>();
  for (const v of viewers) users.set(v.sessionId, v.user.id);
  const ids = [...users.keys()];
  const ended = new Set<string>();
  const em = deps.orm.em.fork() as unknown as SqlEntityManager;
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const sessions: Array<{ id: string; user: number; expiresAt: Date; revokedAt: Date | null }> = await em
      .createQueryBuilder(Session)
      .select(['id', 'user', 'expiresAt', 'revokedAt'])
      .where({ id: { $in: chunk } })
      .execute('all', true);
    const owners: Array<{ id: number; isActive: boolean }> = await em
      .createQueryBuilder(User)
      .select(['id', 'isActive'])
      .where({ id: { $in: [...new Set(sessions.map((s) => s.user))] } })
      .execute('all', true);
    const active = new Map(owners.map((u) => [u.id, u.isActive]));
    const facts = new Map<string, SessionFacts>(
      sessions.map((s) => [s.id, { userId: s.user, expiresAt: s.expiresAt, revokedAt: s.revokedAt ?? null, userActive: active.get(s.user) === true }]),
    );
    for (const id of chunk) if (sessionProblem(facts.get(id) ?? null, users.get(id)!) !== null) ended.add(id);
  }
  return ended;
}

/** Why a session no longer authenticates its user, or null while it does: the one place for these rules. */
function sessionProblem(session: SessionFacts | null, userId: number): string | null {
  if (!session || session.userId !== userId) return 'session ended';
  if (session.revokedAt || session.expiresAt.getTime() <= Date.now()) return 'session ended';
  if (!session.userActive) return 'account deactivated';
  return null;
}

async function authenticate(
  deps: AppDeps,
  em: EntityManager,
  authorization: string | null,
): Promise<{ viewer: Viewer | null; authError: string | null }> {
  if (!authorization) return { viewer: null, authError: null };
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) return { viewer: null, authError: 'Authorization must be "Bearer <token>"' };
  const claims = await deps.sessionTokens.verify(match[1]);
  if ('invalid' in claims) return { viewer: null, authError: `Bearer token refused: ${claims.invalid}` };
  const session = await em.findOne(Session, { id: claims.sessionId }, { populate: ['user'] });
  const problem = sessionProblem(factsOf(session), claims.userId);
  if (problem) return { viewer: null, authError: `Bearer token refused: ${problem}` };
  return { viewer: { user: session!.user.getEntity(), sessionId: session!.id }, authError: null };
}

export type { AppDeps, Orm };
