/**
 * Adversarial audit: input that must be refused before it reaches SQL. A NUL byte or a 50 KB search
 * term is the client's mistake (BAD_USER_INPUT naming the field), never a database error; and one
 * request may not make the server run thousands of statements.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateLabDocument, LabsDocument, RegisterDocument } from './generated/graphql.js';
import { registration } from './support/accounts.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, type TestUser } from './support/factories.js';
import type { GqlResult } from './support/graphql-client.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

const errorsOf = (result: GqlResult<unknown>) => (result.errors ?? []).map((e) => ({ code: e.extensions?.code, field: e.extensions?.field }));

describe.each(ENGINES)('input refused before SQL on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let imageId: string;
  const statements: string[] = [];
  beforeAll(async () => {
    server = await startTestServer(engine, { RATE_LIMIT_REGISTER: '10000/60' }, undefined, { onQuery: (sql) => statements.push(sql) });
    admin = await createAdmin(server);
    // Rows to match against: an empty table never evaluates the search.
    imageId = (await createLabWithVms(admin.client, ['vm'])).images[0].id;
  });
  afterAll(() => server?.stop());

  it.each(['labs', 'images'])('refuses a NUL byte in %s(search) as BAD_USER_INPUT on search', async (root) => {
    const result = await server.client().request(`query ($search: String) { ${root}(search: $search) { totalCount } }`, { search: 'a\u0000b' });
    expect(errorsOf(result), JSON.stringify(result.errors)).toEqual([{ code: 'BAD_USER_INPUT', field: 'search' }]);
  });

  it('refuses a NUL byte in register(firstName) as BAD_USER_INPUT on firstName', async () => {
    const result = await server.client().request(RegisterDocument, { input: registration({ firstName: 'A\u0000da' }) });
    expect(errorsOf(result), JSON.stringify(result.errors)).toEqual([{ code: 'BAD_USER_INPUT', field: 'firstName' }]);
  });

  it("refuses a NUL byte in an admin's createLab(name) as BAD_USER_INPUT on name", async () => {
    const result = await admin.client.request(CreateLabDocument, {
      input: { name: 'nul\u0000lab', namespacePrefix: 'nullab', description: 'd', vms: [{ name: 'vm', imageId }] },
    });
    expect(errorsOf(result), JSON.stringify(result.errors)).toEqual([{ code: 'BAD_USER_INPUT', field: 'name' }]);
  });

  it.each(['labs', 'images'])('refuses a %s search over 50,000 bytes as BAD_USER_INPUT on search (a length limit)', async (root) => {
    const search = 'a'.repeat(60_000);
    const result = await server.client().request(`query ($search: String) { ${root}(search: $search) { totalCount } }`, { search });
    expect(errorsOf(result), JSON.stringify(result.errors)).toEqual([{ code: 'BAD_USER_INPUT', field: 'search' }]);
  });

  it('refuses 4,500 aliased labs counts in one request before running any of them', async () => {
    const query = `{ ${Array.from({ length: 4500 }, (_, i) => `a${i}: labs(first: 0, search: "x") { totalCount }`).join(' ')} }`;
    statements.length = 0;
    const result = await server.client().request<Record<string, unknown>, never>(query);
    const ran = statements.filter((sql) => /count\(/i.test(sql)).length;
    const answered = result.data ? `${Object.keys(result.data).length} fields` : null;
    expect({ codes: [...new Set((result.errors ?? []).map((e) => e.extensions?.code))], countsRun: ran, answered }).toEqual({
      codes: ['BAD_USER_INPUT'],
      countsRun: 0,
      answered: null,
    });
    // The ordinary query still works.
    await server.client().ok(LabsDocument, { first: 1 });
  });
});
