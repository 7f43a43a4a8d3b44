import { PostgreSqlPlatform } from '@mikro-orm/postgresql';
import type { AbstractSqlDriver } from '@mikro-orm/sql';

/** A migration's SQL, once for each engine. */
export interface EngineStatements {
  postgres: readonly string[];
  sqlite: readonly string[];
}

/**
 * The statements for the database a migration runs on: PostgreSQL's, or SQLite's for any SQLite driver.
 *
 * The migrations up to the VNC console were written with knex's schema builder, which MikroORM 6 ran
 * and MikroORM 7 no longer has (it builds its SQL with kysely, whose schema builder names types per
 * database). Their SQL is kept here verbatim as knex wrote it for each engine, so that a database
 * created now gets exactly the schema, constraint and index names of one created before.
 */
export function statementsFor(driver: AbstractSqlDriver, statements: EngineStatements): readonly string[] {
  return driver.getPlatform() instanceof PostgreSqlPlatform ? statements.postgres : statements.sqlite;
}
