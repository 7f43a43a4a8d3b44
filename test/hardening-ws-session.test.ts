/**
 * Adversarial audit: what an open WebSocket keeps after the facts behind it changed over HTTP. A
 * connection builds its context once (viewer, EntityManager); rights taken away, sessions ended and
 * rows changed since must count on that socket as they do on the next HTTP request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LabInstanceDocument,
  StartLabDocument,
  StopLabInstanceDocument,
  UpdateUserDocument,
} from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { codesOf, MESSAGES, openInitialised, rawOperation, type RawSocket, type Subprotocol } from './support/hardening/ws.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

const PROTOCOLS: Subprotocol[] = ['graphql-transport-ws', 'graphql-ws'];
/** The periodic WebSocket session check's interval here. */
const CHECK_MS = 1000;
const USERS = '{ users(first: 100) { totalCount edges { node { id } } } }';
const CREATE_IMAGE = (name: string) =>
  `mutation { createImage(input: { name: "${name}", description: "d", url: "registry.example.org/vm/${name}:1" }) { id } }`;
const ALL_STATUS = 'subscription { labInstancesStatus { status labInstance { id user { id } } } }';
const ONE_STATUS = 'subscription ($id: ID!) { labInstanceStatus(id: $id) { status } }';

/** Resolves with how an operation ended (`complete`, `error`) or that its socket closed; rejects after the timeout. */
function endOf(socket: RawSocket, id: string, timeoutMs: number): Promise<string> {
  const names = MESSAGES[socket.protocol];
  return Promise.race([
    socket.closed.then((c) => `socket closed ${c.code}`),
    socket.next((m) => m.id === id && (m.type === names.complete || m.type === names.error), timeoutMs).then((m) => `operation ${m.type}`),
  ]).catch(() => `still running after ${timeoutMs} ms`);
}

const CLOSED = 'the server closed the socket (4403) instead of answering';

/** The operation's outcome, or CLOSED when the server closed the socket (4403) before answering it. */
async function unlessClosed<T>(socket: RawSocket, outcome: Promise<T>): Promise<T | typeof CLOSED> {
  try {
    return await outcome;
  } catch (err) {
    if ((await Promise.race([socket.closed, Promise.resolve(null)]))?.code === 4403) return CLOSED;
    throw err;
  }
}

/** Starts a subscription on a raw socket; resolves once its first event arrived. */
async function subscribe(socket: RawSocket, id: string, query: string, variables?: Record<string, unknown>) {
  const names = MESSAGES[socket.protocol];
  socket.send({ id, type: names.start, payload: { query, variables } });
  await socket.next((m) => m.id === id && m.type === names.data);
  return () => socket.messages.filter((m) => m.id === id && m.type === names.data).map((m) => m.payload);
}

describe.each(ENGINES)('an open WebSocket after changes made over HTTP, on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let labId: string;
  beforeAll(async () => {
    server = await startTestServer(engine, { WS_SESSION_CHECK_SECONDS: String(CHECK_MS / 1000) });
    admin = await createAdmin(server);
    labId = (await createLabWithVms(admin.client, ['vm'])).lab.id;
  });
  afterAll(() => server?.stop());

  /**
   * Resolves just after a periodic session check has run: a session of its own ends, and the check
   * closes its socket (4403).
   */
  async function sessionCheckTick() {
    const probe = await createUser(server);
    const socket = await openInitialised(server.wsUrl, 'graphql-transport-ws', probe.token);
    await rawOperation(socket, '{ me { id } }'); // the viewer is registered for the check on its first operation
    await probe.client.ok('mutation { logout }');
    expect((await socket.closed).code).toBe(4403);
  }

  describe.each(PROTOCOLS)('over %s', (protocol) => {
    it('gives an admin demoted since the socket opened what a non-admin gets: only themselves in users, FORBIDDEN for createImage', async () => {
      const demoted = await createAdmin(server);
      const socket = await openInitialised(server.wsUrl, protocol, demoted.token);
      expect((await rawOperation(socket, USERS)).data.users.totalCount).toBeGreaterThan(1);
      await admin.client.ok(UpdateUserDocument, { id: String(demoted.user.id), input: { isAdmin: false } });
      // Over HTTP at once: a non-admin sees only themselves, and may not change the catalogue.
      expect((await demoted.client.ok(USERS)) as unknown).toEqual({ users: { totalCount: 1, edges: [{ node: { id: String(demoted.user.id) } }] } });
      await demoted.client.fails(CREATE_IMAGE(`demoted-http-${protocol}-${engine}`), undefined, 'FORBIDDEN');
      // A server may as well close the socket once the rights it was opened with are gone.
      const users = await unlessClosed(socket, rawOperation(socket, USERS).then((r) => r.data));
      const create = await unlessClosed(socket, rawOperation(socket, CREATE_IMAGE(`demoted-ws-${protocol}-${engine}`)).then(codesOf));
      socket.close();
      const expected = { users: { users: { totalCount: 1, edges: [{ node: { id: String(demoted.user.id) } }] } }, createImage: ['FORBIDDEN'] };
      expect({ users: users === CLOSED ? expected.users : users, createImage: create === CLOSED ? expected.createImage : create }).toEqual(expected);
    });

    it('refuses startLab to a user no longer trusted since the socket opened (FORBIDDEN)', async () => {
      const once = await createUser(server, { isTrusted: true });
      const socket = await openInitialised(server.wsUrl, protocol, once.token);
      expect((await rawOperation(socket, '{ me { isTrusted } }')).data).toEqual({ me: { isTrusted: true } });
      await admin.client.ok(UpdateUserDocument, { id: String(once.user.id), input: { isTrusted: false } });
      await once.client.fails(StartLabDocument, { labId }, 'FORBIDDEN'); // over HTTP at once
      // A server may as well close the socket once the rights it was opened with are gone.
      const start = await unlessClosed(socket, rawOperation(socket, `mutation { startLab(labId: "${labId}") { labInstance { id } } }`));
      socket.close();
      if (start === CLOSED) return;
      const started = start.data?.startLab?.labInstance?.id;
      if (started) await admin.client.ok(StopLabInstanceDocument, { id: started });
      expect(codesOf(start)).toEqual(['FORBIDDEN']);
    });

    it("ends an admin's subscription to every instance's status when the admin right ends", async () => {
      const demoted = await createAdmin(server);
      const owner = await createUser(server, { isTrusted: true });
      // Someone else's instance, active, so that the dashboard starts with its state.
      const first = (await owner.client.ok(StartLabDocument, { labId })).startLab.labInstance.id;
      const socket = await openInitialised(server.wsUrl, protocol, demoted.token);
      await subscribe(socket, 'all', ALL_STATUS);
      await socket.next((m) => m.id === 'all' && m.payload?.data?.labInstancesStatus?.labInstance?.id === first);
      await admin.client.ok(UpdateUserDocument, { id: String(demoted.user.id), input: { isAdmin: false } });
      const seenBefore = socket.messages.length;
      // Someone else's instances go on changing meanwhile.
      await owner.client.ok(StopLabInstanceDocument, { id: first });
      const second = (await owner.client.ok(StartLabDocument, { labId })).startLab.labInstance.id;
      // As long as an ended session's connection may stay open: the session check's interval, with room.
      const ended = await endOf(socket, 'all', 4 * CHECK_MS);
      const foreign = socket.messages
        .slice(seenBefore)
        .filter((m) => m.id === 'all' && String(m.payload?.data?.labInstancesStatus?.labInstance?.user?.id) === String(owner.user.id)).length;
      socket.close();
      await owner.client.ok(StopLabInstanceDocument, { id: second });
      expect(ended, `events of someone else's instances received since the demotion: ${foreign}`).not.toMatch(/^still running/);
    });

    it.each(['logout', 'deactivation'] as const)(
      'after %s, closes the socket with 4403 (an operation that races the close answers UNAUTHENTICATED), ending its subscriptions',
      async (how) => {
        const user = await createUser(server, { isTrusted: true });
        const { startLab } = await user.client.ok(StartLabDocument, { labId });
        const id = startLab.labInstance.id;
        const socket = await openInitialised(server.wsUrl, protocol, user.token);
        await subscribe(socket, 'one', ONE_STATUS, { id });
        // Right after a periodic check, so that the next operation comes before the next check.
        await sessionCheckTick();
        if (how === 'logout') await user.client.ok('mutation { logout }');
        else await admin.client.ok(UpdateUserDocument, { id: String(user.user.id), input: { isActive: false } });
        // Before the fix, this operation rebuilt the socket's context as anonymous and took it off the
        // periodic check. A server may close the socket at once; if the operation still gets an answer, it is UNAUTHENTICATED.
        const reply = await rawOperation(socket, '{ labInstances { totalCount } }', undefined, 3000).catch(() => undefined);
        if (reply) expect(codesOf(reply)).toEqual(['UNAUTHENTICATED']);
        // The session check runs every CHECK_MS here.
        const closed = await Promise.race([socket.closed, new Promise<null>((r) => setTimeout(() => r(null), 5 * CHECK_MS))]);
        const dataBefore = socket.messages.filter((m) => m.id === 'one' && m.type === MESSAGES[protocol].data).length;
        await admin.client.ok(StopLabInstanceDocument, { id });
        if (!closed) await socket.next((m) => m.id === 'one' && m.type === MESSAGES[protocol].data && m.payload?.data?.labInstanceStatus?.status !== 'STARTING' && m.payload?.data?.labInstanceStatus?.status !== 'READY', 5000).catch(() => undefined);
        const dataAfter = socket.messages.filter((m) => m.id === 'one' && m.type === MESSAGES[protocol].data).length;
        socket.close();
        expect({ closeCode: closed?.code ?? `still open after ${5 * CHECK_MS} ms`, eventsAfterTheSessionEnded: dataAfter - dataBefore }).toEqual({
          closeCode: 4403,
          eventsAfterTheSessionEnded: 0,
        });
      },
    );

    it('reads an instance fresh on every operation: after a stop over HTTP, the same socket sees STOPPING or STOPPED', async () => {
      const owner = await createUser(server, { isTrusted: true });
      const { startLab } = await owner.client.ok(StartLabDocument, { labId });
      const id = startLab.labInstance.id;
      const socket = await openInitialised(server.wsUrl, protocol, owner.token);
      const query = `{ labInstance(id: "${id}") { status } }`;
      const first = (await rawOperation(socket, query)).data?.labInstance?.status;
      expect(['PENDING', 'STARTING', 'READY']).toContain(first);
      await owner.client.ok(StopLabInstanceDocument, { id });
      const overHttp = (await owner.client.ok(LabInstanceDocument, { id })).labInstance?.status;
      expect(['STOPPING', 'STOPPED']).toContain(overHttp);
      const again = (await rawOperation(socket, query)).data?.labInstance?.status;
      socket.close();
      expect(again, `was ${first} before the stop`).toMatch(/^STOPP(ING|ED)$/);
    });
  });
});
