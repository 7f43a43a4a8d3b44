import type { EntityManager } from '@mikro-orm/core';
import type { LabInstanceStatus, VmStatus } from '../entities/index.js';

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

const CHUNK = 200;
const COLUMNS = ['id', 'expected_status', 'status', 'status_message', 'vms', 'updated_at', 'stopped_at'];

/**
 * Writes many instances' derived states in one statement per 200 rows (a burst of pods turning
 * Ready is hundreds of rows), each row only if its status is still the expected one. The same SQL
 * serves both engines (a VALUES list in a CTE, UPDATE ... FROM, RETURNING); values are bound in each
 * engine's storage format. Resolves with the ids actually written.
 */
export async function writeInstanceStates(em: EntityManager, engine: 'sqlite' | 'postgres', writes: StateWrite[]): Promise<Set<number>> {
  const written = new Set<number>();
  const pg = engine === 'postgres';
  const cast = (column: string, type: string) => (pg ? `cast(v.${column} as ${type})` : `v.${column}`);
  const date = (d: Date | null) => (d === null ? null : pg ? d.toISOString() : d.getTime());
  for (let i = 0; i < writes.length; i += CHUNK) {
    const chunk = writes.slice(i, i + CHUNK);
    const rows = chunk.map(() => `(${COLUMNS.map(() => '?').join(', ')})`).join(', ');
    const sql =
      `with v(${COLUMNS.join(', ')}) as (values ${rows}) ` +
      `update lab_instances set status = v.status, status_message = v.status_message, vms = ${cast('vms', 'jsonb')}, ` +
      `updated_at = ${cast('updated_at', 'timestamptz')}, stopped_at = ${cast('stopped_at', 'timestamptz')} ` +
      `from v where lab_instances.id = ${cast('id', 'integer')} and lab_instances.status = v.expected_status returning lab_instances.id`;
    const params = chunk.flatMap((w) => [
      w.id,
      w.expectedStatus,
      w.status,
      w.statusMessage,
      JSON.stringify(w.vms),
      date(w.updatedAt),
      date(w.stoppedAt),
    ]);
    const result = await em.getConnection().execute<{ id: number }[]>(sql, params, 'all');
    for (const row of result) written.add(Number(row.id));
  }
  return written;
}
