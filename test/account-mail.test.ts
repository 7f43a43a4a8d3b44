import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import {
  LoginDocument,
  MeDocument,
  RegisterDocument,
  RequestPasswordResetDocument,
  ResendVerificationEmailDocument,
  ResetPasswordDocument,
  VerifyEmailDocument,
} from './generated/graphql.js';
import { RESET_URL, VERIFY_URL, mailEnv, registration, startLoggedServer, type LogEntry } from './support/accounts.js';
import { baseTestEnv, ENGINES, type TestServer } from './support/server.js';
import { startSmtpServer, tokenFromMail, type TestSmtpServer } from './support/smtp.js';

const mailFailures = (logs: LogEntry[], to: string) => logs.filter((l) => l.level === 'error' && l.msg === 'mail not sent' && l.fields.to === to);

describe.each(ENGINES)('account mail on %s', (engine) => {
  describe('through SMTP', () => {
    let smtp: TestSmtpServer;
    let server: TestServer & { logs: LogEntry[] };

    beforeAll(async () => {
      smtp = await startSmtpServer();
      server = await startLoggedServer(engine, mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'mandatory', SITE_NAME: 'Acme Labs', EMAIL_VERIFICATION_TTL_SECONDS: '7200' }));
    });
    afterAll(async () => {
      await server?.stop();
      await smtp?.stop();
    });
    afterEach(async () => {
      smtp.accept();
      if (!smtp.running) await smtp.start();
    });

    it('names the site and the link lifetime, and escapes the link in the HTML part', async () => {
      const input = registration();
      await server.client().ok(RegisterDocument, { input });
      const mail = await smtp.waitForMail(input.email);
      expect(mail.subject).toBe('[Acme Labs] Please Confirm Your E-mail Address');
      expect(mail.text).toMatch(/^Hello from Acme Labs!/);
      expect(mail.text).toContain('This link expires in 2 hours and works once.');
      expect(mail.text).not.toContain(input.firstName);
      expect(mail.html).toContain(`<a href="${VERIFY_URL}?token=${tokenFromMail(mail, VERIFY_URL)}">`);
    });

    it('keeps the account when the mail server refuses (550), logs it, and resendVerificationEmail works later', async () => {
      smtp.refuse(550);
      const input = registration();
      const { register } = await server.client().ok(RegisterDocument, { input });
      expect(register).toMatchObject({ token: null, verificationEmailSent: false, user: { email: input.email } });
      const [failure] = mailFailures(server.logs, input.email);
      expect(failure.fields).toMatchObject({ kind: 'verify-email', responseCode: 550 });
      await server.client().fails(LoginDocument, { email: input.email, password: input.password }, 'FORBIDDEN');

      smtp.accept();
      await server.client().ok(ResendVerificationEmailDocument, { email: input.email });
      await server.client().ok(VerifyEmailDocument, { token: tokenFromMail(await smtp.waitForMail(input.email), VERIFY_URL) });
      const { login } = await server.client().ok(LoginDocument, { email: input.email, password: input.password });
      expect((await server.client(login.token!).ok(MeDocument)).me?.emailVerified).toBe(true);
    });

    it('keeps the account when the mail server is down, and sends once it is back', async () => {
      await smtp.stop();
      const input = registration();
      const { register } = await server.client().ok(RegisterDocument, { input });
      expect(register.verificationEmailSent).toBe(false);
      expect(mailFailures(server.logs, input.email)).toHaveLength(1);

      await smtp.start();
      await server.client().ok(ResendVerificationEmailDocument, { email: input.email });
      await server.client().ok(VerifyEmailDocument, { token: tokenFromMail(await smtp.waitForMail(input.email), VERIFY_URL) });
      await server.client().ok(LoginDocument, { email: input.email, password: input.password });
    });

    it('answers true to requestPasswordReset while the server refuses for now (451), logs it, and a later request works', async () => {
      const input = registration();
      await server.client().ok(RegisterDocument, { input });
      await server.client().ok(VerifyEmailDocument, { token: tokenFromMail(await smtp.waitForMail(input.email), VERIFY_URL) });
      smtp.refuse(451);
      expect((await server.client().ok(RequestPasswordResetDocument, { email: input.email })).requestPasswordReset).toBe(true);
      await server.app.deps.mailer.drain();
      expect(mailFailures(server.logs, input.email)[0].fields).toMatchObject({ kind: 'reset-password', responseCode: 451 });

      smtp.accept();
      await server.client().ok(RequestPasswordResetDocument, { email: input.email });
      const token = tokenFromMail(await smtp.waitForMail(input.email), RESET_URL);
      await server.client().ok(ResetPasswordDocument, { token, newPassword: 'quiet-meadow-sparrow-77' });
      await server.client().ok(LoginDocument, { email: input.email, password: 'quiet-meadow-sparrow-77' });
    });
  });

  describe('in development mode without EMAIL_HOST', () => {
    let server: TestServer & { logs: LogEntry[] };
    beforeAll(async () => {
      server = await startLoggedServer(engine, mailEnv(null, { NODE_ENV: 'development', ACCOUNT_EMAIL_VERIFICATION: 'optional' }));
    });
    afterAll(() => server?.stop());

    it('writes each mail to the log, clearly marked, with a link that works', async () => {
      expect(server.logs.some((l) => l.msg.includes('EMAIL_HOST is not set: mails are written to the log'))).toBe(true);
      const input = registration();
      const { register } = await server.client().ok(RegisterDocument, { input });
      expect(register.verificationEmailSent).toBe(true);
      const entry = server.logs.find((l) => l.fields.mail === 'development-log' && l.fields.to === input.email)!;
      expect(entry.msg).toMatch(/^MAIL NOT SENT \(development mode, no EMAIL_HOST\)/);
      expect(entry.level).toBe('warn');
      const token = tokenFromMail({ text: String(entry.fields.text) } as never, VERIFY_URL);
      await server.client().ok(VerifyEmailDocument, { token });
    });
  });

  describe('start-up', () => {
    it.each(['optional', 'mandatory', ''])('fails in production mode without EMAIL_HOST while verification is %j, naming EMAIL_HOST', (mode) => {
      const env = { ...baseTestEnv(), NODE_ENV: 'production', ACCOUNT_EMAIL_VERIFICATION: mode };
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(loadConfigProblems(env)).toEqual([expect.stringMatching(/^EMAIL_HOST: required in production mode while ACCOUNT_EMAIL_VERIFICATION=/)]);
      expect(loadConfigProblems({ ...env, ACCOUNT_EMAIL_VERIFICATION: 'none' })).toEqual([]);
      expect(loadConfigProblems({ ...env, EMAIL_HOST: 'smtp.example.org' })).toEqual([]);
    });

    it('names each bad mail or rate limit variable', () => {
      const env = { ...baseTestEnv(), FRONTEND_VERIFY_EMAIL_URL: 'https://app.example.test/verify', RATE_LIMIT_LOGIN: 'ten' };
      expect(loadConfigProblems({ ...env, RATE_LIMIT_ADDRESS_MULTIPLIER: '0' })).toEqual(
        expect.arrayContaining(['RATE_LIMIT_ADDRESS_MULTIPLIER: must be an integer from 1 to 1000']),
      );
      expect(loadConfigProblems(env)).toEqual([
        'RATE_LIMIT_LOGIN: must look like ATTEMPTS/SECONDS, e.g. 10/300',
        'FRONTEND_VERIFY_EMAIL_URL: must contain {token}',
      ]);
    });
  });
});

function loadConfigProblems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    return (err as ConfigError).problems;
  }
}
