/**
 * One server replica in a child process of its own (forked by replica/index.ts), so that a test can
 * kill it with SIGKILL, or let TEST_CRASH_AT kill it, as an OOM kill or a lost node would. It runs the
 * real app (createApp) with the environment it is given and reports its URL over the IPC channel.
 */
import 'reflect-metadata';
import { createApp, type App } from '../../../src/app.js';
import { loadConfig } from '../../../src/config.js';
import { createLogger } from '../../../src/logger.js';

let app: App | undefined;

async function main(): Promise<void> {
  const env = JSON.parse(process.env.REPLICA_ENV ?? '{}') as Record<string, string>;
  app = await createApp(loadConfig(env), { logger: createLogger((env.LOG_LEVEL as never) ?? 'silent') });
  const url = await app.start();
  process.send?.({ url, identity: app.leader.identity });
  setInterval(() => process.send?.({ leader: app?.leader.isLeader ?? false, runs: app?.duties.runs }), 100).unref();
}

process.on('message', (message: { cmd?: string }) => {
  if (message.cmd === 'stop') void (app?.stop() ?? Promise.resolve()).finally(() => process.exit(0));
});
// The parent went away: leave nothing behind.
process.on('disconnect', () => void (app?.stop() ?? Promise.resolve()).finally(() => process.exit(0)));
main().catch((err: unknown) => {
  process.stderr.write(`replica failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
