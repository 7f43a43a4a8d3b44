import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateImageDocument,
  CreateLabDocument,
  DeleteImageDocument,
  ImageDocument,
  ImagesDocument,
  UpdateImageDocument,
} from './generated/graphql.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

const input = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  description: `The ${name} image`,
  url: `registry.example.org/vms/${name.toLowerCase()}:22.04`,
  ...extra,
});

describe.each(ENGINES)('images on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer(engine);
    [admin, user] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
  });
  afterAll(() => server?.stop());

  it('lets an admin create an image with the original defaults of 3 cores and 3G', async () => {
    const { createImage } = await admin.client.ok(CreateImageDocument, { input: input('Ubuntu') });
    expect(createImage).toMatchObject({ name: 'Ubuntu', cpuCores: 3, memory: '3G', url: 'registry.example.org/vms/ubuntu:22.04' });
    const { image } = await server.client().ok(ImageDocument, { id: createImage.id });
    expect(image).toEqual(createImage);
  });

  it('refuses catalogue changes to anonymous callers and plain users', async () => {
    await server.client().fails(CreateImageDocument, { input: input('Anon') }, 'UNAUTHENTICATED');
    await user.client.fails(CreateImageDocument, { input: input('Trusted') }, 'FORBIDDEN');
    await server.client('not-a-token').fails(CreateImageDocument, { input: input('Bad') }, 'UNAUTHENTICATED');
    const { createImage } = await admin.client.ok(CreateImageDocument, { input: input('Guarded') });
    await server.client().fails(UpdateImageDocument, { id: createImage.id, input: { name: 'X' } }, 'UNAUTHENTICATED');
    await user.client.fails(UpdateImageDocument, { id: createImage.id, input: { name: 'X' } }, 'FORBIDDEN');
    await server.client().fails(DeleteImageDocument, { id: createImage.id }, 'UNAUTHENTICATED');
    await user.client.fails(DeleteImageDocument, { id: createImage.id }, 'FORBIDDEN');
    const { images } = await admin.client.ok(ImagesDocument, { search: 'Anon' });
    expect(images.totalCount).toBe(0);
  });

  it('lets anyone read images', async () => {
    await admin.client.ok(CreateImageDocument, { input: input('Readable') });
    for (const client of [server.client(), user.client, admin.client]) {
      const { images } = await client.ok(ImagesDocument, { search: 'readable' });
      expect(images.edges.map((e) => e.node.name)).toEqual(['Readable']);
    }
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: 'x'.repeat(33) }, 'name'],
    [{ name: '   ' }, 'name'],
    [{ description: '' }, 'description'],
    [{ description: 'd'.repeat(129) }, 'description'],
    [{ url: '' }, 'url'],
    [{ url: 'not a url' }, 'url'],
    [{ url: 'Registry.example.org/UPPER:tag' }, 'url'],
    [{ url: `r.example.org/${'a'.repeat(260)}` }, 'url'],
    [{ cpuCores: 0 }, 'cpuCores'],
    [{ cpuCores: 65 }, 'cpuCores'],
    [{ memory: '3 GB' }, 'memory'],
    [{ memory: '0' }, 'memory'],
    [{ memory: '512Ki' }, 'memory'],
    [{ memory: '999999' }, 'memory'],
    [{ memory: '0.5M' }, 'memory'],
  ])('rejects %j as BAD_USER_INPUT on the field', async (override, field) => {
    const error = await admin.client.fails(CreateImageDocument, { input: { ...input('Valid'), ...override } }, 'BAD_USER_INPUT', field);
    expect(error.message).not.toContain('not a url');
  });

  it("accepts the smallest memory KubeVirt admits (1M), in decimal and binary units", async () => {
    for (const memory of ['1M', '1000k', '1000000', '977Ki']) {
      const { createImage } = await admin.client.ok(CreateImageDocument, { input: input(`mem-${memory}`, { memory }) });
      expect(createImage.memory).toBe(memory);
    }
  });

  it('accepts image references with a registry port, nested paths, a tag and a digest', async () => {
    const url = `localhost:5000/team/vms/debian:12.5@sha256:${'a'.repeat(64)}`;
    const { createImage } = await admin.client.ok(CreateImageDocument, { input: input('Digest', { url, cpuCores: 64, memory: '512Mi' }) });
    expect(createImage).toMatchObject({ url, cpuCores: 64, memory: '512Mi' });
  });

  it('answers CONFLICT on the name field for a taken name, on create and on rename', async () => {
    const { createImage } = await admin.client.ok(CreateImageDocument, { input: input('Taken') });
    await admin.client.fails(CreateImageDocument, { input: input('Taken') }, 'CONFLICT', 'name');
    const { createImage: other } = await admin.client.ok(CreateImageDocument, { input: input('Other') });
    await admin.client.fails(UpdateImageDocument, { id: other.id, input: { name: 'Taken' } }, 'CONFLICT', 'name');
    const { updateImage } = await admin.client.ok(UpdateImageDocument, { id: createImage.id, input: { name: 'Taken', cpuCores: 2 } });
    expect(updateImage).toMatchObject({ name: 'Taken', cpuCores: 2, memory: '3G' });
  });

  it('refuses to delete an image that a lab uses, then deletes it once unused', async () => {
    const { createImage } = await admin.client.ok(CreateImageDocument, { input: input('InUse') });
    await admin.client.ok(CreateLabDocument, {
      input: { name: 'Uses image', namespacePrefix: 'uses-image', description: 'd', vms: [{ name: 'vm1', imageId: createImage.id }] },
    });
    await admin.client.fails(DeleteImageDocument, { id: createImage.id }, 'CONFLICT');
    expect((await server.client().ok(ImageDocument, { id: createImage.id })).image?.name).toBe('InUse');
    const { createImage: unused } = await admin.client.ok(CreateImageDocument, { input: input('Unused') });
    expect((await admin.client.ok(DeleteImageDocument, { id: unused.id })).deleteImage).toBe(true);
    expect((await server.client().ok(ImageDocument, { id: unused.id })).image).toBeNull();
    await admin.client.fails(DeleteImageDocument, { id: unused.id }, 'NOT_FOUND');
  });

  it('answers NOT_FOUND for updates of a missing image and BAD_USER_INPUT for a malformed id', async () => {
    await admin.client.fails(UpdateImageDocument, { id: '999999', input: { name: 'Nope' } }, 'NOT_FOUND');
    await server.client().fails(ImageDocument, { id: 'abc' }, 'BAD_USER_INPUT', 'id');
  });
});
