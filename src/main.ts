import 'reflect-metadata';
import { createApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

/** The only place that reads process.env, installs signal handlers and exits. */
async function main(): Promise<void> {
  const logger = createLogger((process.env.LOG_LEVEL as never) ?? 'info');
  let app;
  try {
    // createApp reports what only the database can tell (a weak SUPERUSER_PASSWORD for a new admin) the same way.
    app = await createApp(loadConfig(process.env), { logger });
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.error('invalid configuration; not starting', { problems: err.problems });
      process.exit(78);
    }
    throw err;
  }
  await app.start();
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    app.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  createLogger('error').error('start-up failed', { error: err });
  process.exit(1);
});
