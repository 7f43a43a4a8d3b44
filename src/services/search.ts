import { raw, type FilterQuery } from '@mikro-orm/core';
import { badInput } from '../errors.js';

/** Longer search terms are refused: SQLite's LIKE refuses patterns over 50,000 bytes, and none is useful. */
export const MAX_SEARCH_LENGTH = 254;

/** Escapes LIKE wildcards so that a search for "50%" means the text "50%". */
function likePattern(term: string): string {
  return `%${term.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * Case-insensitive substring match on any of the columns, the same on SQLite and PostgreSQL
 * (`lower(col) LIKE ? ESCAPE '\'`). Returns a builder: raw fragments are single-use, and a page
 * query and its count each need their own.
 */
export function searchFilter<T>(search: string | null | undefined, columns: string[]): () => FilterQuery<T> {
  if (search && search.length > MAX_SEARCH_LENGTH) throw badInput('search', `search must be at most ${MAX_SEARCH_LENGTH} characters`);
  const term = search?.trim();
  if (!term) return () => ({}) as FilterQuery<T>;
  const pattern = likePattern(term);
  return () =>
    ({
      $or: columns.map((c) => ({ [raw((alias: string) => `lower(${alias}.${c}) like ? escape '\\'`, [pattern])]: [] })),
    }) as FilterQuery<T>;
}
