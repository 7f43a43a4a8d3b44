/**
 * Vitest global setup: one PostgreSQL server for the whole run, handed to tests as `inject('postgresUrl')`.
 * Each test file then makes its own database on it with `createDatabase` (test/support/postgres.ts).
 *
 * - `TEST_DATABASE_URL` set: that server is used and nothing is started.
 * - `TEST_ENGINES` (comma list, default `sqlite,postgres`) without `postgres`: nothing is started and
 *   `postgresUrl` is '' (PostgreSQL tests skip themselves).
 * - otherwise a throwaway cluster is started here and stopped at the end of the run.
 */
import type { TestProject } from 'vitest/node';
import { startPostgresCluster } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URL for `createDatabase`, or '' when PostgreSQL is not among TEST_ENGINES. */
    postgresUrl: string;
  }
}

/** The engines named in TEST_ENGINES (default: both). */
export function testEngines(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.TEST_ENGINES ?? 'sqlite,postgres')
    .split(',')
    .map((engine) => engine.trim().toLowerCase())
    .filter(Boolean);
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!testEngines().includes('postgres')) {
    project.provide('postgresUrl', '');
    return async () => {};
  }
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('postgresUrl', external);
    return async () => {};
  }
  const started = Date.now();
  const cluster = await startPostgresCluster();
  console.log(`[global-setup] throwaway PostgreSQL at ${cluster.url} (started in ${Date.now() - started} ms)`);
  project.provide('postgresUrl', cluster.url);
  return () => cluster.stop();
}
