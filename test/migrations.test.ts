import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db.js';
import { createLogger } from '../src/logger.js';
import { ENGINES, baseTestEnv, testDatabaseEnv } from './support/server.js';

describe.each(ENGINES)('migrations on %s', (engine) => {
  it('create every table and column the entities use, once, even for replicas starting together', async () => {
    const db = await testDatabaseEnv(engine);
    const config = loadConfig({ ...baseTestEnv(), ...db.env });
    const logger = createLogger('silent');
    // PostgreSQL replicas start together behind an advisory lock; SQLite serves one process.
    const orms =
      engine === 'postgres'
        ? await Promise.all([openDatabase(config.database, logger), openDatabase(config.database, logger)])
        : [await openDatabase(config.database, logger), await openDatabase(config.database, logger)];
    try {
      const executed = await orms[0].migrator.getExecuted();
      expect(executed.map((m) => m.name)).toEqual([
        'Migration20261125000000_initial',
        'Migration20261125000100_catalogue_version',
        'Migration20261201000000_instance_lifecycle',
        'Migration20261202000000_vnc_console',
      ]);
      expect(await orms[1].migrator.getPending()).toEqual([]);
      // The ORM would still restyle types and constraints; what matters is that nothing is missing.
      const diff = await orms[0].schema.getUpdateSchemaSQL({ wrap: false });
      // (SQLite restyles by copying a table through `<name>__temp_alter`, which is not a missing table.)
      const missing = diff.split('\n').filter((line) => /add column|drop column/i.test(line) || (/create table/i.test(line) && !/__temp_alter/.test(line)));
      expect(missing).toEqual([]);
    } finally {
      await Promise.all(orms.map((o) => o.close(true)));
      await db.drop();
    }
  });
});
