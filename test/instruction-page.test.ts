import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateImageDocument,
  CreateInstructionPageDocument,
  CreateLabDocument,
  DeleteInstructionPageDocument,
  InstructionPageDocument,
  LabDocument,
  UpdateInstructionPageDocument,
} from './generated/graphql.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

describe.each(ENGINES)('instruction pages on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let user: TestUser;
  let labId: string;

  beforeAll(async () => {
    server = await startTestServer(engine);
    [admin, user] = await Promise.all([createAdmin(server), createUser(server)]);
    const image = (await admin.client.ok(CreateImageDocument, { input: { name: 'img', description: 'd', url: 'img:1' } })).createImage;
    labId = (await admin.client.ok(CreateLabDocument, { input: { name: 'Pages', namespacePrefix: 'pages', description: 'd', vms: [{ name: 'vm', imageId: image.id }] } }))
      .createLab.id;
  });
  afterAll(() => server?.stop());

  it('appends pages in order and shows them with the lab to anyone', async () => {
    const a = (await admin.client.ok(CreateInstructionPageDocument, { input: { labId, title: 'Setup', content: '# Steps' } })).createInstructionPage;
    const b = (await admin.client.ok(CreateInstructionPageDocument, { input: { labId, title: 'Tasks' } })).createInstructionPage;
    const first = (await admin.client.ok(CreateInstructionPageDocument, { input: { labId, title: 'Welcome', position: 0 } })).createInstructionPage;
    expect([a.position, b.position, first.position]).toEqual([0, 1, 0]);
    expect(b.content).toBeNull();
    const { lab } = await server.client().ok(LabDocument, { id: labId });
    expect(lab!.instructionPages.map((p) => p.title)).toEqual(['Setup', 'Welcome', 'Tasks']);
    const { instructionPage } = await user.client.ok(InstructionPageDocument, { id: a.id });
    expect(instructionPage).toMatchObject({ title: 'Setup', content: '# Steps', lab: { id: labId, name: 'Pages' } });
  });

  it('updates and deletes pages for admins only', async () => {
    const page = (await admin.client.ok(CreateInstructionPageDocument, { input: { labId, title: 'Draft' } })).createInstructionPage;
    await user.client.fails(UpdateInstructionPageDocument, { id: page.id, input: { title: 'X' } }, 'FORBIDDEN');
    await server.client().fails(DeleteInstructionPageDocument, { id: page.id }, 'UNAUTHENTICATED');
    await user.client.fails(DeleteInstructionPageDocument, { id: page.id }, 'FORBIDDEN');
    const { updateInstructionPage } = await admin.client.ok(UpdateInstructionPageDocument, {
      id: page.id,
      input: { title: 'Final', content: 'Body', position: 7 },
    });
    expect(updateInstructionPage).toMatchObject({ title: 'Final', content: 'Body', position: 7 });
    expect((await admin.client.ok(DeleteInstructionPageDocument, { id: page.id })).deleteInstructionPage).toBe(true);
    expect((await server.client().ok(InstructionPageDocument, { id: page.id })).instructionPage).toBeNull();
    await admin.client.fails(UpdateInstructionPageDocument, { id: page.id, input: { title: 'X' } }, 'NOT_FOUND');
  });

  it.each([
    [{ title: '' }, 'title'],
    [{ title: 't'.repeat(129) }, 'title'],
    [{ position: -1 }, 'position'],
    [{ labId: 'abc' }, 'labId'],
  ])('rejects %j as BAD_USER_INPUT on the field', async (override, field) => {
    await admin.client.fails(CreateInstructionPageDocument, { input: { labId, title: 'ok', ...override } }, 'BAD_USER_INPUT', field);
  });

  it('answers NOT_FOUND for a page of a missing lab', async () => {
    await admin.client.fails(CreateInstructionPageDocument, { input: { labId: '999999', title: 'x' } }, 'NOT_FOUND');
  });
});
