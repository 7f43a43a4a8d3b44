import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateImageDocument, CreateLabDocument, LabsWithImagesDocument, UpdateImageDocument } from './generated/graphql.js';
import { createAdmin, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

describe.each(ENGINES)('the catalogue response cache on %s', (engine) => {
  let a: TestServer & { databaseEnv: Record<string, string> };
  let b: TestServer;
  let admin: TestUser;
  const executions: string[] = [];

  beforeAll(async () => {
    a = await startTestServer(engine);
    // A second replica on the same database, counting the SQL it runs.
    b = await startTestServer(engine, {}, { databaseEnv: a.databaseEnv }, { onQuery: (q) => executions.push(q) });
    admin = await createAdmin(a);
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
  });

  const labsOn = async (server: TestServer) => (await server.client().ok(LabsWithImagesDocument, { first: 50 })).labs.edges.map((e) => e.node);

  it('answers a repeated catalogue query without running it, and sees every change made through any replica', async () => {
    const { createImage } = await admin.client.ok(CreateImageDocument, { input: { name: 'cached', description: 'd', url: 'reg.example.org/v:1' } });
    await admin.client.ok(CreateLabDocument, { input: { name: 'c1', namespacePrefix: 'c1', description: 'd', vms: [{ name: 'vm', imageId: createImage.id }] } });
    expect((await labsOn(b)).map((l) => l.name)).toEqual(['c1']);
    executions.length = 0;
    expect((await labsOn(b)).map((l) => l.name)).toEqual(['c1']);
    expect(executions.filter((q) => /from .?labs/i.test(q))).toEqual([]); // only the version was read
    expect(executions.some((q) => /catalogue_versions/.test(q))).toBe(true);

    await admin.client.ok(UpdateImageDocument, { id: createImage.id, input: { url: 'reg.example.org/v:2' } }); // through replica A
    expect((await labsOn(b))[0].vms[0].image.url).toBe('reg.example.org/v:2');
    await admin.client.ok(CreateLabDocument, { input: { name: 'c2', namespacePrefix: 'c2', description: 'd' } });
    expect((await labsOn(b)).map((l) => l.name)).toEqual(['c1', 'c2']);
  });

  it('never serves answers that depend on the caller', async () => {
    const query = '{ labs { totalCount } me { email } }';
    const anonymous = await b.client().ok(query);
    const signedIn = await b.client(admin.token).ok(query);
    expect(anonymous).toMatchObject({ me: null });
    expect(signedIn).toMatchObject({ me: { email: admin.email } });
  });
});
