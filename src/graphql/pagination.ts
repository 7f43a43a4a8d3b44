import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import { Field, Int, ObjectType, type ClassType } from 'type-graphql';
import { badInput } from './errors.js';

@ObjectType({ description: 'Relay page information.' })
export class PageInfo {
  @Field(() => Boolean, { description: 'More objects follow this page.' })
  hasNextPage!: boolean;
  @Field(() => Boolean, { description: 'This page was asked for with `after`.' })
  hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true, description: 'Cursor of the first edge; null for an empty page.' })
  startCursor?: string | null;
  @Field(() => String, { nullable: true, description: 'Cursor of the last edge; pass it as `after` for the next page.' })
  endCursor?: string | null;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: PageInfo;
  totalCount: number;
}

/** Builds the Relay Edge and Connection object types for one node type. */
export function connectionTypes<T extends object>(name: string, node: ClassType<T>) {
  @ObjectType(`${name}Edge`, { description: `A ${name} in a page, with its cursor.` })
  class Edge {
    @Field(() => String, { description: 'Opaque; pass as `after` to continue after this node.' })
    cursor!: string;
    @Field(() => node, { description: `The ${name}.` })
    node!: T;
  }
  @ObjectType(`${name}Connection`, { description: `A page of ${name} objects.` })
  class ConnectionType {
    @Field(() => [Edge], { description: 'This page, in order.' })
    edges!: Edge[];
    @Field(() => PageInfo, { description: 'Where this page stands.' })
    pageInfo!: PageInfo;
    @Field(() => Int, { description: 'Number of objects matching the query, on all pages.' })
    totalCount!: number;
  }
  return ConnectionType;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
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
  sort: SortKey = ID_ORDER,
): Promise<Connection<T>> {
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
  const [rows, totalCount] = await Promise.all([
    first === 0 ? Promise.resolve([] as T[]) : em.find(entity, filter, { orderBy: orderBy as never, limit: first + 1 }),
    em.count(entity, build()),
  ]);
  const page = rows.slice(0, first);
  const edges = page.map((node) => ({ cursor: encodeCursor((node as Record<string, unknown>)[sort.field], node.id), node }));
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
