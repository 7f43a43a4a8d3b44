import { randomBytes } from 'node:crypto';
import { parsePostgresUrl } from '../../test/support/postgres.js';

/**
 * The environment the benchmarked server runs with: production mode, PostgreSQL, the in-process
 * simulated cluster, on 127.0.0.1 only. Limits that would refuse the benchmark's own set-up (logging
 * in a hundred users from one address) are relaxed; everything else keeps its default.
 */
export function serverEnv(postgresUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  const p = parsePostgresUrl(postgresUrl);
  return {
    NODE_ENV: 'production',
    SECRET_KEY: randomBytes(32).toString('base64url'),
    HOST: '127.0.0.1',
    PORT: '0',
    ACCOUNT_EMAIL_VERIFICATION: 'none',
    DATABASE_ENGINE: 'postgres',
    POSTGRES_SERVICE_HOST: p.host,
    POSTGRES_SERVICE_PORT: String(p.port),
    POSTGRES_USER: p.user,
    POSTGRES_PASSWORD: p.password,
    POSTGRES_DB: p.database,
    KUBERNETES_MODE: 'simulated',
    SIMULATED_VM_READY_SECONDS: '1',
    GRAPHQL_MAX_COST: '100000',
    RATE_LIMIT_LOGIN: '100000/60',
    // The subscription rounds start hundreds of instances as one user.
    MAX_INSTANCES_PER_USER: '0',
    ...extra,
  };
}
