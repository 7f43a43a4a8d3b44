import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AddLabVmDocument,
  CreateImageDocument,
  CreateInstructionPageDocument,
  CreateLabDocument,
  DeleteLabDocument,
  InstructionPageDocument,
  LabDocument,
  LabsDocument,
  LabsWithImagesDocument,
  RemoveLabVmDocument,
  UpdateLabDocument,
} from './generated/graphql.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

describe.each(ENGINES)('labs on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let user: TestUser;
  let imageId: string;
  const sql: string[] = [];

  const labInput = (n: string, extra: Record<string, unknown> = {}) => ({
    name: `Lab ${n}`,
    namespacePrefix: `lab-${n}`,
    description: `Lab number ${n}`,
    vms: [{ name: 'vm-1', imageId }],
    ...extra,
  });

  beforeAll(async () => {
    server = await startTestServer(engine, {}, undefined, { onQuery: (q) => sql.push(q) });
    [admin, user] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
    imageId = (await admin.client.ok(CreateImageDocument, { input: { name: 'Base', description: 'base', url: 'quay.io/vms/base:1' } })).createImage.id;
  });
  afterAll(() => server?.stop());

  it('creates a lab with its VMs in order and serves it to anyone', async () => {
    const { createLab } = await admin.client.ok(CreateLabDocument, {
      input: labInput('a', { instanceLifetimeMinutes: 120, vms: [{ name: 'first', imageId }, { name: 'second.local', imageId }] }),
    });
    expect(createLab).toMatchObject({ name: 'Lab a', namespacePrefix: 'lab-a', instanceLifetimeMinutes: 120 });
    expect(createLab.vms.map((vm) => [vm.name, vm.image.id])).toEqual([['first', imageId], ['second.local', imageId]]);
    expect((await server.client().ok(LabDocument, { id: createLab.id })).lab).toEqual(createLab);
  });

  it('applies the role matrix to every lab mutation', async () => {
    const { createLab } = await admin.client.ok(CreateLabDocument, { input: labInput('roles') });
    const ops = [
      [CreateLabDocument, { input: labInput('x') }],
      [UpdateLabDocument, { id: createLab.id, input: { name: 'New' } }],
      [DeleteLabDocument, { id: createLab.id }],
      [AddLabVmDocument, { labId: createLab.id, input: { name: 'extra', imageId } }],
      [RemoveLabVmDocument, { id: createLab.vms[0].id }],
      [CreateInstructionPageDocument, { input: { labId: createLab.id, title: 'T' } }],
    ] as const;
    for (const [doc, vars] of ops) {
      await server.client().fails(doc as never, vars, 'UNAUTHENTICATED');
      await user.client.fails(doc as never, vars, 'FORBIDDEN');
    }
    expect((await server.client().ok(LabDocument, { id: createLab.id })).lab).toEqual(createLab);
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: 'n'.repeat(33) }, 'name'],
    [{ description: '' }, 'description'],
    [{ description: 'd'.repeat(129) }, 'description'],
    [{ namespacePrefix: '1abc' }, 'namespacePrefix'],
    [{ namespacePrefix: 'Upper' }, 'namespacePrefix'],
    [{ namespacePrefix: 'ends-' }, 'namespacePrefix'],
    [{ namespacePrefix: 'has_underscore' }, 'namespacePrefix'],
    [{ namespacePrefix: 'a'.repeat(33) }, 'namespacePrefix'],
    [{ instanceLifetimeMinutes: 0 }, 'instanceLifetimeMinutes'],
    [{ vms: [{ name: 'Bad_Name', imageId: '1' }] }, 'vms.0.name'],
    [{ vms: [{ name: '-x', imageId: '1' }] }, 'vms.0.name'],
    [{ vms: [{ name: 'x'.repeat(64), imageId: '1' }] }, 'vms.0.name'],
  ])('rejects %j as BAD_USER_INPUT on the field', async (override, field) => {
    await admin.client.fails(CreateLabDocument, { input: { ...labInput('invalid'), ...override } }, 'BAD_USER_INPUT', field);
  });

  it('rejects duplicate VM names and unknown images without writing anything', async () => {
    const count = async () => (await server.client().ok(LabsDocument, { first: 100, search: 'lab-dups' })).labs.totalCount;
    await admin.client.fails(CreateLabDocument, { input: labInput('dups', { vms: [{ name: 'a', imageId }, { name: 'a', imageId }] }) }, 'BAD_USER_INPUT', 'vms.1.name');
    await admin.client.fails(CreateLabDocument, { input: labInput('dups', { vms: [{ name: 'a', imageId }, { name: 'b', imageId: '999999' }] }) }, 'BAD_USER_INPUT', 'vms.1.imageId');
    expect(await count()).toBe(0);
  });

  it('answers CONFLICT for a taken name or namespace prefix and for a VM name taken in the lab', async () => {
    const { createLab } = await admin.client.ok(CreateLabDocument, { input: labInput('taken') });
    await admin.client.fails(CreateLabDocument, { input: labInput('other', { name: 'Lab taken' }) }, 'CONFLICT', 'name');
    await admin.client.fails(CreateLabDocument, { input: labInput('other', { namespacePrefix: 'lab-taken' }) }, 'CONFLICT', 'namespacePrefix');
    await admin.client.fails(AddLabVmDocument, { labId: createLab.id, input: { name: 'vm-1', imageId } }, 'CONFLICT', 'name');
    const { addLabVm } = await admin.client.ok(AddLabVmDocument, { labId: createLab.id, input: { name: 'vm-2', imageId } });
    expect(addLabVm).toMatchObject({ name: 'vm-2', lab: { id: createLab.id }, image: { id: imageId } });
    expect((await admin.client.ok(RemoveLabVmDocument, { id: addLabVm.id })).removeLabVm).toBe(true);
    await admin.client.fails(RemoveLabVmDocument, { id: addLabVm.id }, 'NOT_FOUND');
  });

  it('updates a lab and can clear its lifetime, keeping the namespace prefix', async () => {
    const { createLab } = await admin.client.ok(CreateLabDocument, { input: labInput('upd', { instanceLifetimeMinutes: 30 }) });
    const { updateLab } = await admin.client.ok(UpdateLabDocument, { id: createLab.id, input: { name: 'Renamed', instanceLifetimeMinutes: null } });
    expect(updateLab).toMatchObject({ name: 'Renamed', namespacePrefix: 'lab-upd', instanceLifetimeMinutes: null, description: 'Lab number upd' });
    await admin.client.fails(UpdateLabDocument, { id: '999999', input: { name: 'x' } }, 'NOT_FOUND');
  });

  it('deletes a lab with its VMs and instruction pages', async () => {
    const { createLab } = await admin.client.ok(CreateLabDocument, { input: labInput('gone') });
    const { createInstructionPage } = await admin.client.ok(CreateInstructionPageDocument, { input: { labId: createLab.id, title: 'Intro' } });
    expect((await admin.client.ok(DeleteLabDocument, { id: createLab.id })).deleteLab).toBe(true);
    expect((await server.client().ok(LabDocument, { id: createLab.id })).lab).toBeNull();
    expect((await server.client().ok(InstructionPageDocument, { id: createInstructionPage.id })).instructionPage).toBeNull();
    await admin.client.fails(DeleteLabDocument, { id: createLab.id }, 'NOT_FOUND');
  });

  it('pages through labs with opaque cursors, totalCount and the edges of the range', async () => {
    for (const n of ['p1', 'p2', 'p3', 'p4', 'p5']) await admin.client.ok(CreateLabDocument, { input: labInput(n, { description: 'paging fixture' }) });
    const page1 = (await server.client().ok(LabsDocument, { first: 2, search: 'PAGING fixture' })).labs;
    expect(page1.totalCount).toBe(5);
    expect(page1.edges.map((e) => e.node.name)).toEqual(['Lab p1', 'Lab p2']);
    expect(page1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    expect(Buffer.from(page1.pageInfo.endCursor!, 'base64url').toString()).not.toContain('Lab');
    const page2 = (await server.client().ok(LabsDocument, { first: 2, after: page1.pageInfo.endCursor, search: 'paging fixture' })).labs;
    expect(page2.edges.map((e) => e.node.name)).toEqual(['Lab p3', 'Lab p4']);
    expect(page2.pageInfo.hasPreviousPage).toBe(true);
    const page3 = (await server.client().ok(LabsDocument, { first: 2, after: page2.pageInfo.endCursor, search: 'paging fixture' })).labs;
    expect(page3.edges.map((e) => e.node.name)).toEqual(['Lab p5']);
    expect(page3.pageInfo).toMatchObject({ hasNextPage: false, endCursor: page3.edges[0].cursor });
    const empty = (await server.client().ok(LabsDocument, { first: 0, search: 'paging fixture' })).labs;
    expect(empty).toMatchObject({ totalCount: 5, edges: [], pageInfo: { hasNextPage: true, startCursor: null, endCursor: null } });
    await server.client().fails(LabsDocument, { first: 101 }, 'BAD_USER_INPUT', 'first');
    await server.client().fails(LabsDocument, { first: -1 }, 'BAD_USER_INPUT', 'first');
    await server.client().fails(LabsDocument, { after: 'garbage' }, 'BAD_USER_INPUT', 'after');
    expect((await server.client().ok(LabsDocument, { first: 100, search: 'no such lab anywhere' })).labs.totalCount).toBe(0);
  });

  it('searches names and descriptions ignoring case, with wildcards taken literally', async () => {
    await admin.client.ok(CreateLabDocument, { input: labInput('pct', { description: 'Discount 50% off' }) });
    await admin.client.ok(CreateLabDocument, { input: labInput('nopct', { description: 'Discount 50 or more' }) });
    const found = (await server.client().ok(LabsDocument, { search: 'discount 50%' })).labs;
    expect(found.edges.map((e) => e.node.name)).toEqual(['Lab pct']);
    expect((await server.client().ok(LabsDocument, { search: 'LAB NOPCT' })).labs.totalCount).toBe(1);
  });

  it('loads a page of labs with their VMs and images in a constant number of SQL statements', async () => {
    for (let i = 0; i < 12; i++) {
      await admin.client.ok(CreateLabDocument, { input: labInput(`n1-${i}`, { vms: [{ name: 'a', imageId }, { name: 'b', imageId }, { name: 'c', imageId }] }) });
    }
    const statements = async (first: number) => {
      sql.length = 0;
      const { labs } = await server.client().ok(LabsWithImagesDocument, { first });
      expect(labs.edges).toHaveLength(first);
      return sql.filter((q) => /\b(select|SELECT)\b/.test(q) && !/sessions/.test(q)).length;
    };
    const small = await statements(2);
    const large = await statements(12);
    expect(large).toBe(small);
    expect(large).toBeLessThanOrEqual(4);
  });
});
