import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import { sqlEm } from '../db.js';
import { badInput } from '../errors.js';

type ClassType<T> = new (...args: never[]) => T;

/** Where a page stands (the Relay PageInfo's fields). */
export interface PageInfoData {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor?: string | null;
  endCursor?: string | null;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfoData;
  totalCount: number;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
  /** False when the query does not select totalCount: the COUNT is then skipped. */
  withCount?: boolean;
}

export interface PageOptions {
  sort?: SortKey;
  /** Plain rows (property names, foreign keys as ids) instead of managed entities: for read-only lists. */
  plain?: boolean;
}

export interface SortKey {
  /** Entity property to order by; ties are broken by id. */
  field: string;
  direction: 'asc' | 'desc';
  /** Turns a cursor's stored value back into the property's type. */
  parse?: (raw: string | number) => unknown;
}

const ID_ORDER: SortKey = { field: 'id', direction: 'asc' };

function encodeCursor(value: unknown, id: number): string {
  const v = value instanceof Date ? value.toISOString() : value;
  return Buffer.from(JSON.stringify([v, id])).toString('base64url');
}

function decodeCursor(cursor: string): [string | number, number] {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && Number.isSafeInteger(parsed[1])) return parsed as [string | number, number];
  } catch {
    // fall through
  }
  throw badInput('after', 'Not a cursor returned by this API');
}

export function checkFirst(first: number | null | undefined, max: number): number {
  const n = first ?? 20;
  if (!Number.isInteger(n) || n < 0 || n > max) throw badInput('first', `first must be from 0 to ${max}`);
  return n;
}

/**
 * Keyset pagination: two statements (the page and the count) whatever the page size, and stable
 * under inserts, unlike offsets.
 */
export async function paginate<T extends { id: number }>(
  em: EntityManager,
  entity: ClassType<T>,
  where: FilterQuery<T> | (() => FilterQuery<T>),
  args: PageArgs,
  maxPageSize: number,
  options: PageOptions = {},
): Promise<Connection<T>> {
  const sort = options.sort ?? ID_ORDER;
  const first = checkFirst(args.first, maxPageSize);
  const build = typeof where === 'function' ? where : () => where;
  let filter: FilterQuery<T> = build();
  if (args.after) {
    const [raw, id] = decodeCursor(args.after);
    const value = sort.parse ? sort.parse(raw) : raw;
    const op = sort.direction === 'asc' ? '$gt' : '$lt';
    const after =
      sort.field === 'id'
        ? { id: { [op]: id } }
        : { $or: [{ [sort.field]: { [op]: value } }, { [sort.field]: value, id: { [op]: id } }] };
    filter = { $and: [filter, after] } as FilterQuery<T>;
  }
  const orderBy = sort.field === 'id' ? { id: sort.direction } : { [sort.field]: sort.direction, id: sort.direction };
  const page = (): Promise<T[]> => {
    if (first === 0) return Promise.resolve([]);
    if (!options.plain) return em.find(entity, filter, { orderBy: orderBy as never, limit: first + 1 });
    return sqlEm(em).createQueryBuilder(entity).select('*').where(filter as never).orderBy(orderBy).limit(first + 1).execute('all', true);
  };
  const counted = args.withCount !== false || first === 0;
  const [rows, totalCount] = await Promise.all([page(), counted ? em.count(entity, build()) : Promise.resolve(-1)]);
  const items = rows.slice(0, first);
  const edges = items.map((node) => ({ cursor: encodeCursor((node as Record<string, unknown>)[sort.field], node.id), node }));
  return {
    edges,
    totalCount,
    pageInfo: {
      hasNextPage: first === 0 ? totalCount > 0 && !args.after : rows.length > first,
      hasPreviousPage: Boolean(args.after),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}
