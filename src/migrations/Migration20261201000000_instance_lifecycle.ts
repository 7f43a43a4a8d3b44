import { Migration } from '@mikro-orm/migrations';
import { statementsFor } from './statements.js';

/**
 * Instances that survive their lab, quotas and lifetimes a user can extend:
 * - labs are deleted softly (`deleted_at`), so that the instances started from them stay, for history;
 *   their names and prefixes are unique among the labs that are not deleted (partial unique indexes);
 * - labs get an optional instance limit and an optional maximum lifetime (extensions included);
 * - instances record the CPU cores and memory they asked for, for the cluster-wide budget.
 */
export class Migration20261201000000InstanceLifecycle extends Migration {
  override up(): void {
    for (const sql of statementsFor(this.driver, { postgres: POSTGRES, sqlite: SQLITE })) this.addSql(sql);
  }
}

const POSTGRES = [
  `alter table "labs" add column "deleted_at" timestamptz(3) null, add column "max_instances" integer null, add column "max_instance_lifetime_minutes" integer null`,
  `alter table "labs" drop constraint "labs_name_unique"`,
  `alter table "labs" drop constraint "labs_namespace_prefix_unique"`,
  `alter table "lab_instances" add column "cpu_cores" integer not null default '0', add column "memory_bytes" bigint not null default '0'`,
  `create unique index labs_name_live_unique on labs (name) where deleted_at is null`,
  `create unique index labs_namespace_prefix_live_unique on labs (namespace_prefix) where deleted_at is null`,
];

const SQLITE = [
  "alter table `labs` add column `deleted_at` datetime null",
  "alter table `labs` add column `max_instances` integer null",
  "alter table `labs` add column `max_instance_lifetime_minutes` integer null",
  "drop index `labs_name_unique`",
  "drop index `labs_namespace_prefix_unique`",
  "alter table `lab_instances` add column `cpu_cores` integer not null default '0'",
  "alter table `lab_instances` add column `memory_bytes` bigint not null default '0'",
  "create unique index labs_name_live_unique on labs (name) where deleted_at is null",
  "create unique index labs_namespace_prefix_live_unique on labs (namespace_prefix) where deleted_at is null",
];
