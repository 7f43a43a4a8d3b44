import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountToken, RateLimitBucket, Session, User } from '../src/entities/index.js';
import { pruneExpired } from '../src/services/housekeeping.js';
import { MeDocument } from './generated/graphql.js';
import { createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

const HOUR = 3600_000;

describe.each(ENGINES)('housekeeping on %s', (engine) => {
  let server: TestServer;
  let user: TestUser;
  beforeAll(async () => {
    server = await startTestServer(engine);
    user = await createUser(server);
  });
  afterAll(() => server?.stop());

  it('deletes ended sessions, spent account tokens and finished rate-limit windows, and nothing else', async () => {
    const now = new Date();
    const at = (offsetMs: number) => new Date(now.getTime() + offsetMs);
    const em = server.app.deps.orm.em.fork();
    const owner = em.getReference(User, user.user.id);
    const session = (id: string, expiresAt: Date, revokedAt: Date | null = null) =>
      em.create(Session, { id, user: owner, createdAt: at(-48 * HOUR), expiresAt, revokedAt });
    session('expired', at(-HOUR));
    session('revoked-long-ago', at(HOUR), at(-25 * HOUR));
    session('revoked-lately', at(HOUR), at(-HOUR));
    session('live', at(HOUR));
    const token = (tokenHash: string, expiresAt: Date, usedAt: Date | null = null) =>
      em.create(AccountToken, { tokenHash, purpose: 'verify-email', user: owner, createdAt: at(-48 * HOUR), expiresAt, usedAt });
    token('a'.repeat(64), at(-HOUR));
    token('b'.repeat(64), at(HOUR), at(-25 * HOUR));
    token('c'.repeat(64), at(HOUR), at(-HOUR));
    token('d'.repeat(64), at(HOUR));
    em.create(RateLimitBucket, { key: 'over', count: 3, resetAt: at(-1000) });
    em.create(RateLimitBucket, { key: 'running', count: 3, resetAt: at(60_000) });
    await em.flush();

    expect(await pruneExpired(server.app.deps.orm, now)).toEqual({ sessions: 2, accountTokens: 2, rateLimits: 1 });

    const left = server.app.deps.orm.em.fork();
    const sessions = (await left.find(Session, { id: { $in: ['expired', 'revoked-long-ago', 'revoked-lately', 'live'] } })).map((s) => s.id);
    expect(sessions.sort()).toEqual(['live', 'revoked-lately']);
    const tokens = (await left.find(AccountToken, { user: user.user.id })).map((t) => t.tokenHash[0]);
    expect(tokens.sort()).toEqual(['c', 'd']);
    expect((await left.find(RateLimitBucket, { key: { $in: ['over', 'running'] } })).map((b) => b.key)).toEqual(['running']);
    expect((await user.client.ok(MeDocument)).me?.id).toBe(String(user.user.id)); // the fixture's own session is live
  });
});
