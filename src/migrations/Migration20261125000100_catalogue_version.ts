import { Migration } from '@mikro-orm/migrations';
import { statementsFor } from './statements.js';

/** One row whose version every catalogue change bumps: the response cache's validator, shared by replicas. */
export class Migration20261125000100CatalogueVersion extends Migration {
  override up(): void {
    for (const sql of statementsFor(this.driver, { postgres: POSTGRES, sqlite: SQLITE })) this.addSql(sql);
  }
}

const POSTGRES = [
  `create table "catalogue_versions" ("id" integer, "version" bigint not null,` +
    ` constraint "catalogue_versions_pkey" primary key ("id"))`,
  `insert into "catalogue_versions" ("id", "version") values (1, 1)`,
];

const SQLITE = [
  "create table `catalogue_versions` (`id` integer, `version` bigint not null, primary key (`id`))",
  "insert into `catalogue_versions` (`id`, `version`) values (1, 1)",
];
