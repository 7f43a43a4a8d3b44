import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChangePasswordDocument,
  LoginDocument,
  LogoutDocument,
  MeDocument,
  RegisterDocument,
  RequestPasswordResetDocument,
  ResendVerificationEmailDocument,
  ResetPasswordDocument,
  UpdateMeDocument,
  UpdateUserDocument,
  UserDocument,
  UsersDocument,
  VerifyEmailDocument,
  type UserOrderField,
} from './generated/graphql.js';
import { mailEnv, registration } from './support/accounts.js';
import { createAdmin, createUser, DEFAULT_PASSWORD, type TestUser } from './support/factories.js';
import type { GqlClient, GqlResult } from './support/graphql-client.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

type Role = 'anonymous' | 'user' | 'trusted' | 'admin';
/** 'ok', 'self' (allowed, about the caller only) or the error code expected. */
type Outcome = 'ok' | 'self' | 'null' | string;

describe.each(ENGINES)('users and their administration on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let plain: TestUser;
  let trusted: TestUser;
  let other: TestUser;

  beforeAll(async () => {
    server = await startTestServer(engine, mailEnv(null, { ACCOUNT_EMAIL_VERIFICATION: 'none' }));
    [admin, plain, trusted, other] = await Promise.all([
      createAdmin(server),
      createUser(server),
      createUser(server, { isTrusted: true }),
      createUser(server),
    ]);
  });
  afterAll(() => server?.stop());

  describe('the role matrix', () => {
    const clients = (): Record<Role, GqlClient> => ({ anonymous: server.client(), user: plain.client, trusted: trusted.client, admin: admin.client });
    const viewerId = (role: Role) => String({ anonymous: other, user: plain, trusted, admin }[role].user.id);

    /** Each operation with the outcome per role; `self` is the caller's id (another user's for anonymous). */
    const cases: [string, Record<Role, Outcome>, (c: GqlClient, self: string) => Promise<GqlResult<unknown>>][] = [
      ['me', { anonymous: 'null', user: 'self', trusted: 'self', admin: 'self' }, (c) => c.request(MeDocument)],
      ['user (own)', { anonymous: 'UNAUTHENTICATED', user: 'ok', trusted: 'ok', admin: 'ok' }, (c, self) => c.request(UserDocument, { id: self })],
      ['user (another)', { anonymous: 'UNAUTHENTICATED', user: 'NOT_FOUND', trusted: 'NOT_FOUND', admin: 'ok' }, (c) => c.request(UserDocument, { id: String(other.user.id) })],
      ['users', { anonymous: 'UNAUTHENTICATED', user: 'self', trusted: 'self', admin: 'ok' }, (c) => c.request(UsersDocument, {})],
      ['register', { anonymous: 'ok', user: 'ok', trusted: 'ok', admin: 'ok' }, (c) => c.request(RegisterDocument, { input: registration() })],
      ['login', { anonymous: 'ok', user: 'ok', trusted: 'ok', admin: 'ok' }, (c) => c.request(LoginDocument, { email: plain.email, password: DEFAULT_PASSWORD })],
      ['verifyEmail (bad token)', { anonymous: 'BAD_USER_INPUT', user: 'BAD_USER_INPUT', trusted: 'BAD_USER_INPUT', admin: 'BAD_USER_INPUT' }, (c) => c.request(VerifyEmailDocument, { token: 'nope' })],
      ['resendVerificationEmail', { anonymous: 'ok', user: 'ok', trusted: 'ok', admin: 'ok' }, (c) => c.request(ResendVerificationEmailDocument, { email: plain.email })],
      ['requestPasswordReset', { anonymous: 'ok', user: 'ok', trusted: 'ok', admin: 'ok' }, (c) => c.request(RequestPasswordResetDocument, { email: 'nobody@example.org' })],
      ['resetPassword (bad token)', { anonymous: 'BAD_USER_INPUT', user: 'BAD_USER_INPUT', trusted: 'BAD_USER_INPUT', admin: 'BAD_USER_INPUT' }, (c) => c.request(ResetPasswordDocument, { token: 'nope', newPassword: 'quiet-meadow-sparrow-77' })],
      ['updateMe', { anonymous: 'UNAUTHENTICATED', user: 'ok', trusted: 'ok', admin: 'ok' }, (c) => c.request(UpdateMeDocument, { input: { displayName: 'Me' } })],
      ['changePassword (wrong current)', { anonymous: 'UNAUTHENTICATED', user: 'BAD_USER_INPUT', trusted: 'BAD_USER_INPUT', admin: 'BAD_USER_INPUT' }, (c) => c.request(ChangePasswordDocument, { currentPassword: 'wrong-password', newPassword: 'quiet-meadow-sparrow-77' })],
      ['updateUser', { anonymous: 'UNAUTHENTICATED', user: 'FORBIDDEN', trusted: 'FORBIDDEN', admin: 'ok' }, (c) => c.request(UpdateUserDocument, { id: String(other.user.id), input: { isTrusted: false } })],
    ];

    it.each(cases)('%s', async (name, expected, run) => {
      for (const [role, client] of Object.entries(clients()) as [Role, GqlClient][]) {
        const result = await run(client, viewerId(role));
        const outcome = expected[role];
        const context = `${role}: ${JSON.stringify(result.errors ?? result.data)}`;
        if (outcome === 'ok' || outcome === 'self' || outcome === 'null') expect(result.errors, context).toBeUndefined();
        else expect(result.errors?.map((e) => e.extensions?.code), context).toEqual([outcome]);
        if (outcome === 'null') expect(Object.values(result.data as object)[0], context).toBeNull();
        if (outcome === 'self') expect(JSON.stringify(result.data), context).toContain(`"id":"${viewerId(role)}"`);
        if (outcome === 'self' && name === 'users') expect((result.data as { users: { totalCount: number } }).users.totalCount, context).toBe(1);
      }
    });

    it('logout: signed-in users only', async () => {
      await server.client().fails(LogoutDocument, undefined, 'UNAUTHENTICATED');
      for (const make of [() => createUser(server), () => createUser(server, { isTrusted: true }), () => createAdmin(server)]) {
        const { client } = await make();
        expect((await client.ok(LogoutDocument)).logout).toBe(true);
      }
    });
  });

  describe('reading users', () => {
    it('shows non-admins only themselves, whatever the filter, and anyone else is NOT_FOUND', async () => {
      const { users } = await plain.client.ok(UsersDocument, { filter: { search: 'example.org' } });
      expect(users.totalCount).toBe(1);
      expect(users.edges.map((e) => e.node.id)).toEqual([String(plain.user.id)]);
      const { users: none } = await plain.client.ok(UsersDocument, { filter: { isAdmin: true } });
      expect(none.totalCount).toBe(0);
      await plain.client.fails(UserDocument, { id: String(trusted.user.id) }, 'NOT_FOUND');
      await plain.client.fails(UserDocument, { id: '999999' }, 'NOT_FOUND');
      await admin.client.fails(UserDocument, { id: '999999' }, 'NOT_FOUND');
      await admin.client.fails(UserDocument, { id: 'abc' }, 'BAD_USER_INPUT', 'id');
      const { user } = await admin.client.ok(UserDocument, { id: String(trusted.user.id) });
      expect(user).toMatchObject({ email: trusted.email, isTrusted: true, isAdmin: false });
    });

    it('lets admins filter by search (ignoring case), isAdmin, isTrusted and isActive', async () => {
      const tag = `tag${randomUUID().slice(0, 6)}`;
      const [a, , c, d] = await Promise.all([
        createUser(server, { lastName: `${tag}-one`, isAdmin: true }),
        createUser(server, { lastName: `${tag}-two`, isTrusted: true }),
        createUser(server, { lastName: `${tag}-three`, isActive: false }),
        createUser(server, { email: `${tag}@example.org`, lastName: 'Plain' }),
      ]);
      const list = async (filter: Record<string, unknown>) =>
        (await admin.client.ok(UsersDocument, { filter: { search: tag.toUpperCase(), ...filter } })).users;
      expect((await list({})).totalCount).toBe(4);
      expect((await list({ isAdmin: true })).edges.map((e) => e.node.id)).toEqual([String(a.user.id)]);
      expect((await list({ isTrusted: true })).totalCount).toBe(1);
      expect((await list({ isActive: false })).edges.map((e) => e.node.id)).toEqual([String(c.user.id)]);
      expect((await list({ isActive: true, isAdmin: false, isTrusted: false })).edges.map((e) => e.node.id)).toEqual([String(d.user.id)]);
      expect((await admin.client.ok(UsersDocument, { filter: { search: '%' } })).users.totalCount).toBe(0);
    });

    it('orders by every field in both directions and pages through with cursors', async () => {
      const tag = `ord${randomUUID().slice(0, 6)}`;
      const names = ['delta', 'alpha', 'echo', 'charlie', 'bravo'];
      for (const [i, name] of names.entries()) {
        await createUser(server, { firstName: name, lastName: `${tag}-${'edcba'[i]}`, email: `${tag}-${name}@example.org` });
      }
      const walk = async (field: UserOrderField, direction: 'ASC' | 'DESC') => {
        const seen: string[] = [];
        let after: string | null | undefined;
        for (let page = 0; page < 5; page++) {
          const { users } = await admin.client.ok(UsersDocument, { first: 2, after, filter: { search: tag }, orderBy: { field, direction } });
          expect(users.totalCount).toBe(5);
          expect(users.pageInfo.hasPreviousPage).toBe(page > 0);
          seen.push(...users.edges.map((e) => e.node.firstName));
          if (!users.pageInfo.hasNextPage) return seen;
          after = users.pageInfo.endCursor;
        }
        throw new Error('too many pages');
      };
      const sorted = [...names].sort();
      expect(await walk('FIRST_NAME', 'ASC')).toEqual(sorted);
      expect(await walk('FIRST_NAME', 'DESC')).toEqual([...sorted].reverse());
      expect(await walk('EMAIL', 'ASC')).toEqual(sorted);
      expect(await walk('LAST_NAME', 'ASC')).toEqual(['bravo', 'charlie', 'echo', 'alpha', 'delta']);
      expect(await walk('ID', 'ASC')).toEqual(names);
      expect(await walk('DATE_JOINED', 'DESC')).toEqual([...names].reverse());
    });

    it('refuses a page size over 100 and a cursor that is not one', async () => {
      await admin.client.fails(UsersDocument, { first: 101 }, 'BAD_USER_INPUT', 'first');
      await admin.client.fails(UsersDocument, { after: 'garbage' }, 'BAD_USER_INPUT', 'after');
      const { users } = await admin.client.ok(UsersDocument, { first: 1, orderBy: { field: 'EMAIL' } });
      await admin.client.fails(UsersDocument, { after: users.pageInfo.endCursor, orderBy: { field: 'DATE_JOINED' } }, 'BAD_USER_INPUT', 'after');
    });
  });

  describe('updateUser', () => {
    it('sets trust and the admin right, which take effect on the next request', async () => {
      const someone = await createUser(server);
      const { updateUser } = await admin.client.ok(UpdateUserDocument, { id: String(someone.user.id), input: { isTrusted: true } });
      expect(updateUser).toMatchObject({ isTrusted: true, isAdmin: false, isActive: true });
      await admin.client.ok(UpdateUserDocument, { id: String(someone.user.id), input: { isAdmin: true } });
      expect((await someone.client.ok(UsersDocument, {})).users.totalCount).toBeGreaterThan(1);
      await admin.client.ok(UpdateUserDocument, { id: String(someone.user.id), input: { isAdmin: false } });
      expect((await someone.client.ok(UsersDocument, {})).users.totalCount).toBe(1);
    });

    it('answers NOT_FOUND for a missing user and BAD_USER_INPUT for a malformed id', async () => {
      await admin.client.fails(UpdateUserDocument, { id: '999999', input: { isTrusted: true } }, 'NOT_FOUND');
      await admin.client.fails(UpdateUserDocument, { id: 'x', input: { isTrusted: true } }, 'BAD_USER_INPUT', 'id');
    });
  });

  it('refuses to start with a SUPERUSER_PASSWORD that the password policy refuses, naming the variable', async () => {
    const start = startTestServer(engine, { SUPERUSER_EMAIL: 'weak@example.org', SUPERUSER_PASSWORD: '12345678901' });
    await expect(start).rejects.toThrow(/SUPERUSER_PASSWORD: .*numeric/i);
  });

  describe('the last active admin', () => {
    let alone: TestServer;
    beforeAll(async () => {
      // Mandatory verification, to show the superuser can sign in then; no mail is sent in this block.
      alone = await startTestServer(engine, {
        ...mailEnv(null, { ACCOUNT_EMAIL_VERIFICATION: 'mandatory', EMAIL_HOST: '127.0.0.1', EMAIL_PORT: '9' }),
        SUPERUSER_EMAIL: 'root@example.org',
        SUPERUSER_PASSWORD: 'start-up-admin-passphrase',
        SUPERUSER_FIRST_NAME: 'Root',
      });
    });
    afterAll(() => alone?.stop());

    it('is the superuser from SUPERUSER_*, verified, and cannot give up the admin right or be deactivated', async () => {
      const { login } = await alone.client().ok(LoginDocument, { email: 'root@example.org', password: 'start-up-admin-passphrase' });
      expect(login.user.email).toBe('root@example.org');
      const root = alone.client(login.token!);
      const { me } = await root.ok(MeDocument);
      expect(me).toMatchObject({ firstName: 'Root', isAdmin: true, isTrusted: true, emailVerified: true });
      const error = await root.fails(UpdateUserDocument, { id: me!.id, input: { isAdmin: false } }, 'CONFLICT', 'isAdmin');
      expect(error.message).toMatch(/last active admin/);
      await root.fails(UpdateUserDocument, { id: me!.id, input: { isActive: false } }, 'CONFLICT', 'isActive');
      await root.ok(UpdateUserDocument, { id: me!.id, input: { isTrusted: false } });

      // An inactive admin does not count; an active one does.
      const second = await createAdmin(alone);
      await root.ok(UpdateUserDocument, { id: String(second.user.id), input: { isActive: false } });
      await root.fails(UpdateUserDocument, { id: me!.id, input: { isAdmin: false } }, 'CONFLICT', 'isAdmin');
      await root.ok(UpdateUserDocument, { id: String(second.user.id), input: { isActive: true } });
      second.client = alone.client((await alone.client().ok(LoginDocument, { email: second.email, password: DEFAULT_PASSWORD })).login.token!);
      const { updateUser } = await root.ok(UpdateUserDocument, { id: me!.id, input: { isAdmin: false } });
      expect(updateUser.isAdmin).toBe(false);
      expect((await root.ok(UsersDocument, {})).users.totalCount).toBe(1);
      await second.client.fails(UpdateUserDocument, { id: String(second.user.id), input: { isAdmin: false } }, 'CONFLICT', 'isAdmin');
    });
  });
});
