import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountToken, Session, User } from '../src/entities/index.js';
import {
  LoginDocument,
  LogoutDocument,
  MeDocument,
  RegisterDocument,
  RequestPasswordResetDocument,
  ResendVerificationEmailDocument,
  UpdateMeDocument,
  VerifyEmailDocument,
} from './generated/graphql.js';
import { RESET_URL, VERIFY_URL, mailEnv, registration, uniqueEmail } from './support/accounts.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { startSmtpServer, tokenFromMail, type TestSmtpServer } from './support/smtp.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe.each(ENGINES)('accounts on %s', (engine) => {
  let smtp: TestSmtpServer;
  let server: TestServer;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestServer(engine, mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'optional' }));
  });
  afterAll(async () => {
    await server?.stop();
    await smtp?.stop();
  });

  const verificationToken = async (email: string) => tokenFromMail(await smtp.waitForMail(email), VERIFY_URL);

  describe('with optional verification (the default)', () => {
    it('registers, keeps the display name, returns a working token and mails a link to the front-end page', async () => {
      const input = registration({ displayName: 'Countess of Lovelace' });
      const { register } = await server.client().ok(RegisterDocument, { input });
      expect(register.token).toEqual(expect.any(String));
      expect(new Date(register.expiresAt!).getTime()).toBeGreaterThan(Date.now());
      expect(register.verificationEmailSent).toBe(true);
      expect(register.user).toMatchObject({
        email: input.email,
        firstName: 'Ada',
        lastName: 'Lovelace',
        displayName: 'Countess of Lovelace',
        fullName: 'Ada Lovelace',
        realDisplayName: 'Countess of Lovelace',
        emailVerified: false,
        isTrusted: false,
        isAdmin: false,
        isActive: true,
      });
      const { me } = await server.client(register.token!).ok(MeDocument);
      expect(me?.id).toBe(register.user.id);

      const mail = await smtp.waitForMail(input.email);
      expect(mail.from).toBe('noreply@example.test');
      expect(mail.subject).toBe('[Lab Orchestrator] Please Confirm Your E-mail Address');
      expect(mail.text).toContain('has given your e-mail address to register an account on Lab Orchestrator');
      expect(mail.text).toContain('To confirm this is correct');
      expect(mail.text).toContain('This link expires in 3 days');
      const token = tokenFromMail(mail, VERIFY_URL);
      expect(token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
      expect(mail.html).toContain(`href="${VERIFY_URL}?token=${token}"`);

      expect((await server.client().ok(VerifyEmailDocument, { token })).verifyEmail).toBe(true);
      expect((await server.client(register.token!).ok(MeDocument)).me?.emailVerified).toBe(true);
    });

    it('stores only the SHA-256 of a mailed token', async () => {
      const input = registration();
      const { register } = await server.client().ok(RegisterDocument, { input });
      const token = await verificationToken(input.email);
      const rows = await server.app.deps.orm.em.fork().find(AccountToken, { user: Number(register.user.id) });
      expect(rows.map((r) => [r.purpose, r.tokenHash])).toEqual([['verify-email', sha256(token)]]);
      expect(JSON.stringify(rows)).not.toContain(token);
    });

    it('accepts a verification link once: the second use is BAD_USER_INPUT on token', async () => {
      const input = registration();
      await server.client().ok(RegisterDocument, { input });
      const token = await verificationToken(input.email);
      await server.client().ok(VerifyEmailDocument, { token });
      const error = await server.client().fails(VerifyEmailDocument, { token }, 'BAD_USER_INPUT', 'token');
      expect(error.message).toMatch(/invalid or has already been used/);
      await server.client().fails(VerifyEmailDocument, { token: 'made-up-token' }, 'BAD_USER_INPUT', 'token');
    });

    it('refuses an expired verification link, and a fresh one from resendVerificationEmail works', async () => {
      const input = registration();
      const { register } = await server.client().ok(RegisterDocument, { input });
      const token = await verificationToken(input.email);
      await server.app.deps.orm.em.fork().nativeUpdate(AccountToken, { user: Number(register.user.id) }, { expiresAt: new Date(Date.now() - 1000) });
      const error = await server.client().fails(VerifyEmailDocument, { token }, 'BAD_USER_INPUT', 'token');
      expect(error.message).toMatch(/expired/);

      expect((await server.client().ok(ResendVerificationEmailDocument, { email: input.email.toUpperCase() })).resendVerificationEmail).toBe(true);
      const fresh = await verificationToken(input.email);
      expect(fresh).not.toBe(token);
      await server.client().ok(VerifyEmailDocument, { token: fresh });
      expect((await server.client(register.token!).ok(MeDocument)).me?.emailVerified).toBe(true);
    });

    it('answers CONFLICT on email for an address already registered, whatever its case', async () => {
      const input = registration();
      await server.client().ok(RegisterDocument, { input });
      const error = await server.client().fails(RegisterDocument, { input: { ...input, email: input.email.toUpperCase() } }, 'CONFLICT', 'email');
      expect(error.message).toBe('A user is already registered with this e-mail address');
    });

    it.each([
      [{ email: 'not-an-address' }, 'email'],
      [{ email: `${'a'.repeat(250)}@example.org` }, 'email'],
      [{ firstName: '' }, 'firstName'],
      [{ firstName: '   ' }, 'firstName'],
      [{ lastName: 'x'.repeat(151) }, 'lastName'],
      [{ displayName: 'x'.repeat(151) }, 'displayName'],
    ])('rejects %j as BAD_USER_INPUT on the field', async (override, field) => {
      await server.client().fails(RegisterDocument, { input: registration(override) }, 'BAD_USER_INPUT', field);
    });

    it('accepts an empty last name and display name, as the original', async () => {
      const { register } = await server.client().ok(RegisterDocument, { input: { email: uniqueEmail(), password: 'violet-harbour-lantern-42', firstName: 'Grace' } });
      expect(register.user).toMatchObject({ lastName: '', displayName: '', fullName: 'Grace', realDisplayName: 'Grace' });
    });

    it.each([
      ['short', { password: 'k9#Lm2' }, 'too short: it must contain at least 8 characters'],
      ['numeric', { password: '8675309274' }, 'entirely numeric'],
      ['common', { password: 'iloveyou2' }, 'too common'],
      ['common in another case', { password: 'Password1' }, 'too common'],
      ['like the e-mail', { email: 'margaret.hamilton@example.org', password: 'margaret.hamilton' }, 'too similar'],
      ['like the name', { firstName: 'Katherine', lastName: 'Johnson', password: 'katherine1969' }, 'too similar'],
    ])('refuses a %s password on the password field with its own message', async (_what, override, message) => {
      const input = registration(override);
      const error = await server.client().fails(RegisterDocument, { input }, 'BAD_USER_INPUT', 'password');
      expect(error.message).toContain(message);
      expect(error.message).not.toContain(input.password);
    });

    it('gives the same error for a wrong password and an unknown e-mail', async () => {
      const input = registration();
      await server.client().ok(RegisterDocument, { input });
      const wrongPassword = await server.client().fails(LoginDocument, { email: input.email, password: 'not-the-password' }, 'UNAUTHENTICATED');
      const unknown = await server.client().fails(LoginDocument, { email: uniqueEmail('nobody'), password: input.password }, 'UNAUTHENTICATED');
      expect(unknown).toEqual(wrongPassword);
      const { login } = await server.client().ok(LoginDocument, { email: `  ${input.email.toUpperCase()} `, password: input.password });
      expect(login.user.email).toBe(input.email);
    });

    it('logout makes its token unusable on the very next request, and only that token', async () => {
      const input = registration();
      const { register } = await server.client().ok(RegisterDocument, { input });
      const { login } = await server.client().ok(LoginDocument, { email: input.email, password: input.password });
      expect((await server.client(login.token!).ok(LogoutDocument)).logout).toBe(true);
      await server.client(login.token!).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await server.client(login.token!).fails(LogoutDocument, undefined, 'UNAUTHENTICATED');
      expect((await server.client(register.token!).ok(MeDocument)).me?.email).toBe(input.email);
      await server.client().fails(LogoutDocument, undefined, 'UNAUTHENTICATED');
    });

    it('refuses a session token once its session has expired', async () => {
      const { register } = await server.client().ok(RegisterDocument, { input: registration() });
      await server.app.deps.orm.em.fork().nativeUpdate(Session, { user: Number(register.user.id) }, { expiresAt: new Date(Date.now() - 1000) });
      await server.client(register.token!).fails(MeDocument, undefined, 'UNAUTHENTICATED');
    });

    it("updateMe changes the caller's names and recomputes the derived ones", async () => {
      const { register } = await server.client().ok(RegisterDocument, { input: registration({ displayName: '' }) });
      const me = server.client(register.token!);
      const { updateMe } = await me.ok(UpdateMeDocument, { input: { firstName: '  Augusta ', lastName: 'King' } });
      expect(updateMe).toMatchObject({ firstName: 'Augusta', lastName: 'King', fullName: 'Augusta King', realDisplayName: 'Augusta King', displayName: '' });
      const { updateMe: again } = await me.ok(UpdateMeDocument, { input: { displayName: 'AAL' } });
      expect(again).toMatchObject({ firstName: 'Augusta', realDisplayName: 'AAL', email: register.user.email });
      await me.fails(UpdateMeDocument, { input: { firstName: ' ' } }, 'BAD_USER_INPUT', 'firstName');
      await me.fails(UpdateMeDocument, { input: { lastName: 'x'.repeat(151) } }, 'BAD_USER_INPUT', 'lastName');
      await me.fails('mutation { updateMe(input: { email: "x@example.org" }) { id } }', undefined, 'BAD_USER_INPUT');
      await server.client().fails(UpdateMeDocument, { input: { firstName: 'Anon' } }, 'UNAUTHENTICATED');
    });
  });

  describe('with mandatory verification', () => {
    let strict: TestServer;
    beforeAll(async () => {
      strict = await startTestServer(engine, mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'mandatory' }));
    });
    afterAll(() => strict?.stop());

    it('registers without a token, refuses login until the address is verified, then lets the user in', async () => {
      const input = registration();
      const { register } = await strict.client().ok(RegisterDocument, { input });
      expect(register).toMatchObject({ token: null, expiresAt: null, verificationEmailSent: true, user: { email: input.email, emailVerified: false } });
      const error = await strict.client().fails(LoginDocument, { email: input.email, password: input.password }, 'FORBIDDEN');
      expect(error.message).toMatch(/not verified/i);
      expect(error.extensions?.reason).toBe('EMAIL_NOT_VERIFIED');

      await strict.client().ok(VerifyEmailDocument, { token: await verificationToken(input.email) });
      const { login } = await strict.client().ok(LoginDocument, { email: input.email, password: input.password });
      expect((await strict.client(login.token!).ok(MeDocument)).me?.emailVerified).toBe(true);
    });

    it('still refuses a wrong password with UNAUTHENTICATED, not with the verification reason', async () => {
      const input = registration();
      await strict.client().ok(RegisterDocument, { input });
      await smtp.waitForMail(input.email);
      await strict.client().fails(LoginDocument, { email: input.email, password: 'not-the-password' }, 'UNAUTHENTICATED');
    });

    it('mails a new link on resendVerificationEmail; using one link voids the others', async () => {
      const input = registration();
      await strict.client().ok(RegisterDocument, { input });
      const first = await verificationToken(input.email);
      await strict.client().ok(ResendVerificationEmailDocument, { email: input.email });
      const second = await verificationToken(input.email);
      await strict.client().ok(VerifyEmailDocument, { token: second });
      await strict.client().fails(VerifyEmailDocument, { token: first }, 'BAD_USER_INPUT', 'token');
      await strict.client().ok(LoginDocument, { email: input.email, password: input.password });
    });
  });

  describe('with verification off (none)', () => {
    let open: TestServer;
    beforeAll(async () => {
      open = await startTestServer(engine, mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'none' }));
    });
    afterAll(() => open?.stop());

    it('registers with a token and sends no mail, not even on resendVerificationEmail', async () => {
      const input = registration();
      const { register } = await open.client().ok(RegisterDocument, { input });
      expect(register).toMatchObject({ verificationEmailSent: false, user: { emailVerified: false } });
      expect((await open.client(register.token!).ok(MeDocument)).me?.email).toBe(input.email);
      expect((await open.client().ok(ResendVerificationEmailDocument, { email: input.email })).resendVerificationEmail).toBe(true);
      await open.client().ok(RequestPasswordResetDocument, { email: input.email });
      await open.app.deps.mailer.drain();
      expect(smtp.mailsTo(input.email).map((m) => m.subject)).toEqual(['[Lab Orchestrator] Password Reset E-mail']);
      expect(tokenFromMail(await smtp.waitForMail(input.email), RESET_URL)).toBeTruthy();
    });

    it('lets unverified users log in', async () => {
      const input = registration();
      await open.client().ok(RegisterDocument, { input });
      const em = open.app.deps.orm.em.fork();
      expect((await em.findOneOrFail(User, { email: input.email })).emailVerified).toBe(false);
      await open.client().ok(LoginDocument, { email: input.email, password: input.password });
    });
  });
});
