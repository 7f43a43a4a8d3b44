import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountToken, User } from '../src/entities/index.js';
import {
  ChangePasswordDocument,
  LoginDocument,
  LogoutDocument,
  MeDocument,
  RegisterDocument,
  RequestPasswordResetDocument,
  ResendVerificationEmailDocument,
  ResetPasswordDocument,
  UpdateUserDocument,
} from './generated/graphql.js';
import { RESET_URL, mailEnv, registration, uniqueEmail } from './support/accounts.js';
import { createAdmin, createUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { startSmtpServer, tokenFromMail, type TestSmtpServer } from './support/smtp.js';

const NEW_PASSWORD = 'quiet-meadow-sparrow-77';

describe.each(ENGINES)('passwords and sessions on %s', (engine) => {
  let smtp: TestSmtpServer;
  let server: Awaited<ReturnType<typeof startTestServer>>;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestServer(engine, mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'optional' }));
  });
  afterAll(async () => {
    await server?.stop();
    await smtp?.stop();
  });

  /** Registers and logs in twice: three tokens of one user. */
  async function userWithSessions(target: TestServer = server) {
    const input = registration();
    const { register } = await target.client().ok(RegisterDocument, { input });
    await smtp.waitForMail(input.email); // the verification mail, out of the way
    const second = (await target.client().ok(LoginDocument, { email: input.email, password: input.password })).login.token!;
    const third = (await target.client().ok(LoginDocument, { email: input.email, password: input.password })).login.token!;
    return { input, id: register.user.id, tokens: [register.token!, second, third] };
  }

  const resetToken = async (email: string) => {
    const mail = await smtp.waitForMail(email);
    expect(mail.subject).toBe('[Lab Orchestrator] Password Reset E-mail');
    expect(mail.text).toContain('you or someone else has requested a password for your user account');
    expect(mail.text).toContain('This link expires in 1 hour');
    return tokenFromMail(mail, RESET_URL);
  };

  describe('changePassword', () => {
    it('needs the current password, keeps the calling token and revokes every other one at once', async () => {
      const { input, tokens } = await userWithSessions();
      const [caller, ...others] = tokens;
      const me = server.client(caller);
      const wrong = await me.fails(ChangePasswordDocument, { currentPassword: 'not-it-at-all', newPassword: NEW_PASSWORD }, 'BAD_USER_INPUT', 'currentPassword');
      expect(wrong.message).toBe('The current password is wrong');
      for (const token of others) await server.client(token).ok(MeDocument);

      expect((await me.ok(ChangePasswordDocument, { currentPassword: input.password, newPassword: NEW_PASSWORD })).changePassword).toBe(true);
      expect((await me.ok(MeDocument)).me?.email).toBe(input.email);
      for (const token of others) await server.client(token).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await server.client().fails(LoginDocument, { email: input.email, password: input.password }, 'UNAUTHENTICATED');
      await server.client().ok(LoginDocument, { email: input.email, password: NEW_PASSWORD });
    });

    it.each([
      ['short', 'abc123', 'too short'],
      ['numeric', '1234567890123', 'entirely numeric'],
      ['common', 'sunshine', 'too common'],
      ['like the e-mail', null, 'too similar'],
    ])('refuses a %s new password on newPassword and leaves the password as it was', async (_what, password, message) => {
      const { input, tokens } = await userWithSessions();
      const newPassword = password ?? input.email.split('@')[0];
      const error = await server.client(tokens[0]).fails(ChangePasswordDocument, { currentPassword: input.password, newPassword }, 'BAD_USER_INPUT', 'newPassword');
      expect(error.message).toContain(message);
      await server.client(tokens[1]).ok(MeDocument);
      await server.client().ok(LoginDocument, { email: input.email, password: input.password });
    });

    it('is for signed-in users only', async () => {
      await server.client().fails(ChangePasswordDocument, { currentPassword: 'x', newPassword: NEW_PASSWORD }, 'UNAUTHENTICATED');
    });
  });

  describe('password reset', () => {
    it('mails a link; resetting revokes every token of the user at once and verifies the address', async () => {
      const { input, tokens } = await userWithSessions();
      expect((await server.client().ok(RequestPasswordResetDocument, { email: input.email.toUpperCase() })).requestPasswordReset).toBe(true);
      const token = await resetToken(input.email);
      expect((await server.client().ok(ResetPasswordDocument, { token, newPassword: NEW_PASSWORD })).resetPassword).toBe(true);
      for (const old of tokens) await server.client(old).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await server.client().fails(LoginDocument, { email: input.email, password: input.password }, 'UNAUTHENTICATED');
      const { login } = await server.client().ok(LoginDocument, { email: input.email, password: NEW_PASSWORD });
      expect((await server.client(login.token!).ok(MeDocument)).me?.emailVerified).toBe(true);
    });

    it('accepts a reset link once', async () => {
      const { input } = await userWithSessions();
      await server.client().ok(RequestPasswordResetDocument, { email: input.email });
      const token = await resetToken(input.email);
      await server.client().ok(ResetPasswordDocument, { token, newPassword: NEW_PASSWORD });
      await server.client().fails(ResetPasswordDocument, { token, newPassword: 'another-fine-passphrase' }, 'BAD_USER_INPUT', 'token');
      await server.client().ok(LoginDocument, { email: input.email, password: NEW_PASSWORD });
    });

    it('accepts a reset link once even when it is sent twice at the same moment', async () => {
      const { input } = await userWithSessions();
      await server.client().ok(RequestPasswordResetDocument, { email: input.email });
      const token = await resetToken(input.email);
      const results = await Promise.all(
        ['first-racing-passphrase', 'second-racing-passphrase'].map((newPassword) => server.client().request(ResetPasswordDocument, { token, newPassword })),
      );
      expect(results.map((r) => (r.errors ? r.errors[0].extensions?.code : 'ok')).sort()).toEqual(['BAD_USER_INPUT', 'ok']);
      const winner = results[0].errors ? 'second-racing-passphrase' : 'first-racing-passphrase';
      await server.client().ok(LoginDocument, { email: input.email, password: winner });
    });

    it('refuses a reset link of an account deactivated since it was sent', async () => {
      const admin = await createAdmin(server);
      const { input, id } = await userWithSessions();
      await server.client().ok(RequestPasswordResetDocument, { email: input.email });
      const token = await resetToken(input.email);
      await admin.client.ok(UpdateUserDocument, { id, input: { isActive: false } });
      await server.client().fails(ResetPasswordDocument, { token, newPassword: NEW_PASSWORD }, 'BAD_USER_INPUT', 'token');
    });

    it('refuses an expired reset link and leaves the password alone', async () => {
      const { input, id } = await userWithSessions();
      await server.client().ok(RequestPasswordResetDocument, { email: input.email });
      const token = await resetToken(input.email);
      await server.app.deps.orm.em.fork().nativeUpdate(AccountToken, { user: Number(id) }, { expiresAt: new Date(Date.now() - 1) });
      const error = await server.client().fails(ResetPasswordDocument, { token, newPassword: NEW_PASSWORD }, 'BAD_USER_INPUT', 'token');
      expect(error.message).toMatch(/expired/);
      await server.client().ok(LoginDocument, { email: input.email, password: input.password });
    });

    it('keeps the link usable after a refused weak password', async () => {
      const { input } = await userWithSessions();
      await server.client().ok(RequestPasswordResetDocument, { email: input.email });
      const token = await resetToken(input.email);
      await server.client().fails(ResetPasswordDocument, { token, newPassword: 'password' }, 'BAD_USER_INPUT', 'newPassword');
      await server.client().ok(ResetPasswordDocument, { token, newPassword: NEW_PASSWORD });
    });

    it('does not take a verification link as a reset link, nor the other way round', async () => {
      const input = registration();
      await server.client().ok(RegisterDocument, { input });
      const verifyMail = await smtp.waitForMail(input.email);
      const verifyToken = new URL(verifyMail.text.split(/\s+/).find((w) => w.startsWith('https://'))!).searchParams.get('token')!;
      await server.client().fails(ResetPasswordDocument, { token: verifyToken, newPassword: NEW_PASSWORD }, 'BAD_USER_INPUT', 'token');
    });
  });

  describe('no account enumeration', () => {
    it('answers true for known, unknown, verified and deactivated addresses, and mails only the ones it should', async () => {
      const unverified = registration();
      await server.client().ok(RegisterDocument, { input: unverified });
      await smtp.waitForMail(unverified.email);
      const verified = await createUser(server, { emailVerified: true });
      const inactive = await createUser(server, { isActive: false });
      const unknown = uniqueEmail('unknown');
      for (const email of [unverified.email, verified.email, inactive.email, unknown]) {
        expect((await server.client().ok(RequestPasswordResetDocument, { email })).requestPasswordReset).toBe(true);
        expect((await server.client().ok(ResendVerificationEmailDocument, { email })).resendVerificationEmail).toBe(true);
      }
      await server.app.deps.mailer.drain();
      expect(smtp.mailsTo(unverified.email)).toHaveLength(3); // registration, reset, new verification link
      expect(smtp.mailsTo(verified.email).map((m) => m.subject)).toEqual(['[Lab Orchestrator] Password Reset E-mail']);
      expect(smtp.mailsTo(inactive.email)).toEqual([]);
      expect(smtp.mailsTo(unknown)).toEqual([]);
    });
  });

  describe('deactivation', () => {
    it('revokes every token of the user at once; reactivation does not bring them back', async () => {
      const admin = await createAdmin(server);
      const { input, id, tokens } = await userWithSessions();
      await admin.client.ok(UpdateUserDocument, { id, input: { isActive: false } });
      for (const token of tokens) await server.client(token).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      // Answered as a wrong password: the right password must not confirm a deactivated account.
      const refused = await server.client().fails(LoginDocument, { email: input.email, password: input.password }, 'UNAUTHENTICATED');
      expect(refused.message).toBe('Wrong e-mail or password');
      await admin.client.ok(UpdateUserDocument, { id, input: { isActive: true } });
      for (const token of tokens) await server.client(token).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await server.client().ok(LoginDocument, { email: input.email, password: input.password });
    });
  });

  describe('across replicas sharing one database', () => {
    let replica: TestServer;
    beforeAll(async () => {
      replica = await startTestServer(engine, mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'optional' }), { databaseEnv: server.databaseEnv });
    });
    afterAll(() => replica?.stop());

    it('accepts a token on either replica and revokes it on both at once after logout', async () => {
      const { tokens } = await userWithSessions();
      await replica.client(tokens[0]).ok(MeDocument);
      await replica.client(tokens[0]).ok(LogoutDocument);
      await server.client(tokens[0]).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await replica.client(tokens[1]).ok(MeDocument);
    });

    it('revokes the other tokens on every replica after a password change on one', async () => {
      const { input, tokens } = await userWithSessions();
      await replica.client(tokens[0]).ok(ChangePasswordDocument, { currentPassword: input.password, newPassword: NEW_PASSWORD });
      await server.client(tokens[1]).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await server.client(tokens[2]).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      await server.client(tokens[0]).ok(MeDocument);
    });

    it('revokes every token on every replica after a reset or a deactivation on one', async () => {
      const reset = await userWithSessions();
      await server.client().ok(RequestPasswordResetDocument, { email: reset.input.email });
      await replica.client().ok(ResetPasswordDocument, { token: await resetToken(reset.input.email), newPassword: NEW_PASSWORD });
      for (const token of reset.tokens) await server.client(token).fails(MeDocument, undefined, 'UNAUTHENTICATED');

      const admin = await createAdmin(server);
      const deactivated = await userWithSessions();
      await replica.client(admin.token).ok(UpdateUserDocument, { id: deactivated.id, input: { isActive: false } });
      for (const token of deactivated.tokens) await server.client(token).fails(MeDocument, undefined, 'UNAUTHENTICATED');
      const em = server.app.deps.orm.em.fork();
      expect((await em.findOneOrFail(User, { id: Number(deactivated.id) })).isActive).toBe(false);
    });
  });
});
