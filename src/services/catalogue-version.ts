import type { EntityManager } from '@mikro-orm/core';

/**
 * The catalogue's version: bumped by every change to images, labs, their VMs and pages, read by
 * the response cache before it answers from memory. It lives in the database so that every replica
 * sees a change at once.
 */
export async function bumpCatalogueVersion(em: EntityManager): Promise<void> {
  await em.getConnection().execute('update catalogue_versions set version = version + 1 where id = 1', [], 'run', em.getTransactionContext());
}

export async function readCatalogueVersion(em: EntityManager): Promise<string> {
  const rows = await em.getConnection().execute<{ version: number | string }[]>('select version from catalogue_versions where id = 1');
  return String(rows[0]?.version ?? 0);
}
