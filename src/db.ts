import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { MikroORM, type EntityManager, type Options } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/knex';
import { Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { SqliteDriver } from '@mikro-orm/sqlite';
import type { DatabaseConfig } from './config.js';
import { entities } from './entities/index.js';
import type { Logger } from './logger.js';
import { migrationsList } from './migrations/index.js';

export type Orm = MikroORM;

function ormOptions(db: DatabaseConfig, onQuery?: (sql: string) => void): Options {
  const common: Options = {
    entities,
    extensions: [Migrator],
    migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    discovery: { warnWhenNoEntities: true },
    allowGlobalContext: false,
    forceUtcTimezone: true,
    // Only for instrumentation (tests count statements): every SQL statement goes to onQuery.
    debug: onQuery ? ['query'] : false,
    logger: onQuery ? (message: string) => onQuery(message) : undefined,
  };
  if (db.engine === 'sqlite') {
    if (db.path !== ':memory:') mkdirSync(dirname(db.path), { recursive: true });
    return {
      ...common,
      driver: SqliteDriver,
      dbName: db.path,
      pool: { min: 1, max: 1, afterCreate: sqlitePragmas },
    } as Options;
  }
  return {
    ...common,
    driver: PostgreSqlDriver,
    host: db.host,
    port: db.port,
    user: db.user,
    password: db.password,
    dbName: db.dbName,
    pool: { min: 0, max: db.poolMax },
  } as Options;
}

/** WAL and a busy timeout let several processes share one SQLite file without "database is locked". */
function sqlitePragmas(conn: { exec(sql: string, cb: (err: Error | null) => void): void }, done: (err: Error | null) => void) {
  conn.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;', done);
}

/** Connects and applies pending migrations. */
export async function openDatabase(db: DatabaseConfig, logger: Logger, onQuery?: (sql: string) => void): Promise<Orm> {
  const orm = await MikroORM.init(ormOptions(db, onQuery));
  const applied = await migrate(orm);
  if (applied.length) logger.info('database migrations applied', { migrations: applied, engine: db.engine });
  return orm;
}

/** Any fixed number: the key of the advisory lock that serializes migrations across replicas. */
const MIGRATION_LOCK = 740_211_001;

/**
 * Applies pending migrations. On PostgreSQL, replicas starting together on an empty database take
 * turns through a transaction-scoped advisory lock, so only the first one migrates.
 */
export async function migrate(orm: Orm): Promise<string[]> {
  if (orm.config.get('driver') !== PostgreSqlDriver) {
    return (await orm.getMigrator().up()).map((m) => m.name);
  }
  const em = orm.em.fork();
  return em.transactional(async (tx) => {
    const ctx = tx.getTransactionContext();
    await tx.getConnection().execute(`select pg_advisory_xact_lock(${MIGRATION_LOCK})`, [], 'all', ctx);
    return (await orm.getMigrator().up({ transaction: ctx })).map((m) => m.name);
  });
}

/** Both drivers are SQL drivers; this is the query builder view of the same EntityManager. */
export const sqlEm = (em: EntityManager) => em as unknown as SqlEntityManager;
