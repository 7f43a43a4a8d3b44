import type { EntityManager } from '@mikro-orm/core';
import type { SqlEntityManager } from '@mikro-orm/knex';
import { dateFromDb } from '../db.js';
import type { LabInstanceStatus, VmStatus } from '../entities/index.js';

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
 * (through knex): MikroORM's execute() would inline them into the SQL text, which for a JSON document
 * of hundreds of rows costs more to quote and to parse than the update itself.
 */
async function executeBound<T>(em: EntityManager, engine: 'sqlite' | 'postgres', sql: string, params: unknown[]): Promise<T[]> {
  if (engine === 'sqlite') return em.getConnection().execute<T[]>(sql, params, 'all');
  const result = (await (em as SqlEntityManager).getKnex().raw(sql, params as never[])) as { rows: T[] };
  return result.rows;
}

/** SQLite keeps JSON as text; PostgreSQL's driver parses jsonb. */
const toJson = <T>(value: unknown): T => (typeof value === 'string' ? (JSON.parse(value) as T) : (value as T));

/** Each engine's reading of a JSON array of ids as a set. */
const IDS_IN = {
  postgres: 'select cast(value as integer) from jsonb_array_elements_text(cast(? as jsonb))',
  sqlite: 'select value from json_each(?)',
};

/** The rows of these ids (those that exist), in one statement. */
export async function readInstanceRows(em: EntityManager, engine: 'sqlite' | 'postgres', ids: number[]): Promise<InstanceRow[]> {
  const sql =
    'select id, lab_id, user_id, namespace, status, status_message, vms, created_at, updated_at, expires_at, stopped_at ' +
    `from lab_instances where id in (${IDS_IN[engine]})`;
  const result = await executeBound<Record<string, unknown>>(em, engine, sql, [JSON.stringify(ids)]);
  return result.map((r) => ({
    id: Number(r.id),
    lab: { id: Number(r.lab_id) },
    user: { id: Number(r.user_id) },
    namespace: String(r.namespace ?? ''),
    status: r.status as LabInstanceStatus,
    statusMessage: (r.status_message as string | null) ?? null,
    vms: toJson<VmStatus[]>(r.vms) ?? [],
    createdAt: dateFromDb(r.created_at)!,
    updatedAt: dateFromDb(r.updated_at)!,
    expiresAt: dateFromDb(r.expires_at),
    stoppedAt: dateFromDb(r.stopped_at),
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
