import { parse } from 'graphql';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { graphqlWsClient, subscribeGraphqlWs } from './support/subscriptions.js';

const EXTEND = 'mutation($id: ID!, $minutes: Int!) { extendLabInstance(id: $id, minutes: $minutes) { id expiresAt createdAt } }';
type Extended = { extendLabInstance: { id: string; expiresAt: string; createdAt: string } };
const STATUS = parse('subscription($id: ID!) { labInstanceStatus(id: $id) { status expiresAt } }') as TypedDocumentNode<
  { labInstanceStatus: { status: string; expiresAt: string | null } },
  { id: string }
>;

describe.each(ENGINES)('extending a lifetime on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let owner: TestUser;
  let other: TestUser;
  let labId: string;

  beforeAll(async () => {
    server = await startTestServer(engine);
    [admin, owner, other] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true }), createUser(server, { isTrusted: true })]);
    labId = (await createLabWithVms(admin.client, ['vm'], { instanceLifetimeMinutes: 60 })).lab.id;
    await admin.client.ok('mutation($id: ID!) { updateLab(id: $id, input: { maxInstanceLifetimeMinutes: 90 }) { id } }', { id: labId });
  });
  afterAll(() => server?.stop());

  it("moves expiresAt for the owner and admins, up to the lab's maximum, and says so in every status event", async () => {
    const { startLab } = await owner.client.ok(StartLabDocument, { labId });
    const { id, createdAt } = startLab.labInstance;
    const created = Date.parse(createdAt);
    const client = graphqlWsClient(server.wsUrl, owner.token);
    const sub = subscribeGraphqlWs(client, STATUS, { id });
    const first = await sub.until((e) => e.length >= 1);
    expect(Date.parse(first[0].labInstanceStatus.expiresAt!) - created).toBe(60 * 60_000);

    const once = (await owner.client.ok<Extended, { id: string; minutes: number }>(EXTEND, { id, minutes: 20 })).extendLabInstance;
    expect(Date.parse(once.expiresAt) - created).toBe(80 * 60_000);
    await sub.until((e) => e.some((x) => Date.parse(x.labInstanceStatus.expiresAt ?? '') - created === 80 * 60_000));
    const capped = (await admin.client.ok<Extended, { id: string; minutes: number }>(EXTEND, { id, minutes: 30 })).extendLabInstance;
    expect(Date.parse(capped.expiresAt) - created).toBe(90 * 60_000);
    await owner.client.fails(EXTEND, { id, minutes: 5 }, 'CONFLICT');
    await other.client.fails(EXTEND, { id, minutes: 5 }, 'NOT_FOUND');
    await owner.client.fails(EXTEND, { id, minutes: 0 }, 'BAD_USER_INPUT', 'minutes');
    await owner.client.ok(StopLabInstanceDocument, { id });
    await owner.client.fails(EXTEND, { id, minutes: 5 }, 'CONFLICT');
    sub.close();
    await client.dispose();
  });
});
