import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/core';
import { sqlEm } from '../db.js';
import { Image, InstructionPage, Lab, LabVm, User } from '../entities/index.js';

/** A relation as an entity reference ({ id }) or, in a plain row, as the bare foreign key. */
export type RefOrId = number | { id: number };
export const idOf = (ref: RefOrId): number => (typeof ref === 'number' ? ref : ref.id);

/**
 * Per-request batch loaders: every relation in a list resolves with one query per level, not per
 * row. Catalogue rows are read-only here, so they are loaded as plain rows (mapped to property
 * names) rather than managed entities: no identity map, no hydration, far less garbage.
 */
export interface Loaders {
  image: DataLoader<number, Image | undefined>;
  lab: DataLoader<number, Lab | undefined>;
  user: DataLoader<number, User | undefined>;
  vmsByLab: DataLoader<number, LabVm[]>;
  pagesByLab: DataLoader<number, InstructionPage[]>;
}

function rowsById<T extends { id: number }>(em: EntityManager, entity: new () => T) {
  return new DataLoader<number, T | undefined>(async (ids) => {
    const rows: T[] = await sqlEm(em).createQueryBuilder(entity).select('*').where({ id: { $in: [...ids] } }).execute('all', true);
    const map = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => map.get(id));
  });
}

function entitiesById<T extends { id: number }>(em: EntityManager, entity: new () => T) {
  return new DataLoader<number, T | undefined>(async (ids) => {
    const rows = await em.find(entity, { id: { $in: [...ids] } } as never);
    const map = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => map.get(id));
  });
}

function rowsByLab<T extends { id: number; lab: RefOrId }>(em: EntityManager, entity: new () => T, orderBy: Record<string, 'asc'>) {
  return new DataLoader<number, T[]>(async (labIds) => {
    const rows: T[] = await sqlEm(em)
      .createQueryBuilder(entity)
      .select('*')
      .where({ lab: { $in: [...labIds] } })
      .orderBy(orderBy)
      .execute('all', true);
    const groups = new Map<number, T[]>(labIds.map((id) => [id, []]));
    for (const row of rows) groups.get(idOf(row.lab))?.push(row);
    return labIds.map((id) => groups.get(id) ?? []);
  });
}

export function createLoaders(em: EntityManager): Loaders {
  return {
    image: rowsById(em, Image),
    lab: rowsById(em, Lab),
    user: entitiesById(em, User), // User has computed fields (fullName), so it stays an entity
    vmsByLab: rowsByLab(em, LabVm, { id: 'asc' }),
    pagesByLab: rowsByLab(em, InstructionPage, { position: 'asc', id: 'asc' }),
  };
}
