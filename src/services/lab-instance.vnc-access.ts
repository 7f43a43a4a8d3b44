import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import { decodeJwt } from 'jose';
import { sqlEm } from '../db.js';
import { LabInstance, LabInstanceStatus, Session, User, VncGrant } from '../entities/index.js';
import type { Logger } from '../logger.js';
import type { Viewer } from './account.sessions.js';
import type { VncAccessData, VncClaims } from './lab-instance.vnc.js';

/**
 * Who may keep a VNC console open, and for how long: the rules the proxy applies at connect and
 * again whenever something changes (instance events, account events, the periodic check).
 */

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

/** An instance in these states has no consoles any more. */
const ENDED = new Set<string>([LabInstanceStatus.STOPPING, LabInstanceStatus.STOPPED]);

export const instanceEnded = (status: string) => ENDED.has(status);

/** Why access to a console ended (or was never given). */
export type VncEnd = 'stopped' | 'session-ended' | 'deactivated' | 'expired' | 'not-found';

/** One open console, as the proxy knows it. */
export interface VncHolder {
  instanceId: number;
  userId: number;
  /** The login session that issued the token, when known (tokens issued by this server). */
  sessionId: string | null;
  /** Unix ms: the token's expiry, pushed back by renewals through the same session. */
  deadline: number;
}

/** Records the login session behind each VNC token issued (startLab, renewVncAccess). */
export class VncGrantService {
  constructor(private readonly em: EntityManager) {}

  async record(access: VncAccessData, viewer: Viewer): Promise<void> {
    const claims = decodeJwt(access.token) as { lab_instance?: { lab_instance_id?: number } };
    const em = sqlEm(this.em.fork());
    // The same claims within the same second sign to the same token: the latest issue wins.
    await em.upsert(VncGrant, {
      tokenHash: tokenHash(access.token),
      sessionId: viewer.sessionId,
      userId: viewer.user.id,
      instanceId: Number(claims.lab_instance?.lab_instance_id),
      expiresAt: access.expiresAt,
    });
    // Grants are worth nothing once expired: forget those of yesterday (indexed; rarely any).
    await em.nativeDelete(VncGrant, { expiresAt: { $lt: new Date(Date.now() - 86_400_000) } });
  }
}

/**
 * The access a valid token gives now, or why none: the instance exists, is not stopped and is the
 * token's (namespace), the user is active, and the session that issued the token (if recorded) has not
 * ended. The deadline is the latest expiry among the grants of that session for that instance.
 */
export async function openVncAccess(root: EntityManager, claims: VncClaims, token: string): Promise<VncHolder | { refused: VncEnd }> {
  const em = sqlEm(root.fork());
  const instance = await em.findOne(LabInstance, { id: claims.instanceId }, { fields: ['id', 'status', 'namespace'] as never });
  if (!instance || instance.namespace !== claims.namespace) return { refused: 'not-found' };
  if (instanceEnded(instance.status)) return { refused: 'stopped' };
  const user = await em.findOne(User, { id: claims.userId }, { fields: ['id', 'isActive'] as never });
  if (!user) return { refused: 'not-found' };
  if (!user.isActive) return { refused: 'deactivated' };
  const grant = await em.findOne(VncGrant, { tokenHash: tokenHash(token) });
  const holder: VncHolder = { instanceId: claims.instanceId, userId: claims.userId, sessionId: grant?.sessionId ?? null, deadline: claims.exp * 1000 };
  if (!grant) return holder;
  const [review] = (await reviewVncHolders(root, [holder])).values();
  return 'end' in review ? { refused: review.end } : { ...holder, deadline: Math.max(holder.deadline, review.deadline) };
}

/**
 * For each holder (keyed by position), whether its access has ended, and its deadline now: a handful
 * of plain queries for any number of open consoles (instances, users, sessions, grants).
 */
export async function reviewVncHolders(root: EntityManager, holders: VncHolder[]): Promise<Map<number, { end: VncEnd } | { deadline: number }>> {
  const em = sqlEm(root.fork());
  const out = new Map<number, { end: VncEnd } | { deadline: number }>();
  if (!holders.length) return out;
  const unique = <T>(xs: T[]) => [...new Set(xs)];
  const instanceIds = unique(holders.map((h) => h.instanceId));
  const userIds = unique(holders.map((h) => h.userId));
  const sessionIds = unique(holders.flatMap((h) => (h.sessionId ? [h.sessionId] : [])));
  const instances: Array<{ id: number; status: string }> = await em
    .createQueryBuilder(LabInstance)
    .select(['id', 'status'])
    .where({ id: { $in: instanceIds } })
    .execute('all', true);
  const users: Array<{ id: number; isActive: boolean }> = await em
    .createQueryBuilder(User)
    .select(['id', 'isActive'])
    .where({ id: { $in: userIds } })
    .execute('all', true);
  const sessions: Array<{ id: string; expiresAt: Date; revokedAt: Date | null }> = sessionIds.length
    ? await em.createQueryBuilder(Session).select(['id', 'expiresAt', 'revokedAt']).where({ id: { $in: sessionIds } }).execute('all', true)
    : [];
  const grants: Array<{ sessionId: string; instanceId: number; expiresAt: Date }> = sessionIds.length
    ? await em
        .createQueryBuilder(VncGrant)
        .select(['sessionId', 'instanceId', 'expiresAt'])
        .where({ sessionId: { $in: sessionIds }, instanceId: { $in: instanceIds } })
        .execute('all', true)
    : [];
  const status = new Map(instances.map((i) => [i.id, i.status]));
  const active = new Map(users.map((u) => [u.id, Boolean(u.isActive)]));
  const live = new Map(sessions.map((s) => [s.id, !s.revokedAt && new Date(s.expiresAt).getTime() > Date.now()]));
  const latest = new Map<string, number>();
  for (const g of grants) {
    const key = `${g.sessionId}:${g.instanceId}`;
    latest.set(key, Math.max(latest.get(key) ?? 0, new Date(g.expiresAt).getTime()));
  }
  holders.forEach((h, i) => {
    const s = status.get(h.instanceId);
    if (s === undefined) out.set(i, { end: 'not-found' });
    else if (instanceEnded(s)) out.set(i, { end: 'stopped' });
    else if (!active.get(h.userId)) out.set(i, { end: 'deactivated' });
    else if (h.sessionId && !live.get(h.sessionId)) out.set(i, { end: 'session-ended' });
    else out.set(i, { deadline: Math.max(h.deadline, h.sessionId ? (latest.get(`${h.sessionId}:${h.instanceId}`) ?? 0) : 0) });
  });
  return out;
}

/**
 * The last keyboard or pointer event per instance, kept in memory at once and written to
 * `lab_instances.last_activity_at` at most every `intervalMs` per instance (the latest value wins).
 */
export class ActivityRecorder {
  private readonly latest = new Map<number, number>();
  private readonly written = new Map<number, number>();
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly root: EntityManager,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** The last activity seen on this replica (not yet written, maybe). */
  last(instanceId: number): Date | undefined {
    const at = this.latest.get(instanceId);
    return at === undefined ? undefined : new Date(at);
  }

  touch(instanceId: number, at = Date.now()): void {
    this.latest.set(instanceId, at);
    if (this.timers.has(instanceId)) return;
    const due = (this.written.get(instanceId) ?? -Infinity) + this.intervalMs - at;
    if (due <= 0) return this.write(instanceId);
    const timer = setTimeout(() => {
      this.timers.delete(instanceId);
      this.write(instanceId);
    }, due);
    timer.unref();
    this.timers.set(instanceId, timer);
  }

  private write(instanceId: number): void {
    const at = this.latest.get(instanceId);
    if (at === undefined) return;
    this.written.set(instanceId, Date.now());
    const done = sqlEm(this.root.fork())
      .createQueryBuilder(LabInstance)
      .update({ lastActivityAt: new Date(at) })
      .where({ id: instanceId })
      .execute()
      .then(() => undefined)
      .catch((err: Error) => this.logger.warn('could not record VNC activity', { instanceId, error: err.message }))
      .finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  /** Forgets an instance that has no console open any more (its last value is written first). */
  forget(instanceId: number): void {
    const timer = this.timers.get(instanceId);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(instanceId);
      this.write(instanceId);
    }
    this.latest.delete(instanceId);
    this.written.delete(instanceId);
  }

  /** Writes what is pending now and waits for every write. */
  async flush(): Promise<void> {
    for (const [id, timer] of this.timers) {
      clearTimeout(timer);
      this.timers.delete(id);
      this.write(id);
    }
    await Promise.all([...this.inFlight]);
  }
}
