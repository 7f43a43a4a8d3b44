import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session, User } from '../src/entities/index.js';
import { endedSessions } from '../src/services/account.sessions.js';
import { createUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

describe.each(ENGINES)('the session check of open connections on %s', (engine) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(engine);
  });
  afterAll(() => server?.stop());

  it('finds the revoked, expired, deactivated, missing and mismatched sessions, and only those', async () => {
    const [active, inactive] = await Promise.all([createUser(server), createUser(server)]);
    const em = server.app.deps.orm.em.fork();
    await em.nativeUpdate(User, { id: inactive.user.id }, { isActive: false });
    const hour = 3600_000;
    const add = (id: string, userId: number, expiresIn: number, revokedAt: Date | null = null) =>
      em.create(Session, { id, user: em.getReference(User, userId), createdAt: new Date(), expiresAt: new Date(Date.now() + expiresIn), revokedAt });
    add('live', active.user.id, hour);
    add('revoked', active.user.id, hour, new Date());
    add('expired', active.user.id, -1000);
    add('of-inactive', inactive.user.id, hour);
    await em.flush();
    const viewer = (sessionId: string, user: User) => ({ sessionId, user });
    const ended = await endedSessions(server.app.deps.orm.em, [
      viewer('live', active.user),
      viewer('revoked', active.user),
      viewer('expired', active.user),
      viewer('of-inactive', inactive.user),
      viewer('missing', active.user),
      viewer('live', inactive.user), // a session presented for someone else
    ]);
    expect([...ended].sort()).toEqual(['expired', 'live', 'missing', 'of-inactive', 'revoked']);
    expect([...(await endedSessions(server.app.deps.orm.em, [viewer('live', active.user)]))]).toEqual([]);
  });
});
