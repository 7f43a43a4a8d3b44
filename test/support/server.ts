import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { GqlClient } from './graphql-client.js';
import { createDatabase, parsePostgresUrl } from './postgres.js';

export type Engine = 'sqlite' | 'postgres';

/** The engines every integration test runs on (TEST_ENGINES, default both). */
export const ENGINES: Engine[] = (process.env.TEST_ENGINES ?? 'sqlite,postgres')
  .split(',')
  .map((e) => e.trim())
  .filter((e): e is Engine => e === 'sqlite' || e === 'postgres');

export type Cluster = 'simulated' | 'real';

/**
 * The clusters the Kubernetes-facing suites run against (TEST_CLUSTERS, default both): the in-process
 * simulated one, and the real control plane the global setup starts (test/support/global-setup.ts).
 */
export const CLUSTERS: Cluster[] = (process.env.TEST_CLUSTERS ?? 'simulated,real')
  .split(',')
  .map((c) => c.trim())
  .filter((c): c is Cluster => c === 'simulated' || c === 'real');

export interface TestServer {
  engine: Engine;
  app: App;
  config: Config;
  url: string;
  /** ws:// URL of /graphql. */
  wsUrl: string;
  client(token?: string): GqlClient;
  stop(): Promise<void>;
}

export const TEST_SECRET = 'test-secret-key-that-is-long-enough';

/** A database of its own for one server: a temp SQLite file or a fresh PostgreSQL database. */
export async function testDatabaseEnv(engine: Engine): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'lo-test-'));
    return { env: { DATABASE_ENGINE: 'sqlite3', SQLITE_PATH: join(dir, 'db.sqlite3') }, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const base = inject('postgresUrl');
  if (!base) throw new Error('PostgreSQL tests need the global setup (TEST_ENGINES includes postgres)');
  const db = await createDatabase(base, 'lo_test');
  const p = parsePostgresUrl(db.url);
  return {
    env: {
      DATABASE_ENGINE: 'postgres',
      POSTGRES_SERVICE_HOST: p.host,
      POSTGRES_SERVICE_PORT: String(p.port),
      POSTGRES_USER: p.user,
      POSTGRES_PASSWORD: p.password,
      POSTGRES_DB: p.database,
    },
    drop: db.drop,
  };
}

/** Production-mode settings for tests; each test adds what it needs. */
export function baseTestEnv(): Record<string, string> {
  return {
    NODE_ENV: 'production',
    SECRET_KEY: TEST_SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    ACCOUNT_EMAIL_VERIFICATION: 'none',
    KUBERNETES_MODE: 'simulated',
    SIMULATED_VM_READY_SECONDS: '0.2',
    // Faster than a real cluster (namespace deletion takes tens of seconds there), in KubeVirt's order all the same.
    SIMULATED_NAMESPACE_TERMINATION_SECONDS: '0.2',
    SIMULATED_POD_TERMINATION_SECONDS: '0.1',
    // Tests start many instances per user; the quota tests set their own limits.
    MAX_INSTANCES_PER_USER: '0',
  };
}

/**
 * Starts the real server (createApp, listening on a free port) on its own database. `shared`
 * lets a second server use the same database, as a second replica would.
 */
export async function startTestServer(
  engine: Engine,
  env: Record<string, string> = {},
  shared?: { databaseEnv: Record<string, string> },
  options: { onQuery?: (sql: string) => void; logger?: Logger } = {},
): Promise<TestServer & { databaseEnv: Record<string, string> }> {
  const db = shared ? { env: shared.databaseEnv, drop: async () => {} } : await testDatabaseEnv(engine);
  const config = loadConfig({ ...baseTestEnv(), ...db.env, ...env });
  const logger = options.logger ?? createLogger((process.env.TEST_LOG_LEVEL as never) ?? 'silent');
  const app = await createApp(config, { logger, onQuery: options.onQuery });
  const url = await app.start();
  return {
    engine,
    app,
    config,
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    databaseEnv: db.env,
    client: (token?: string) => new GqlClient(url, token),
    async stop() {
      await app.stop();
      await db.drop();
    },
  };
}
