import { randomUUID } from 'node:crypto';
import { User } from '../../src/entities/index.js';
import { AuthService } from '../../src/services/auth.service.js';
import { hashPassword } from '../../src/services/passwords.js';
import type { GqlClient } from './graphql-client.js';
import type { TestServer } from './server.js';

export const DEFAULT_PASSWORD = 'correct-horse-battery-staple';

export interface TestUser {
  user: User;
  email: string;
  password: string;
  token: string;
  client: GqlClient;
}

let hashed: Promise<string> | undefined;

/**
 * Inserts a user straight into the database and opens a session for it with the server's own
 * AuthService (the token is a real bearer token). Fixtures do not go through `login`, so they never
 * count against its rate limit, which every test client shares (they all come from 127.0.0.1).
 */
export async function createUser(
  server: TestServer,
  opts: {
    isAdmin?: boolean;
    isTrusted?: boolean;
    isActive?: boolean;
    emailVerified?: boolean;
    email?: string;
    firstName?: string;
    lastName?: string;
  } = {},
): Promise<TestUser> {
  const em = server.app.deps.orm.em.fork();
  const email = opts.email ?? `user-${randomUUID().slice(0, 8)}@example.org`;
  const user = em.create(User, {
    email,
    passwordHash: await (hashed ??= hashPassword(DEFAULT_PASSWORD)),
    firstName: opts.firstName ?? 'Test',
    lastName: opts.lastName ?? 'User',
    isAdmin: opts.isAdmin ?? false,
    isTrusted: opts.isTrusted ?? false,
    isActive: opts.isActive ?? true,
    emailVerified: opts.emailVerified ?? true,
  } as User);
  await em.flush();
  const { token } = await new AuthService(em, server.config, server.app.deps.sessionTokens, server.app.deps.accountEvents).openSession(user);
  return { user, email, password: DEFAULT_PASSWORD, token, client: server.client(token) };
}

export const createAdmin = (server: TestServer) => createUser(server, { isAdmin: true, isTrusted: true });
export const createTrusted = (server: TestServer) => createUser(server, { isTrusted: true });
