import { createHash } from 'node:crypto';
import type { Config, RateLimitRule } from '../config.js';
import type { Orm } from '../db.js';
import { rateLimited } from '../errors.js';
import type { Logger } from '../logger.js';

export type RateLimitedAction = keyof Config['auth']['rateLimits'];

export interface RateLimitSubject {
  /** The client address (`req.ip`; behind a proxy only with TRUST_PROXY=true). */
  ip: string;
  /** The account the attempt is about, as typed (normalized here); known or not, it counts the same. */
  email?: string;
}

interface Bucket {
  key: string;
  limit: number;
}

/**
 * One statement per bucket, atomic on both engines: a fresh or expired window starts at 1, a live
 * one counts up. Every replica shares the table, so limits hold across replicas.
 */
const HIT_SQL = `insert into rate_limits ("key", "count", reset_at) values (?, 1, ?)
  on conflict ("key") do update set
    "count" = case when rate_limits.reset_at <= ? then 1 else rate_limits."count" + 1 end,
    reset_at = case when rate_limits.reset_at <= ? then excluded.reset_at else rate_limits.reset_at end
  returning "count", reset_at`;

/** Expired windows are deleted once every this many attempts. */
const PRUNE_EVERY = 500;

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

/** Fixed-window counters per client address and per account, kept in the `rate_limits` table. */
export class RateLimiter {
  private attempts = 0;

  constructor(
    private readonly orm: Orm,
    private readonly rules: Config['auth']['rateLimits'],
    private readonly logger: Logger,
  ) {}

  /**
   * Counts one attempt of `action` for the address and, when given, the account (limit x
   * RATE_LIMIT_ADDRESS_MULTIPLIER per address, limit per account).
   * @throws AppError RATE_LIMITED with extensions.retryAfterSeconds when either is over its limit.
   */
  async consume(action: RateLimitedAction, subject: RateLimitSubject): Promise<void> {
    const rule = this.rules[action];
    const buckets: Bucket[] = [{ key: `${action}:ip:${subject.ip}`, limit: rule.addressLimit }];
    if (subject.email !== undefined) {
      buckets.push({ key: `${action}:account:${digest(subject.email.trim().toLowerCase())}`, limit: rule.limit });
    }
    let retryAfterSeconds = 0;
    for (const bucket of buckets) {
      const { count, resetAt } = await this.hit(bucket.key, rule);
      if (count > bucket.limit) {
        retryAfterSeconds = Math.max(retryAfterSeconds, Math.max(1, Math.ceil((resetAt.getTime() - Date.now()) / 1000)));
      }
    }
    if (++this.attempts % PRUNE_EVERY === 0) void this.prune();
    if (retryAfterSeconds) throw rateLimited(retryAfterSeconds);
  }

  private async hit(key: string, rule: RateLimitRule): Promise<{ count: number; resetAt: Date }> {
    const now = new Date();
    const resetAt = new Date(now.getTime() + rule.windowSeconds * 1000);
    const rows = await this.orm.em.getConnection().execute<{ count: number | string; reset_at: Date | number | string }[]>(
      HIT_SQL,
      [key, resetAt, now, now],
      'all',
    );
    return { count: Number(rows[0].count), resetAt: new Date(rows[0].reset_at) };
  }

  /** Deletes windows that ended; they would start afresh anyway. */
  async prune(): Promise<void> {
    try {
      await this.orm.em.getConnection().execute('delete from rate_limits where reset_at < ?', [new Date()], 'run');
    } catch (err) {
      this.logger.warn('could not prune expired rate limit windows', { error: err });
    }
  }
}
