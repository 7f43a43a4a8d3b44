/**
 * Adversarial audit of the account flows: nothing in the answers or their timing may tell which
 * accounts exist or are deactivated, an attacker may not lock an owner out, and every guess at a
 * secret is rate-limited.
 */
import { performance } from 'node:perf_hooks';
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoginDocument, RequestPasswordResetDocument, ResendVerificationEmailDocument, ResetPasswordDocument } from './generated/graphql.js';
import { mailEnv, uniqueEmail } from './support/accounts.js';
import { createUser, DEFAULT_PASSWORD } from './support/factories.js';
import type { GqlError } from './support/graphql-client.js';
import { mannWhitney, median } from './support/hardening/stats.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { startSmtpServer, type TestSmtpServer } from './support/smtp.js';

/** A GraphQL request from a client behind the proxy at this forwarded address. */
async function from(server: TestServer, address: string, doc: Parameters<typeof print>[0], variables: Record<string, unknown>) {
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', 'x-forwarded-for': address },
    body: JSON.stringify({ query: print(doc), variables }),
  });
  return (await res.json()) as { data?: Record<string, unknown> | null; errors?: GqlError[] };
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

const outcome = (result: { data?: unknown; errors?: GqlError[] }) => (result.errors ? result.errors.map((e) => e.extensions?.code).join(',') : 'ok');

describe.each(ENGINES)('account flows under attack on %s', (engine) => {
  describe('timing', () => {
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

    it.each([
      ['requestPasswordReset', RequestPasswordResetDocument],
      ['resendVerificationEmail', ResendVerificationEmailDocument],
    ] as const)('takes as long for %s of an unknown address as of a known one', async (_name, doc) => {
      const known = (await createUser(server, { emailVerified: false })).email;
      const unknown = uniqueEmail('nobody');
      const time = async (email: string) => {
        const started = performance.now();
        await server.client().ok(doc as never, { email } as never);
        return performance.now() - started;
      };
      // Warm-up, then both kinds in one shuffled sequence: drift, and work a request leaves behind
      // (a mail going out), fall on either kind alike.
      for (let i = 0; i < 10; i++) await time(i % 2 ? known : unknown);
      const sequence = shuffle([...Array<'known'>(100).fill('known'), ...Array<'unknown'>(100).fill('unknown')]);
      const samples = { known: [] as number[], unknown: [] as number[] };
      for (const which of sequence) samples[which].push(await time(which === 'known' ? known : unknown));
      await server.app.deps.mailer.drain();
      const k = median(samples.known);
      const u = median(samples.unknown);
      const difference = Math.abs(k - u);
      const relative = difference / Math.min(k, u);
      const { p } = mannWhitney(samples.known, samples.unknown);
      const summary = `median known ${k.toFixed(2)} ms, unknown ${u.toFixed(2)} ms (difference ${difference.toFixed(2)} ms, ${(relative * 100).toFixed(0)}%; Mann-Whitney p=${p.toPrecision(2)})`;
      // A leak is a difference that is both clear (Mann-Whitney) and large: over 1.5 ms and over 25 %.
      const leaks = p < 0.01 && difference >= 1.5 && relative >= 0.25;
      expect(leaks, summary).toBe(false);
    });
  });

  describe('limits and answers', () => {
    let server: TestServer;
    beforeAll(async () => {
      // The default login limit (10 per account in 300 s); clients come through a proxy.
      server = await startTestServer(engine, { TRUST_PROXY: 'true' });
    });
    afterAll(() => server?.stop());

    it("does not lock the owner out after ten wrong passwords from someone else's address", async () => {
      const owner = await createUser(server);
      // Addresses of their own: no other test's attempts count against them.
      const attacker = '198.51.100.66';
      for (let i = 0; i < 10; i++) {
        expect(outcome(await from(server, attacker, LoginDocument, { email: owner.email, password: `guess-${i}` }))).toBe('UNAUTHENTICATED');
      }
      const attackerAgain = outcome(await from(server, attacker, LoginDocument, { email: owner.email, password: 'guess-10' }));
      const ownerElsewhere = outcome(await from(server, '203.0.113.5', LoginDocument, { email: owner.email, password: DEFAULT_PASSWORD }));
      expect({ attackerAgain, ownerElsewhere }).toEqual({ attackerAgain: 'RATE_LIMITED', ownerElsewhere: 'ok' });
    });

    it('answers the right password of a deactivated account exactly as a wrong password (UNAUTHENTICATED, same message)', async () => {
      const gone = await createUser(server, { isActive: false });
      const active = await createUser(server);
      const deactivated = await server.client().request(LoginDocument, { email: gone.email, password: DEFAULT_PASSWORD });
      const wrong = await server.client().request(LoginDocument, { email: active.email, password: 'not-the-password' });
      const unknown = await server.client().request(LoginDocument, { email: uniqueEmail('ghost'), password: DEFAULT_PASSWORD });
      const shape = (r: typeof wrong) => r.errors?.map((e) => ({ code: e.extensions?.code, message: e.message, reason: e.extensions?.reason }));
      expect(shape(wrong)).toEqual([{ code: 'UNAUTHENTICATED', message: expect.any(String), reason: undefined }]);
      expect(shape(unknown)).toEqual(shape(wrong));
      expect(shape(deactivated)).toEqual(shape(wrong));
    });
  });

  describe('resetPassword', () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startTestServer(engine, {
        RATE_LIMIT_LOGIN: '3/600',
        RATE_LIMIT_PASSWORD_RESET: '3/600',
        RATE_LIMIT_VERIFY_EMAIL: '3/600',
        RATE_LIMIT_ADDRESS_MULTIPLIER: '2',
      });
    });
    afterAll(() => server?.stop());

    it('is rate-limited: guessing reset tokens from one address ends in RATE_LIMITED', async () => {
      const seen: Record<string, number> = {};
      for (let i = 0; i < 100 && !seen.RATE_LIMITED; i++) {
        const result = await server.client().request(ResetPasswordDocument, { token: `guess-${i}-${'x'.repeat(30)}`, newPassword: 'quiet-meadow-sparrow-77' });
        const code = String(result.errors?.[0]?.extensions?.code ?? 'ok');
        seen[code] = (seen[code] ?? 0) + 1;
      }
      expect(seen, 'answers to 100 guessed reset tokens').toHaveProperty('RATE_LIMITED');
      expect(seen.ok).toBeUndefined();
    });
  });
});
