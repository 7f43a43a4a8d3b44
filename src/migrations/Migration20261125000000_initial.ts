import { Migration } from '@mikro-orm/migrations';
import type { Knex } from '@mikro-orm/knex';

/**
 * The initial schema, written with knex's schema builder so that one migration produces the right
 * DDL for both SQLite and PostgreSQL. Timestamps are timestamptz on PostgreSQL (UTC).
 */
export class Migration20261125000000Initial extends Migration {
  override async up(): Promise<void> {
    const knex = this.getKnex();
    const ts = (t: Knex.CreateTableBuilder, name: string) => t.timestamp(name, { useTz: true, precision: 3 });
    this.add(
      knex.schema.createTable('users', (t) => {
        t.increments('id').primary();
        t.string('email', 254).notNullable().unique();
        t.string('password_hash', 255).notNullable();
        t.string('first_name', 150).notNullable();
        t.string('last_name', 150).notNullable().defaultTo('');
        t.string('display_name', 150).notNullable().defaultTo('');
        t.boolean('is_trusted').notNullable().defaultTo(false);
        t.boolean('is_admin').notNullable().defaultTo(false);
        t.boolean('is_active').notNullable().defaultTo(true);
        t.boolean('email_verified').notNullable().defaultTo(false);
        ts(t, 'date_joined').notNullable();
        ts(t, 'last_login').nullable();
      }),
      knex.schema.createTable('sessions', (t) => {
        t.string('id', 64).primary();
        t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE').index();
        ts(t, 'created_at').notNullable();
        ts(t, 'expires_at').notNullable();
        ts(t, 'revoked_at').nullable();
      }),
      knex.schema.createTable('account_tokens', (t) => {
        t.increments('id').primary();
        t.string('token_hash', 64).notNullable().unique();
        t.string('purpose', 32).notNullable();
        t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('CASCADE').index();
        ts(t, 'created_at').notNullable();
        ts(t, 'expires_at').notNullable();
        ts(t, 'used_at').nullable();
      }),
      knex.schema.createTable('rate_limits', (t) => {
        t.string('key', 255).primary();
        t.integer('count').notNullable();
        ts(t, 'reset_at').notNullable();
      }),
      knex.schema.createTable('images', (t) => {
        t.increments('id').primary();
        t.string('name', 32).notNullable().unique();
        t.string('description', 128).notNullable();
        t.string('url', 256).notNullable();
        t.integer('cpu_cores').notNullable().defaultTo(3);
        t.string('memory', 32).notNullable().defaultTo('3G');
        ts(t, 'created_at').notNullable();
      }),
      knex.schema.createTable('labs', (t) => {
        t.increments('id').primary();
        t.string('name', 32).notNullable().unique();
        t.string('namespace_prefix', 32).notNullable().unique();
        t.string('description', 128).notNullable();
        t.integer('instance_lifetime_minutes').nullable();
        ts(t, 'created_at').notNullable();
      }),
      knex.schema.createTable('lab_vms', (t) => {
        t.increments('id').primary();
        t.string('name', 63).notNullable();
        t.integer('lab_id').unsigned().notNullable().references('id').inTable('labs').onDelete('CASCADE').index();
        t.integer('image_id').unsigned().notNullable().references('id').inTable('images').onDelete('RESTRICT').index();
        t.unique(['lab_id', 'name']);
      }),
      knex.schema.createTable('instruction_pages', (t) => {
        t.increments('id').primary();
        t.string('title', 128).notNullable();
        t.text('content').nullable();
        t.integer('position').notNullable().defaultTo(0);
        t.integer('lab_id').unsigned().notNullable().references('id').inTable('labs').onDelete('CASCADE').index();
      }),
      knex.schema.createTable('lab_instances', (t) => {
        t.increments('id').primary();
        t.integer('lab_id').unsigned().notNullable().references('id').inTable('labs').onDelete('RESTRICT').index();
        t.integer('user_id').unsigned().notNullable().references('id').inTable('users').onDelete('RESTRICT').index();
        t.string('namespace', 63).notNullable().defaultTo('');
        t.string('status', 16).notNullable().index();
        t.text('status_message').nullable();
        t.jsonb('vms').notNullable();
        ts(t, 'created_at').notNullable();
        ts(t, 'updated_at').notNullable();
        ts(t, 'expires_at').nullable();
        ts(t, 'stopped_at').nullable();
      }),
    );
  }

  private add(...builders: Knex.SchemaBuilder[]): void {
    for (const builder of builders) for (const q of builder.toSQL()) this.addSql(q.sql);
  }
}
