import DataLoader from 'dataloader';
import type { EntityManager } from '@mikro-orm/core';
import { Image, InstructionPage, Lab, LabVm, User } from '../entities/index.js';

/** Per-request batch loaders: every relation in a list resolves with one query per level, not per row. */
export interface Loaders {
  image: DataLoader<number, Image | undefined>;
  lab: DataLoader<number, Lab | undefined>;
  user: DataLoader<number, User | undefined>;
  vmsByLab: DataLoader<number, LabVm[]>;
  pagesByLab: DataLoader<number, InstructionPage[]>;
}

function byId<T extends { id: number }>(em: EntityManager, entity: new () => T) {
  return new DataLoader<number, T | undefined>(async (ids) => {
    const rows = await em.find(entity, { id: { $in: [...ids] } } as never);
    const map = new Map(rows.map((r) => [r.id, r]));
    return ids.map((id) => map.get(id));
  });
}

function groupedByLab<T extends { id: number; lab: { id: number } }>(
  em: EntityManager,
  entity: new () => T,
  orderBy: Record<string, 'asc'>,
) {
  return new DataLoader<number, T[]>(async (labIds) => {
    const rows = await em.find(entity, { lab: { $in: [...labIds] } } as never, { orderBy: orderBy as never });
    const groups = new Map<number, T[]>(labIds.map((id) => [id, []]));
    for (const row of rows) groups.get(row.lab.id)?.push(row);
    return labIds.map((id) => groups.get(id) ?? []);
  });
}

export function createLoaders(em: EntityManager): Loaders {
  return {
    image: byId(em, Image),
    lab: byId(em, Lab),
    user: byId(em, User),
    vmsByLab: groupedByLab(em, LabVm, { id: 'asc' }),
    pagesByLab: groupedByLab(em, InstructionPage, { position: 'asc', id: 'asc' }),
  };
}
