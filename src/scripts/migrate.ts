import 'reflect-metadata';
import { loadConfig } from '../config.js';
import { openDatabase } from '../db.js';
import { createLogger } from '../logger.js';

/** `npm run migrate`: applies pending migrations and exits (start-up does the same). */
const logger = createLogger('info');
const orm = await openDatabase(loadConfig(process.env).database, logger);
logger.info('database is up to date', { pending: (await orm.migrator.getPending()).length });
await orm.close(true);
