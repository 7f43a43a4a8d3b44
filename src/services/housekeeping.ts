import type { Orm } from '../db.js';
import { AccountToken, RateLimitBucket, Session } from '../entities/index.js';
import type { Logger } from '../logger.js';

/** How long a revoked session or a used account token is kept (for whoever reads the tables). */
const KEEP_ENDED_MS = 24 * 3600_000;
const EVERY_MS = 3600_000;

export interface Pruned {
  sessions: number;
  accountTokens: number;
  rateLimits: number;
}

/**
 * Deletes the rows that no longer mean anything: expired sessions and sessions revoked more than a day
 * ago (their tokens are refused either way: a missing session ends a token as a revoked one does),
 * account tokens expired or used more than a day ago, and rate-limit windows that are over.
 * Idempotent, so every replica may run it.
 */
export async function pruneExpired(orm: Orm, now = new Date()): Promise<Pruned> {
  const em = orm.em.fork();
  const ended = new Date(now.getTime() - KEEP_ENDED_MS);
  const sessions = await em.nativeDelete(Session, { $or: [{ expiresAt: { $lt: now } }, { revokedAt: { $lt: ended } }] });
  const accountTokens = await em.nativeDelete(AccountToken, { $or: [{ expiresAt: { $lt: now } }, { usedAt: { $lt: ended } }] });
  const rateLimits = await em.nativeDelete(RateLimitBucket, { resetAt: { $lt: now } });
  return { sessions, accountTokens, rateLimits };
}

/** Prunes once an hour (the first time an hour after start); returns the function that stops it. */
export function scheduleHousekeeping(orm: Orm, logger: Logger): () => void {
  const timer = setInterval(() => {
    pruneExpired(orm).then(
      (pruned) => logger.info('expired rows pruned', { ...pruned }),
      (err) => logger.warn('pruning expired rows failed', { error: (err as Error).message }),
    );
  }, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
