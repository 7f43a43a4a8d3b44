import 'reflect-metadata';
import { loadConfig } from '../config.js';
import { migrate } from '../db.js';
import { openDatabase } from '../db.js';
import { createLogger } from '../logger.js';

/** `npm run migrate`: applies pending migrations and exits (start-up does the same). */
const logger = createLogger('info');
const config = loadConfig(process.env);
const orm = await openDatabase(config.database, logger);
logger.info('database is up to date', { pending: (await orm.getMigrator().getPendingMigrations()).length });
void migrate;
await orm.close(true);
