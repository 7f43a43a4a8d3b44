import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { MikroORM, type EntityManager, type Options } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { SqliteDriver, type SqlEntityManager } from '@mikro-orm/sql';
import { SqliteDialect } from 'kysely';
import type { DatabaseConfig } from './config.js';
import { entities } from './entities/index.js';
import type { Logger } from './logger.js';
import { migrationsList } from './migrations/index.js';

export type Orm = MikroORM;

function ormOptions(db: DatabaseConfig, onQuery?: (sql: string) => void): Partial<Options> {
  const common: Partial<Options> = {
    entities,
    extensions: [Migrator],
    migrations: { migrationsList, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    discovery: { warnWhenNoEntities: true },
    allowGlobalContext: false,
    forceUtcTimezone: true,
    // Only for instrumentation (tests count statements): every SQL statement goes to onQuery.
    debug: onQuery ? ['query'] : false,
    ...(onQuery ? { logger: (message: string) => onQuery(message) } : {}),
  };
  if (db.engine === 'sqlite') {
    if (db.path !== ':memory:') mkdirSync(dirname(db.path), { recursive: true });
    return {
      ...common,
      driver: SqliteDriver,
      dbName: db.path,
      driverOptions: nodeSqliteDialect(db.path),
    };
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
  };
}

/**
 * SQLite through Node's own `node:sqlite` (no native module to install), in the shape Kysely's
 * SQLite dialect expects (better-sqlite3's). Its calls are synchronous: a statement runs on the event
 * loop, and so does waiting for another process's write lock on the same file (the busy timeout, 5 s
 * at most). WAL and that timeout let several processes share one file without "database is locked";
 * MikroORM turns foreign keys on itself.
 */
function nodeSqliteDialect(path: string): SqliteDialect {
  return new SqliteDialect({
    database: async () => {
      const db = new DatabaseSync(path, { timeout: 5000 });
      db.exec('PRAGMA journal_mode = WAL');
      return {
        prepare(sql: string) {
          const statement = db.prepare(sql);
          return {
            reader: statement.columns().length > 0,
            all: (parameters: ReadonlyArray<unknown>) => statement.all(...(parameters as SQLInputValue[])),
            run: (parameters: ReadonlyArray<unknown>) => statement.run(...(parameters as SQLInputValue[])),
            iterate: (parameters: ReadonlyArray<unknown>) => statement.iterate(...(parameters as SQLInputValue[])),
          };
        },
        close: () => db.close(),
      };
    },
  });
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
    return (await orm.migrator.up()).map((m) => m.name);
  }
  const em = orm.em.fork();
  return em.transactional(async (tx) => {
    const ctx = tx.getTransactionContext();
    await tx.getConnection().execute(`select pg_advisory_xact_lock(${MIGRATION_LOCK})`, [], 'all', ctx);
    return (await orm.migrator.up({ transaction: ctx })).map((m) => m.name);
  });
}

/** Both drivers are SQL drivers; this is the query builder view of the same EntityManager. */
export const sqlEm = (em: EntityManager) => em as unknown as SqlEntityManager;

/** The advisory lock key of everything that counts or deletes lab instances (startLab, deleteLab, quotas). */
export const INSTANCES_LOCK = 740_211_002;

/**
 * Serializes, across replicas, the transactions that decide on lab instances: PostgreSQL takes a
 * transaction-scoped advisory lock; SQLite takes its write lock at once with a write that changes
 * nothing (a deferred transaction that read first could not upgrade while another process writes).
 * Call it first thing inside `em.transactional`; the lock ends with the transaction.
 */
export async function lockInstances(tx: EntityManager): Promise<void> {
  const ctx = tx.getTransactionContext();
  const sql =
    tx.config.get('driver') === PostgreSqlDriver
      ? `select pg_advisory_xact_lock(${INSTANCES_LOCK})`
      : 'update lab_instances set id = id where id = -1';
  await tx.getConnection().execute(sql, [], 'run', ctx);
}
