import { createHash, randomBytes } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/core';
import type { Config } from '../config.js';
import { AccountToken, Session, User } from '../entities/index.js';
import type { AccountTokenPurpose } from '../entities/index.js';
import { badInput, conflict } from '../errors.js';
import type { AccountEvents } from './account.events.js';
import type { Mailer } from '../mail/mailer.js';
import type { MailTemplate } from '../mail/templates.js';
import { normalizeEmail, type AuthService, type IssuedSession } from './auth.service.js';
import { checkPassword } from './password-policy.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { RateLimiter } from './rate-limiter.js';

export interface RegisterData {
  email: string;
  password: string;
  firstName: string;
  lastName?: string | null;
  displayName?: string | null;
}

export interface RegisterResult {
  user: User;
  /** Null while e-mail verification is mandatory and pending. */
  session: IssuedSession | null;
  verificationEmailSent: boolean;
}

export interface ProfileData {
  firstName?: string | null;
  lastName?: string | null;
  displayName?: string | null;
}

const INVALID_LINK = 'This link is invalid or has already been used';
const EXPIRED_LINK = 'This link has expired: ask for a new one';
/** Longer than any token this server makes; such input is refused without a query. */
const MAX_TOKEN_LENGTH = 128;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Revokes every session of the user (but `keep`) in one statement; each replica checks sessions on every request. */
export async function revokeSessions(em: EntityManager, userId: number, keep?: string): Promise<void> {
  const where = keep ? { user: userId, revokedAt: null, id: { $ne: keep } } : { user: userId, revokedAt: null };
  await em.nativeUpdate(Session, where, { revokedAt: new Date() });
}

/**
 * Work for a known account waits this long (ms, at random in the range) after the answer: long
 * enough that it never delays the answer on its way out, and at a random moment, so that a request
 * right behind it (or a client on the same host) cannot tie the extra load to the request.
 */
const BACKGROUND_DELAY_MS = { min: 50, max: 150 };

const afterAnswer = () => {
  const { min, max } = BACKGROUND_DELAY_MS;
  return new Promise<void>((resolve) => setTimeout(resolve, min + Math.random() * (max - min)));
};

/**
 * The account life cycle: registration, e-mail verification, passwords and the caller's profile.
 * Mails go out after the commit; a mail that cannot be sent is logged and never fails the request.
 */
export class AccountService {
  constructor(
    private readonly em: EntityManager,
    private readonly config: Config,
    private readonly auth: AuthService,
    private readonly mailer: Mailer,
    private readonly limiter: RateLimiter,
    private readonly accountEvents: AccountEvents,
  ) {}

  /** AuthService.login behind the login rate limit (per address and per e-mail, known or not). */
  async login(email: string, password: string, ip: string) {
    await this.limiter.consume('login', { ip, email });
    return this.auth.login(email, password);
  }

  /**
   * Creates the account and, unless ACCOUNT_EMAIL_VERIFICATION=none, mails a verification link.
   * No session while verification is mandatory.
   * @throws BAD_USER_INPUT (field `password`) for a weak password; CONFLICT (field `email`) for a taken address.
   */
  async register(data: RegisterData, ip: string): Promise<RegisterResult> {
    await this.limiter.consume('register', { ip, email: data.email });
    const email = normalizeEmail(data.email);
    const names = { firstName: data.firstName.trim(), lastName: data.lastName?.trim() ?? '', displayName: data.displayName?.trim() ?? '' };
    checkPassword(data.password, { email, ...names }, 'password');
    if (await this.em.count(User, { email })) throw emailTaken();
    const user = this.em.create(User, { email, passwordHash: await hashPassword(data.password), ...names } as User);
    const mode = this.config.auth.emailVerification;
    const token = mode === 'none' ? null : this.newToken(this.em, user, 'verify-email');
    try {
      await this.em.flush();
    } catch (err) {
      throw err instanceof UniqueConstraintViolationException ? emailTaken() : err;
    }
    const verificationEmailSent = token ? await this.mailer.send(this.mail(user.email, 'verify-email', token)) : false;
    const session = mode === 'mandatory' ? null : await this.auth.openSession(user);
    return { user, session, verificationEmailSent };
  }

  /**
   * Marks the address verified. The link works once; using it voids the user's other verification links.
   * @throws BAD_USER_INPUT (field `token`) for an unknown, used or expired token.
   */
  async verifyEmail(token: string, ip: string): Promise<boolean> {
    await this.limiter.consume('verifyEmail', { ip });
    const row = await this.usableToken(token, 'verify-email');
    await this.em.transactional(async (tx) => {
      await consumeToken(tx, row);
      await tx.nativeUpdate(User, { id: row.user.id }, { emailVerified: true });
    });
    return true;
  }

  /**
   * Always true: whether the address is known, verified or active shows neither in the answer nor
   * in its timing. The request does the same work for every address (rate limit, one lookup); the
   * token and the mail for an unverified active account are made after the answer (mailInBackground).
   */
  async resendVerificationEmail(email: string, ip: string): Promise<boolean> {
    await this.limiter.consume('resendVerification', { ip, email });
    if (this.config.auth.emailVerification === 'none') return true;
    const user = await this.em.findOne(User, { email: normalizeEmail(email) });
    if (user?.isActive && !user.emailVerified) this.mailInBackground(user, 'verify-email');
    return true;
  }

  /** Always true, in the same time, as resendVerificationEmail. Only active accounts get a mail. */
  async requestPasswordReset(email: string, ip: string): Promise<boolean> {
    await this.limiter.consume('passwordReset', { ip, email });
    const user = await this.em.findOne(User, { email: normalizeEmail(email) });
    if (user?.isActive) this.mailInBackground(user, 'reset-password');
    return true;
  }

  /**
   * Sets the new password, revokes every session of the user at once, and marks the address
   * verified (the link proved the mailbox). A weak password leaves the link usable.
   * Attempts are rate-limited per address and per link: reset tokens cannot be guessed at leisure.
   * @throws BAD_USER_INPUT on `token` or on `newPassword`; RATE_LIMITED.
   */
  async resetPassword(token: string, newPassword: string, ip: string): Promise<boolean> {
    await this.limiter.consume('resetPassword', { ip, token });
    const row = await this.usableToken(token, 'reset-password');
    const user = row.user.getEntity();
    checkPassword(newPassword, user, 'newPassword');
    const passwordHash = await hashPassword(newPassword);
    await this.em.transactional(async (tx) => {
      await consumeToken(tx, row);
      await tx.nativeUpdate(User, { id: user.id }, { passwordHash, emailVerified: true });
      await revokeSessions(tx, user.id);
      this.accountEvents.publish({ kind: 'sessions-ended', userId: user.id });
    });
    return true;
  }

  /**
   * Requires the current password; revokes every other session of the user at once (the calling
   * one stays valid). Attempts count against the user's login rate limit.
   * @throws BAD_USER_INPUT on `currentPassword` or `newPassword`; RATE_LIMITED.
   */
  async changePassword(user: User, sessionId: string, currentPassword: string, newPassword: string, ip: string): Promise<boolean> {
    await this.limiter.consume('login', { ip, email: user.email });
    const fresh = await this.em.findOneOrFail(User, { id: user.id }, { populate: ['passwordHash'], refresh: true });
    if (!(await verifyPassword(fresh.passwordHash, currentPassword))) {
      throw badInput('currentPassword', 'The current password is wrong');
    }
    checkPassword(newPassword, fresh, 'newPassword');
    const passwordHash = await hashPassword(newPassword);
    await this.em.transactional(async (tx) => {
      await tx.nativeUpdate(User, { id: user.id }, { passwordHash });
      await revokeSessions(tx, user.id, sessionId);
      this.accountEvents.publish({ kind: 'sessions-ended', userId: user.id, keep: sessionId });
    });
    return true;
  }

  /** Changes the caller's names; omitted or null fields keep their value. The e-mail cannot change. */
  async updateMe(user: User, data: ProfileData): Promise<User> {
    if (data.firstName != null) user.firstName = data.firstName.trim();
    if (data.lastName != null) user.lastName = data.lastName.trim();
    if (data.displayName != null) user.displayName = data.displayName.trim();
    await this.em.flush();
    return user;
  }

  /**
   * Issues a link and mails it once the answer is out, on an EntityManager of its own (the
   * request's is done by then). The mailer tracks it, so drain() and app.stop() wait for it; a
   * failure is logged there and never reaches the client, who was answered already.
   */
  private mailInBackground(user: User, purpose: AccountTokenPurpose): void {
    const { id, email } = user;
    void this.mailer.sendWhenReady(async () => {
      await afterAnswer();
      const token = await this.issueToken(this.em.fork(), id, purpose);
      return this.mail(email, purpose, token);
    });
  }

  private mail(to: string, purpose: AccountTokenPurpose, token: string): MailTemplate {
    return { kind: purpose, to, token, ttlSeconds: this.ttlOf(purpose) };
  }

  private ttlOf(purpose: AccountTokenPurpose): number {
    return purpose === 'verify-email' ? this.config.auth.verificationTokenTtlSeconds : this.config.auth.passwordResetTokenTtlSeconds;
  }

  /** A random token (32 bytes, base64url) whose SHA-256 is persisted with the next flush of `em`. */
  private newToken(em: EntityManager, user: User, purpose: AccountTokenPurpose): string {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.ttlOf(purpose) * 1000);
    em.create(AccountToken, { tokenHash: sha256(token), purpose, user, expiresAt } as unknown as AccountToken);
    return token;
  }

  /** Stores a new token for an existing user, dropping that user's used and expired ones. */
  private async issueToken(em: EntityManager, userId: number, purpose: AccountTokenPurpose): Promise<string> {
    await em.nativeDelete(AccountToken, { user: userId, $or: [{ usedAt: { $ne: null } }, { expiresAt: { $lt: new Date() } }] });
    const token = this.newToken(em, em.getReference(User, userId), purpose);
    await em.flush();
    return token;
  }

  private async usableToken(token: string, purpose: AccountTokenPurpose): Promise<AccountToken> {
    const value = token.trim();
    const row =
      value && value.length <= MAX_TOKEN_LENGTH
        ? await this.em.findOne(AccountToken, { tokenHash: sha256(value), purpose }, { populate: ['user'] })
        : null;
    if (!row || row.usedAt || !row.user.getEntity().isActive) throw badInput('token', INVALID_LINK);
    if (row.expiresAt.getTime() <= Date.now()) throw badInput('token', EXPIRED_LINK);
    return row;
  }
}

const emailTaken = () => conflict('A user is already registered with this e-mail address', 'email');

/** Uses the token exactly once, even under concurrent requests, and voids the user's other tokens of that purpose. */
async function consumeToken(tx: EntityManager, row: AccountToken): Promise<void> {
  const now = new Date();
  const used = await tx.nativeUpdate(AccountToken, { id: row.id, usedAt: null }, { usedAt: now });
  if (used !== 1) throw badInput('token', INVALID_LINK);
  await tx.nativeUpdate(AccountToken, { user: row.user.id, purpose: row.purpose, usedAt: null }, { usedAt: now });
}
