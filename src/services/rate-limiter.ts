import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
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
  /** A secret being tried (a link's token): counted per secret too, by its digest. */
  token?: string;
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

/**
 * Actions counted per account *and* address rather than per account. A per-account login limit
 * is one anybody can trip: ten wrong passwords from anywhere and the owner is locked out for the
 * window. Per account and address, the guesser's address runs out while the owner signs in from
 * any other. There is deliberately no global per-account login limit: however high, enough
 * addresses reach it and lock the owner out again; guessing from many addresses stays bounded by
 * the per-address limits, the argon2id cost of every try and the password policy.
 * The mail-sending actions keep their per-account limit: it protects the mailbox, and reaching
 * it never stops the owner from signing in.
 */
const PER_ACCOUNT_AND_ADDRESS: ReadonlySet<RateLimitedAction> = new Set(['login']);

/**
 * The part of an address one client controls. An IPv6 client usually holds a whole /64, and
 * rotating within it would otherwise make every per-address limit void; an IPv4-mapped address
 * (::ffff:a.b.c.d, as a dual-stack socket reports IPv4) counts as the IPv4 address.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  const bare = ip.split('%')[0]; // without a zone index (fe80::1%eth0)
  if (isIPv6(bare)) return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`;
  // Anything else came from a forwarded header as typed: digested, so any length fits the key.
  return isIPv4(ip) ? ip : `other:${digest(ip)}`;
}

/** The eight groups of a valid IPv6 address, `::` expanded, without leading zeros. */
function ipv6Groups(ip: string): string[] {
  // An embedded IPv4 (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) fills the last two groups.
  const groups = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const [head, tail] = ip.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return all.map((g) => parseInt(g, 16).toString(16));
}

/** Fixed-window counters per client address, per account (or account and address) and per token, kept in the `rate_limits` table. */
export class RateLimiter {
  private attempts = 0;

  constructor(
    private readonly orm: Orm,
    private readonly rules: Config['auth']['rateLimits'],
    private readonly logger: Logger,
  ) {}

  /**
   * Counts one attempt of `action` for the address (limit x RATE_LIMIT_ADDRESS_MULTIPLIER) and,
   * when given, the account (limit; for login per account and address) and the token (limit).
   * @throws AppError RATE_LIMITED with extensions.retryAfterSeconds when any is over its limit.
   */
  async consume(action: RateLimitedAction, subject: RateLimitSubject): Promise<void> {
    const rule = this.rules[action];
    let retryAfterSeconds = 0;
    for (const bucket of bucketsOf(action, rule, subject)) {
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

/** The counters one attempt goes into; keys hold digests of e-mail addresses and tokens, never the values. */
function bucketsOf(action: RateLimitedAction, rule: RateLimitRule, subject: RateLimitSubject): Bucket[] {
  const address = addressKey(subject.ip);
  const buckets: Bucket[] = [{ key: `${action}:ip:${address}`, limit: rule.addressLimit }];
  if (subject.email !== undefined) {
    const account = subject.email.trim().toLowerCase();
    buckets.push(
      PER_ACCOUNT_AND_ADDRESS.has(action)
        ? { key: `${action}:account-address:${digest(`${account}\n${address}`)}`, limit: rule.limit }
        : { key: `${action}:account:${digest(account)}`, limit: rule.limit },
    );
  }
  if (subject.token !== undefined) buckets.push({ key: `${action}:token:${digest(subject.token.trim())}`, limit: rule.limit });
  return buckets;
}
