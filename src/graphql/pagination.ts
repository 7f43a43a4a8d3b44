import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { sqlEm } from './loaders.js';
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
  /** False when the query does not select totalCount: the COUNT is then skipped. */
  withCount?: boolean;
}

export interface PageOptions {
  sort?: SortKey;
  /** Plain rows (property names, foreign keys as ids) instead of managed entities: for read-only lists. */
  plain?: boolean;
}

/** Whether the field being resolved selects `name` directly (through fragments too, ignoring aliases). */
export function selects(info: GraphQLResolveInfo, name: string): boolean {
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode | undefined): boolean =>
    !!set?.selections.some((sel) => {
      if (sel.kind === Kind.FIELD) return sel.name.value === name;
      if (sel.kind === Kind.INLINE_FRAGMENT) return walk(sel.selectionSet);
      if (seen.has(sel.name.value)) return false;
      seen.add(sel.name.value);
      return walk(info.fragments[sel.name.value]?.selectionSet);
    });
  return info.fieldNodes.some((node) => walk(node.selectionSet));
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
    return sqlEm(em).createQueryBuilder(entity).select('*').where(filter).orderBy(orderBy).limit(first + 1).execute('all', true);
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
