import { describe, expect, inject, it } from 'vitest';
import { connectPostgres, createDatabase, parsePostgresUrl } from './support/postgres.js';

describe('parsePostgresUrl', () => {
  it('reads every part of a full URL, decoding escaped characters', () => {
    expect(parsePostgresUrl('postgres://lab%40user:p%3Ass@db.example:6543/lab_db')).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'lab@user',
      password: 'p:ss',
      database: 'lab_db',
    });
  });

  it('fills in the default port and an empty password', () => {
    expect(parsePostgresUrl('postgresql://postgres@127.0.0.1/postgres')).toEqual({
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      password: '',
      database: 'postgres',
    });
  });

  it('rejects a URL of another scheme', () => {
    expect(() => parsePostgresUrl('mysql://root@localhost/db')).toThrow(/scheme/);
  });
});

const postgresUrl = inject('postgresUrl');

describe.skipIf(!postgresUrl)('the throwaway PostgreSQL server', () => {
  it('gives each caller its own database, usable over pg and gone after drop', async () => {
    const db = await createDatabase(postgresUrl);
    expect(db.name).toMatch(/^lo_test_[a-z0-9_]+$/);
    expect(parsePostgresUrl(db.url).database).toBe(db.name);

    const client = await connectPostgres(db.url);
    try {
      const { rows: version } = await client.query<{ version: string }>('select version()');
      expect(version[0]?.version).toMatch(/^PostgreSQL \d+/);

      await client.query('create table note (id serial primary key, body text not null)');
      await client.query('insert into note (body) values ($1), ($2)', ['first', 'second']);
      const { rows } = await client.query<{ body: string }>('select body from note order by id');
      expect(rows.map((row) => row.body)).toEqual(['first', 'second']);
    } finally {
      await client.end();
    }

    // A connection left open must not keep the database alive.
    const straggler = await connectPostgres(db.url);
    straggler.on('error', () => undefined);
    straggler.query('select pg_sleep(30)').catch(() => undefined);
    await db.drop();
    await straggler.end().catch(() => undefined);

    const admin = await connectPostgres(postgresUrl);
    try {
      const { rows } = await admin.query('select 1 from pg_database where datname = $1', [db.name]);
      expect(rows).toHaveLength(0);
    } finally {
      await admin.end();
    }
    await db.drop();
  });

  it('names concurrent databases apart', async () => {
    const dbs = await Promise.all([createDatabase(postgresUrl), createDatabase(postgresUrl, 'lo_other_')]);
    try {
      expect(new Set(dbs.map((db) => db.name)).size).toBe(2);
      expect(dbs[1]?.name.startsWith('lo_other_')).toBe(true);
    } finally {
      await Promise.all(dbs.map((db) => db.drop()));
    }
  });
});
