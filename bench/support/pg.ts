import { createRequire } from 'node:module';

/** The part of a `pg` pool that the baseline uses. */
export interface PgPool {
  query<R = Record<string, unknown>>(query: { name?: string; text: string; values?: unknown[] }): Promise<{ rows: R[] }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface PgModule {
  Pool: new (config: { connectionString: string; max: number }) => PgPool;
}

// `pg` ships no type declarations and @types/pg is not a dependency (see test/support/postgres.ts).
const pg = createRequire(import.meta.url)('pg') as PgModule;

export function createPgPool(connectionString: string, max: number): PgPool {
  const pool = new pg.Pool({ connectionString, max });
  pool.on('error', () => {}); // an idle client dropped by the server is replaced on the next query
  return pool;
}
