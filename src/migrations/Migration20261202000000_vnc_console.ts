import { Migration } from '@mikro-orm/migrations';
import type { Knex } from '@mikro-orm/knex';

/**
 * The built-in VNC console:
 * - `lab_instances.last_activity_at`: the last keyboard or pointer event seen on any of its consoles;
 * - `vnc_grants`: which login session issued each VNC token (the token's claims are fixed by the
 *   original proxy, so this is kept beside it), so that a logout ends the consoles opened with it and
 *   a renewal through the same session extends them. Keyed by the SHA-256 of the token.
 */
export class Migration20261202000000VncConsole extends Migration {
  override async up(): Promise<void> {
    const knex = this.getKnex();
    const ts = (t: Knex.CreateTableBuilder | Knex.AlterTableBuilder, name: string) => t.timestamp(name, { useTz: true, precision: 3 });
    this.add(
      knex.schema.alterTable('lab_instances', (t) => {
        ts(t, 'last_activity_at').nullable();
      }),
      knex.schema.createTable('vnc_grants', (t) => {
        t.string('token_hash', 64).primary();
        t.string('session_id', 64).notNullable().index();
        t.integer('user_id').notNullable();
        t.integer('instance_id').notNullable();
        ts(t, 'expires_at').notNullable().index();
      }),
    );
  }

  private add(...builders: Knex.SchemaBuilder[]): void {
    for (const builder of builders) for (const q of builder.toSQL()) this.addSql(q.sql);
  }
}
