import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/sql';
import { CompiledQuery } from 'kysely';
import { LabInstance, type LabInstanceStatus, type VmStatus } from '../entities/index.js';

/**
 * The columns of a lab instance that the reconciler derives and publishes, as plain data. Read
 * without the ORM's identity map and hydration: a burst re-reads hundreds of rows per pass.
 */
export interface InstanceRow {
  id: number;
  lab: { id: number };
  user: { id: number };
  namespace: string;
  status: LabInstanceStatus;
  statusMessage: string | null;
  vms: VmStatus[];
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  stoppedAt: Date | null;
}

/** A derived state to write. */
export interface StateWrite {
  id: number;
  /** The status the row must still have: another replica or a mutation may have moved it on. */
  expectedStatus: LabInstanceStatus;
  status: LabInstanceStatus;
  statusMessage: string | null;
  vms: VmStatus[];
  updatedAt: Date;
  stoppedAt: Date | null;
}

/**
 * Runs one statement and resolves with its rows. On PostgreSQL the values travel as bound parameters
 * (through Kysely, in the EntityManager's transaction if it has one): MikroORM's execute() would
 * inline them into the SQL text, which for a JSON document of hundreds of rows costs more to quote and
 * to parse than the update itself. The statement's `?` placeholders become PostgreSQL's `$1`, `$2`, ...
 */
async function executeBound<T>(em: EntityManager, engine: 'sqlite' | 'postgres', sql: string, params: unknown[]): Promise<T[]> {
  if (engine === 'sqlite') return em.getConnection().execute<T[]>(sql, params, 'all');
  let n = 0;
  const query = CompiledQuery.raw(sql.replace(/\?/g, () => `$${++n}`), params);
  return (await (em as SqlEntityManager).getKysely().executeQuery<T>(query)).rows;
}

/**
 * The rows of these ids (those that exist), in one statement, as plain rows: MikroORM's query builder
 * maps columns to properties and converts dates for either engine, without entities. JSON it leaves
 * as SQLite's text.
 */
export async function readInstanceRows(em: EntityManager, ids: number[]): Promise<InstanceRow[]> {
  const rows: Array<Omit<InstanceRow, 'lab' | 'user' | 'vms'> & { lab: number; user: number; vms: VmStatus[] | string }> = await (em as SqlEntityManager)
    .createQueryBuilder(LabInstance)
    .select(['id', 'lab', 'user', 'namespace', 'status', 'statusMessage', 'vms', 'createdAt', 'updatedAt', 'expiresAt', 'stoppedAt'])
    .where({ id: { $in: ids } })
    .execute('all', true);
  return rows.map((r) => ({
    ...r,
    lab: { id: r.lab },
    user: { id: r.user },
    vms: typeof r.vms === 'string' ? (JSON.parse(r.vms) as VmStatus[]) : r.vms,
    statusMessage: r.statusMessage ?? null,
    expiresAt: r.expiresAt ?? null,
    stoppedAt: r.stoppedAt ?? null,
  }));
}

/** Each engine's reading of the JSON array of writes as a table `v`, with columns in storage types. */
const WRITES_AS_TABLE = {
  postgres:
    'jsonb_to_recordset(cast(? as jsonb)) as v(id integer, expected_status text, status text, status_message text, ' +
    'vms jsonb, updated_at timestamptz, stopped_at timestamptz)',
  sqlite:
    "(select json_extract(value, '$.id') as id, json_extract(value, '$.expected_status') as expected_status, " +
    "json_extract(value, '$.status') as status, json_extract(value, '$.status_message') as status_message, " +
    "json_extract(value, '$.vms') as vms, json_extract(value, '$.updated_at') as updated_at, " +
    "json_extract(value, '$.stopped_at') as stopped_at from json_each(?)) as v",
};

/**
 * Writes many instances' derived states in one statement (a burst of pods turning Ready is hundreds
 * of rows), each row only if its status is still the expected one. The rows travel as one JSON
 * parameter that each engine reads as a table (jsonb_to_recordset, json_each), with dates in each
 * engine's storage format; then one UPDATE ... FROM ... RETURNING. Resolves with the ids written.
 */
export async function writeInstanceStates(em: EntityManager, engine: 'sqlite' | 'postgres', writes: StateWrite[]): Promise<Set<number>> {
  const pg = engine === 'postgres';
  const date = (d: Date | null) => (d === null ? null : pg ? d.toISOString() : d.getTime());
  const rows = writes.map((w) => ({
    id: w.id,
    expected_status: w.expectedStatus,
    status: w.status,
    status_message: w.statusMessage,
    vms: w.vms,
    updated_at: date(w.updatedAt),
    stopped_at: date(w.stoppedAt),
  }));
  const sql =
    'update lab_instances set status = v.status, status_message = v.status_message, vms = v.vms, ' +
    'updated_at = v.updated_at, stopped_at = v.stopped_at ' +
    `from ${WRITES_AS_TABLE[engine]} ` +
    'where lab_instances.id = v.id and lab_instances.status = v.expected_status returning lab_instances.id';
  const result = await executeBound<{ id: number }>(em, engine, sql, [JSON.stringify(rows)]);
  return new Set(result.map((row: { id: number }) => Number(row.id)));
}

/** Columns a transition may set along with the status. */
export type TransitionSet = Partial<Pick<LabInstance, 'statusMessage' | 'vms' | 'stoppedAt' | 'expiresAt'>>;

/**
 * One status transition, as one conditional UPDATE: the row moves to `to` only if its status is still
 * one of `from`, so no writer can overwrite a later state it has not seen (a stop during a start wins;
 * a start never writes STARTING over STOPPING). Resolves true when this call made the transition.
 */
export async function transition(
  em: EntityManager,
  id: number,
  from: readonly LabInstanceStatus[],
  to: LabInstanceStatus,
  set: TransitionSet = {},
): Promise<boolean> {
  const changed = await em.nativeUpdate(LabInstance, { id, status: { $in: [...from] } }, { ...set, status: to, updatedAt: new Date() });
  return changed > 0;
}

/** How many instances are in each status (the metrics' gauge), one statement. */
export async function instancesByStatus(orm: { em: EntityManager }): Promise<Record<string, number>> {
  const em = orm.em.fork();
  const rows = await em.getConnection().execute<Array<{ status: string; n: string | number }>>('select status, count(*) as n from lab_instances group by status');
  return Object.fromEntries(rows.map((r: { status: string; n: string | number }) => [r.status, Number(r.n)]));
}
