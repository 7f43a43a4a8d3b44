import { Migration } from '@mikro-orm/migrations';
import type { Knex } from '@mikro-orm/knex';

/**
 * Instances that survive their lab, quotas and lifetimes a user can extend:
 * - labs are deleted softly (`deleted_at`), so that the instances started from them stay, for history;
 *   their names and prefixes are unique among the labs that are not deleted (partial unique indexes);
 * - labs get an optional instance limit and an optional maximum lifetime (extensions included);
 * - instances record the CPU cores and memory they asked for, for the cluster-wide budget.
 */
export class Migration20261201000000InstanceLifecycle extends Migration {
  override async up(): Promise<void> {
    const knex = this.getKnex();
    const ts = (t: Knex.AlterTableBuilder, name: string) => t.timestamp(name, { useTz: true, precision: 3 });
    this.add(
      knex.schema.alterTable('labs', (t) => {
        ts(t, 'deleted_at').nullable();
        t.integer('max_instances').nullable();
        t.integer('max_instance_lifetime_minutes').nullable();
      }),
      knex.schema.alterTable('labs', (t) => {
        t.dropUnique(['name']);
        t.dropUnique(['namespace_prefix']);
      }),
      knex.schema.alterTable('lab_instances', (t) => {
        t.integer('cpu_cores').notNullable().defaultTo(0);
        t.bigInteger('memory_bytes').notNullable().defaultTo(0);
      }),
    );
    this.addSql('create unique index labs_name_live_unique on labs (name) where deleted_at is null');
    this.addSql('create unique index labs_namespace_prefix_live_unique on labs (namespace_prefix) where deleted_at is null');
  }

  private add(...builders: Knex.SchemaBuilder[]): void {
    for (const builder of builders) for (const q of builder.toSQL()) this.addSql(q.sql);
  }
}
