import type { FilterQuery } from '@mikro-orm/core';

/** Escapes LIKE wildcards so that a search for "50%" means the text "50%". */
function likePattern(term: string): string {
  return `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * Case-insensitive substring match on any of the fields. `$ilike` is ILIKE on PostgreSQL and LIKE
 * (case-insensitive for ASCII) on SQLite.
 */
export function searchFilter<T>(search: string | null | undefined, fields: string[]): FilterQuery<T> {
  const term = search?.trim();
  if (!term) return {} as FilterQuery<T>;
  const pattern = likePattern(term);
  return { $or: fields.map((f) => ({ [f]: { $ilike: pattern } })) } as FilterQuery<T>;
}
