import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RateLimitBucket } from '../src/entities/index.js';
import {
  ChangePasswordDocument,
  LoginDocument,
  RegisterDocument,
  RequestPasswordResetDocument,
  ResendVerificationEmailDocument,
  VerifyEmailDocument,
} from './generated/graphql.js';
import { mailEnv, registration, uniqueEmail } from './support/accounts.js';
import { createUser, DEFAULT_PASSWORD } from './support/factories.js';
import type { GqlError } from './support/graphql-client.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { startSmtpServer, type TestSmtpServer } from './support/smtp.js';

/** Per account: login 3, register 3, reset 2, resend 2; per address four times as many. */
const LIMITS = {
  RATE_LIMIT_LOGIN: '3/600',
  RATE_LIMIT_REGISTER: '3/600',
  RATE_LIMIT_PASSWORD_RESET: '2/600',
  RATE_LIMIT_RESEND_VERIFICATION: '2/600',
  RATE_LIMIT_VERIFY_EMAIL: '3/600',
  RATE_LIMIT_ADDRESS_MULTIPLIER: '4',
};

function expectRetryAfter(error: GqlError, windowSeconds = 600): void {
  expect(error.message).toMatch(/Too many attempts/);
  expect(error.extensions?.retryAfterSeconds).toEqual(expect.any(Number));
  expect(error.extensions!.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  expect(error.extensions!.retryAfterSeconds).toBeLessThanOrEqual(windowSeconds);
}

describe.each(ENGINES)('rate limits on %s', (engine) => {
  let smtp: TestSmtpServer;
  let server: Awaited<ReturnType<typeof startTestServer>>;

  beforeAll(async () => {
    smtp = await startSmtpServer();
    server = await startTestServer(engine, { ...mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'optional' }), ...LIMITS });
  });
  afterAll(async () => {
    await server?.stop();
    await smtp?.stop();
  });
  // Every test client comes from 127.0.0.1: each test starts with fresh windows.
  beforeEach(() => server.app.deps.orm.em.fork().nativeDelete(RateLimitBucket, {}));

  const login = (email: string, password = 'not-the-password', target: TestServer = server) =>
    target.client().request(LoginDocument, { email, password });

  it('limits login per account, for known and unknown addresses alike, and leaves other accounts alone', async () => {
    const known = await createUser(server);
    const unknown = uniqueEmail('ghost');
    for (const email of [known.email, unknown]) {
      for (let i = 0; i < 3; i++) expect((await login(email)).errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    }
    const knownError = await server.client().fails(LoginDocument, { email: known.email, password: DEFAULT_PASSWORD }, 'RATE_LIMITED');
    const unknownError = await server.client().fails(LoginDocument, { email: unknown.toUpperCase(), password: DEFAULT_PASSWORD }, 'RATE_LIMITED');
    expectRetryAfter(knownError);
    expectRetryAfter(unknownError);
    const other = await createUser(server);
    await server.client().ok(LoginDocument, { email: other.email, password: DEFAULT_PASSWORD });
  });

  it('limits by client address across accounts', async () => {
    for (let i = 0; i < 8; i++) await server.client().ok(RequestPasswordResetDocument, { email: uniqueEmail('many') });
    expectRetryAfter(await server.client().fails(RequestPasswordResetDocument, { email: uniqueEmail('many') }, 'RATE_LIMITED'));
  });

  it('limits register per address being registered', async () => {
    const input = registration();
    await server.client().ok(RegisterDocument, { input });
    await server.client().fails(RegisterDocument, { input }, 'CONFLICT', 'email');
    await server.client().fails(RegisterDocument, { input: { ...input, email: input.email.toUpperCase() } }, 'CONFLICT', 'email');
    expectRetryAfter(await server.client().fails(RegisterDocument, { input }, 'RATE_LIMITED'));
    await server.client().ok(RegisterDocument, { input: registration() });
  });

  it('limits requestPasswordReset and resendVerificationEmail per address, answering the same for unknown ones', async () => {
    const known = await createUser(server, { emailVerified: false });
    for (const email of [known.email, uniqueEmail('unknown')]) {
      for (let i = 0; i < 2; i++) {
        await server.client().ok(RequestPasswordResetDocument, { email });
        await server.client().ok(ResendVerificationEmailDocument, { email });
      }
      expectRetryAfter(await server.client().fails(RequestPasswordResetDocument, { email }, 'RATE_LIMITED'));
      expectRetryAfter(await server.client().fails(ResendVerificationEmailDocument, { email }, 'RATE_LIMITED'));
    }
    await server.app.deps.mailer.drain();
    expect(smtp.mailsTo(known.email)).toHaveLength(4);
  });

  it('limits verifyEmail per client address', async () => {
    for (let i = 0; i < 12; i++) await server.client().fails(VerifyEmailDocument, { token: `guess-${i}` }, 'BAD_USER_INPUT', 'token');
    expectRetryAfter(await server.client().fails(VerifyEmailDocument, { token: 'guess-12' }, 'RATE_LIMITED'));
  });

  it('counts changePassword attempts against the login limit of the account', async () => {
    const someone = await createUser(server);
    for (let i = 0; i < 3; i++) {
      await someone.client.fails(ChangePasswordDocument, { currentPassword: `wrong-${i}`, newPassword: 'quiet-meadow-sparrow-77' }, 'BAD_USER_INPUT', 'currentPassword');
    }
    await someone.client.fails(ChangePasswordDocument, { currentPassword: DEFAULT_PASSWORD, newPassword: 'quiet-meadow-sparrow-77' }, 'RATE_LIMITED');
    await server.client().fails(LoginDocument, { email: someone.email, password: DEFAULT_PASSWORD }, 'RATE_LIMITED');
  });

  it('releases a limit when its window ends, and prunes windows that ended', async () => {
    const someone = await createUser(server);
    for (let i = 0; i < 3; i++) await login(someone.email);
    await server.client().fails(LoginDocument, { email: someone.email, password: DEFAULT_PASSWORD }, 'RATE_LIMITED');
    const em = server.app.deps.orm.em.fork();
    await em.nativeUpdate(RateLimitBucket, {}, { resetAt: new Date(Date.now() - 1000) });
    await server.app.deps.rateLimiter.prune();
    expect(await em.count(RateLimitBucket, {})).toBe(0);
    await server.client().ok(LoginDocument, { email: someone.email, password: DEFAULT_PASSWORD });
  });

  describe('with a one-second window', () => {
    let quick: TestServer;
    beforeAll(async () => {
      quick = await startTestServer(engine, mailEnv(null, { ACCOUNT_EMAIL_VERIFICATION: 'none', RATE_LIMIT_VERIFY_EMAIL: '1/1', RATE_LIMIT_ADDRESS_MULTIPLIER: '1' }));
    });
    afterAll(() => quick?.stop());

    it('lets the client in again once retryAfterSeconds has passed', async () => {
      await quick.client().fails(VerifyEmailDocument, { token: 'first' }, 'BAD_USER_INPUT', 'token');
      const limited = await quick.client().fails(VerifyEmailDocument, { token: 'second' }, 'RATE_LIMITED');
      expectRetryAfter(limited, 1);
      const deadline = Date.now() + 5000;
      let code: string | undefined = 'RATE_LIMITED';
      while (code === 'RATE_LIMITED' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        code = (await quick.client().request(VerifyEmailDocument, { token: 'again' })).errors?.[0].extensions?.code;
      }
      expect(code).toBe('BAD_USER_INPUT');
    });
  });

  describe('across replicas sharing one database', () => {
    let replica: TestServer;
    beforeAll(async () => {
      replica = await startTestServer(engine, { ...mailEnv(smtp, { ACCOUNT_EMAIL_VERIFICATION: 'optional' }), ...LIMITS }, { databaseEnv: server.databaseEnv });
    });
    afterAll(() => replica?.stop());

    it('counts attempts on every replica together', async () => {
      const someone = await createUser(server);
      await login(someone.email, undefined, server);
      await login(someone.email, undefined, replica);
      await login(someone.email, undefined, server);
      expectRetryAfter(await replica.client().fails(LoginDocument, { email: someone.email, password: DEFAULT_PASSWORD }, 'RATE_LIMITED'));
      await server.client().fails(LoginDocument, { email: someone.email, password: DEFAULT_PASSWORD }, 'RATE_LIMITED');
    });
  });
});
