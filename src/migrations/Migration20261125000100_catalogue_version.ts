import { Migration } from '@mikro-orm/migrations';

/** One row whose version every catalogue change bumps: the response cache's validator, shared by replicas. */
export class Migration20261125000100CatalogueVersion extends Migration {
  override async up(): Promise<void> {
    const knex = this.getKnex();
    const create = knex.schema.createTable('catalogue_versions', (t) => {
      t.integer('id').primary();
      t.bigInteger('version').notNullable();
    });
    for (const q of create.toSQL()) this.addSql(q.sql);
    this.addSql(knex('catalogue_versions').insert({ id: 1, version: 1 }));
  }
}
