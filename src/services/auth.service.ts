import type { EntityManager } from '@mikro-orm/core';
import { ConfigError, type Config } from '../config.js';
import { Session, User } from '../entities/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import { PASSWORD_MESSAGES, passwordProblem } from './password-policy.js';
import { dummyPasswordHash, hashPassword, verifyPassword } from './passwords.js';
import type { AccountEvents } from './account.events.js';
import type { SessionTokens } from './session-tokens.js';

export interface IssuedSession {
  token: string;
  expiresAt: Date;
}

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** Sign-in and sessions: the part of accounts every other feature relies on. */
export class AuthService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: Config,
    private readonly tokens: SessionTokens,
    private readonly accountEvents: AccountEvents,
  ) {}

  /**
   * Checks the credentials and opens a session. Wrong e-mail, wrong password and a deactivated
   * account give the same error, after the same amount of work (one argon2id verification).
   */
  async login(email: string, password: string): Promise<{ user: User; session: IssuedSession }> {
    const user = await this.em.findOne(User, { email: normalizeEmail(email) }, { populate: ['passwordHash'] });
    const ok = await verifyPassword(user?.passwordHash ?? (await dummyPasswordHash()), password);
    // Not FORBIDDEN for a deactivated account: that would confirm the account and its password to
    // whoever holds them, and answering before verifying would show in the timing.
    if (!user || !ok || !user.isActive) throw new AppError('Wrong e-mail or password', 'UNAUTHENTICATED');
    if (this.config.auth.emailVerification === 'mandatory' && !user.emailVerified) {
      throw new AppError('E-mail address not verified yet: follow the link in the verification e-mail', 'FORBIDDEN', {
        reason: 'EMAIL_NOT_VERIFIED',
      });
    }
    user.lastLogin = new Date();
    const session = await this.openSession(user);
    return { user, session };
  }

  async openSession(user: User): Promise<IssuedSession> {
    const expiresAt = new Date(Date.now() + this.config.auth.sessionTtlSeconds * 1000);
    const id = this.tokens.newSessionId();
    this.em.create(Session, { id, user, expiresAt } as unknown as Session);
    await this.em.flush();
    return { token: await this.tokens.sign({ userId: user.id, sessionId: id }, expiresAt), expiresAt };
  }

  /** Revokes one session at once; every replica checks the row on each request. */
  async revokeSession(sessionId: string, userId: number): Promise<void> {
    await this.em.nativeUpdate(Session, { id: sessionId, revokedAt: null }, { revokedAt: new Date() });
    this.accountEvents.publish({ kind: 'sessions-ended', userId, sessionId });
  }
}

/** Creates the start-up admin from SUPERUSER_* when no user has that e-mail. Idempotent. */
export async function ensureSuperuser(em: EntityManager, config: Config, logger: Logger): Promise<void> {
  const su = config.auth.superuser;
  if (!su) return;
  const email = normalizeEmail(su.email);
  if (await em.count(User, { email })) return;
  // The same policy as every other password: an admin account is the last one to leave weak.
  const problem = passwordProblem(su.password, { email, firstName: su.firstName });
  if (problem) throw new ConfigError([`SUPERUSER_PASSWORD: ${PASSWORD_MESSAGES[problem]}`]);
  em.create(User, {
    email,
    passwordHash: await hashPassword(su.password),
    firstName: su.firstName,
    isAdmin: true,
    isTrusted: true,
    emailVerified: true,
  } as User);
  try {
    await em.flush();
    logger.info('superuser created', { email });
  } catch (err) {
    // Another replica created it first.
    if (!(await em.fork().count(User, { email }))) throw err;
  }
}
