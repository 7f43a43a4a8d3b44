import 'reflect-metadata';
import type { EntityManager } from '@mikro-orm/core';
import { loadConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db.js';
import { Image, Lab, LabVm, User } from '../../src/entities/index.js';
import { createLogger } from '../../src/logger.js';
import { hashPassword } from '../../src/services/passwords.js';

export const VM_NAMES = ['router', 'client-a', 'client-b'];

/** Opens the server's own ORM on the server's database (applying its migrations), for seeding. */
async function withOrm<T>(env: Record<string, string>, use: (em: EntityManager) => Promise<T>): Promise<T> {
  const orm = await openDatabase(loadConfig(env).database, createLogger('silent'));
  try {
    return await use(orm.em.fork());
  } finally {
    await orm.close(true);
  }
}

const pad = (n: number) => String(n).padStart(4, '0');

function createImages(em: EntityManager, count: number): Image[] {
  return Array.from({ length: count }, (_, i) =>
    em.create(Image, {
      name: `image-${pad(i)}`,
      description: `VM image number ${i}`,
      url: `registry.example.org/vms/image-${pad(i)}:1.${i}`,
      cpuCores: 2,
      memory: '2Gi',
    } as Image),
  );
}

/** Labs of VM_NAMES.length VMs each, the VMs' images taken round-robin; inserted in batches by flush(). */
async function insertLabs(em: EntityManager, count: number, images: Image[]): Promise<Lab[]> {
  const labs = Array.from({ length: count }, (_, i) => {
    const lab = em.create(Lab, {
      name: `lab-${pad(i)}`,
      namespacePrefix: `lab-${pad(i)}`,
      description: `Lab number ${i}, seeded for the benchmark`,
      instanceLifetimeMinutes: null,
    } as Lab);
    VM_NAMES.forEach((name, k) => em.create(LabVm, { name, lab, image: images[(i * VM_NAMES.length + k) % images.length] } as unknown as LabVm));
    return lab;
  });
  await em.flush();
  return labs;
}

/** The catalogue benchmark's data: `labs` labs of three VMs each over `images` images. */
export function seedCatalogue(env: Record<string, string>, labs: number, images: number): Promise<void> {
  return withOrm(env, async (em) => {
    await insertLabs(em, labs, createImages(em, images));
  });
}

/** Trusted users (who may start labs) with one password, and one lab of three VMs; returns the lab's id and the e-mails. */
export function seedUsersAndLab(env: Record<string, string>, users: number, password: string): Promise<{ labId: string; emails: string[] }> {
  return withOrm(env, async (em) => {
    const [lab] = await insertLabs(em, 1, createImages(em, VM_NAMES.length));
    const passwordHash = await hashPassword(password);
    const emails = Array.from({ length: users }, (_, i) => `student-${pad(i)}@bench.example.org`);
    for (const email of emails) {
      em.create(User, { email, passwordHash, firstName: 'Bench', lastName: 'Student', isTrusted: true, emailVerified: true } as User);
    }
    await em.flush();
    return { labId: String(lab.id), emails };
  });
}
