import { randomUUID } from 'node:crypto';
import { CreateImageDocument, CreateLabDocument } from '../generated/graphql.js';
import type { GqlClient } from './graphql-client.js';

/** Creates images and a lab of `vmNames` through the API, as an admin would. */
export async function createLabWithVms(
  admin: GqlClient,
  vmNames: string[],
  opts: { instanceLifetimeMinutes?: number | null; prefix?: string } = {},
) {
  const suffix = randomUUID().slice(0, 6);
  const images: { id: string }[] = [];
  for (const [i] of vmNames.entries()) {
    const { createImage } = await admin.ok(CreateImageDocument, {
      input: {
        name: `img-${suffix}-${i}`,
        description: 'test image',
        url: `registry.example.org/vms/image-${i}:1.${i}`,
        cpuCores: i + 1,
        memory: `${i + 1}Gi`,
      },
    });
    images.push(createImage);
  }
  const { createLab } = await admin.ok(CreateLabDocument, {
    input: {
      name: `lab-${suffix}`,
      namespacePrefix: opts.prefix ?? `lab-${suffix}`,
      description: 'A lab for tests',
      instanceLifetimeMinutes: opts.instanceLifetimeMinutes ?? null,
      vms: vmNames.map((name, i) => ({ name, imageId: images[i].id })),
    },
  });
  return { lab: createLab, images };
}
