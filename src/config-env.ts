import { z } from 'zod';
import type { RateLimitRule } from './config.js';

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on', 'y', 't'].includes(s)) return true;
      if (['0', 'false', 'no', 'off', 'n', 'f'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const num = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be a number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const str = (fallback?: string) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? fallback : v));

const oneOf = <T extends string>(values: readonly T[], fallback: T) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const s = v.trim().toLowerCase() as T;
      if (!values.includes(s)) {
        ctx.addIssue({ code: 'custom', message: `must be one of ${values.join(', ')}` });
        return z.NEVER;
      }
      return s;
    });

/** Every variable the server reads, with its default and bounds. */
export const envSchema = z.object({
  NODE_ENV: str('development'),
  DEBUG: bool(false),
  HOST: str('0.0.0.0'),
  PORT: int(4000, 0, 65535),
  ALLOWED_HOSTS: str(''),
  USE_X_FORWARDED_HOST: bool(false),
  TRUST_PROXY: bool(false),
  SECRET_KEY: str(),
  DATABASE_ENGINE: oneOf(['sqlite3', 'sqlite', 'postgres', 'postgresql'] as const, 'sqlite3'),
  SQLITE_PATH: str('./data/lab-orchestrator.sqlite3'),
  POSTGRES_DB: str('lab_orchestrator'),
  POSTGRES_USER: str('postgres'),
  POSTGRES_PASSWORD: str(''),
  POSTGRES_SERVICE_HOST: str('localhost'),
  POSTGRES_SERVICE_PORT: int(5432, 1, 65535),
  POSTGRES_POOL_MAX: int(10, 1, 1000),
  SESSION_TTL_SECONDS: int(7 * 24 * 3600, 60, 365 * 24 * 3600),
  ACCOUNT_EMAIL_VERIFICATION: oneOf(['none', 'optional', 'mandatory'] as const, 'optional'),
  EMAIL_VERIFICATION_TTL_SECONDS: int(3 * 24 * 3600, 60, 365 * 24 * 3600),
  PASSWORD_RESET_TTL_SECONDS: int(3600, 60, 30 * 24 * 3600),
  SUPERUSER_EMAIL: str(),
  SUPERUSER_PASSWORD: str(),
  SUPERUSER_FIRST_NAME: str(),
  RATE_LIMIT_LOGIN: str('10/300'),
  RATE_LIMIT_REGISTER: str('5/3600'),
  RATE_LIMIT_PASSWORD_RESET: str('5/3600'),
  RATE_LIMIT_VERIFY_EMAIL: str('10/300'),
  RATE_LIMIT_RESEND_VERIFICATION: str('5/3600'),
  RATE_LIMIT_RESET_PASSWORD: str('10/300'),
  RATE_LIMIT_ADDRESS_MULTIPLIER: int(10, 1, 1000),
  EMAIL_HOST: str(),
  EMAIL_PORT: int(587, 1, 65535),
  EMAIL_HOST_USER: str(),
  EMAIL_HOST_PASSWORD: str(),
  EMAIL_USE_TLS: bool(true),
  DEFAULT_FROM_EMAIL: str('Lab Orchestrator <noreply@localhost>'),
  SITE_NAME: str('Lab Orchestrator'),
  FRONTEND_VERIFY_EMAIL_URL: str('http://localhost:3000/verify-email?token={token}'),
  FRONTEND_RESET_PASSWORD_URL: str('http://localhost:3000/reset-password?token={token}'),
  KUBERNETES_MODE: oneOf(['auto', 'simulated', 'kubeconfig', 'in-cluster', 'proxy'] as const, 'auto'),
  DEVELOPMENT: bool(false),
  KUBERNETES_SERVICE_HOST: str(),
  KUBERNETES_SERVICE_PORT: int(0, 0, 65535),
  KUBECONFIG: str(),
  KUBERNETES_REQUEST_TIMEOUT_SECONDS: num(10, 0.1, 300),
  SIMULATED_VM_READY_SECONDS: num(3, 0, 3600),
  SIMULATED_NAMESPACE_TERMINATION_SECONDS: num(2, 0, 3600),
  SIMULATED_POD_TERMINATION_SECONDS: num(1, 0, 3600),
  SIMULATED_IMAGE_PULL_BACKOFF_SECONDS: num(10, 0.01, 3600),
  SIMULATED_UNPULLABLE_IMAGES: str('*:does-not-exist'),
  SIMULATED_NODE_MEMORY: str('64Gi'),
  SIMULATED_NODE_CPU: str('16'),
  SIMULATED_BOOKMARK_SECONDS: num(60, 0.05, 3600),
  STATUS_RESYNC_SECONDS: num(10, 0.05, 3600),
  START_TIMEOUT_SECONDS: num(600, 0.05, 7 * 24 * 3600),
  STATUS_WRITE_BATCH: int(250, 1, 5000),
  WATCH_STALL_SECONDS: num(90, 0.5, 3600),
  WATCH_BACKOFF_MAX_SECONDS: num(30, 0.1, 3600),
  VNC_TOKEN_SECRET: str(),
  VNC_TOKEN_TTL_SECONDS: int(600, 10, 7 * 24 * 3600),
  LAB_VNC_PROTOCOL: oneOf(['http', 'https'] as const, 'http'),
  LAB_VNC_HOST: str('localhost'),
  LAB_VNC_PORT: str('30003'),
  LAB_VNC_PATH: str('lab_vnc.html'),
  WS_PROXY_HOST: str('localhost'),
  WS_PROXY_PORT: str('30002'),
  WS_PROXY_PATH_PREFIX: str(''),
  VNC_CONSOLE: oneOf(['builtin', 'labvnc'] as const, 'builtin'),
  VNC_CONSOLE_URL: str(),
  VNC_ALLOWED_ORIGINS: str(''),
  VNC_SECOND_CONNECTION: oneOf(['takeover', 'refuse'] as const, 'takeover'),
  VNC_ACTIVITY_WRITE_SECONDS: num(30, 0, 3600),
  VNC_UPSTREAM_TIMEOUT_SECONDS: num(10, 0.1, 300),
  GRAPHQL_MAX_DEPTH: int(10, 2, 100),
  GRAPHQL_MAX_COST: int(20_000, 10, 10_000_000),
  GRAPHQL_MAX_ALIASES: int(30, 0, 10_000),
  GRAPHQL_MAX_ROOT_FIELDS: int(20, 1, 10_000),
  GRAPHQL_MAX_TOKENS: int(5_000, 100, 1_000_000),
  GRAPHQL_DOCUMENT_CACHE_MB: num(16, 0, 4096),
  CATALOGUE_CACHE_MB: num(32, 0, 4096),
  WS_MAX_MESSAGE_KB: int(1024, 1, 1_048_576),
  WS_MAX_BUFFERED_MB: num(4, 0.1, 4096),
  WS_MAX_OPERATIONS_IN_FLIGHT: int(8, 1, 10_000),
  WS_MAX_SUBSCRIPTIONS: int(200, 1, 100_000),
  WS_INIT_TIMEOUT_SECONDS: num(3, 0.05, 3600),
  WS_KEEPALIVE_SECONDS: num(12, 0.05, 15),
  WS_SESSION_CHECK_SECONDS: num(30, 0.05, 3600),
  CATALOGUE_CACHE_ENTRIES: int(1000, 0, 1_000_000),
  DEPLOYMENT_ID: str('default'),
  RECOVERY_AFTER_SECONDS: num(60, 0.05, 7 * 24 * 3600),
  GC_GRACE_SECONDS: num(300, 0, 7 * 24 * 3600),
  LEADER_LEASE_SECONDS: num(15, 0.3, 3600),
  LEADER_RETRY_SECONDS: num(2, 0.05, 600),
  LEASE_NAMESPACE: str('default'),
  LEADER_IDENTITY: str(),
  MAX_INSTANCES_PER_USER: int(5, 0, 1_000_000),
  MAX_INSTANCES_PER_LAB: int(0, 0, 1_000_000),
  MAX_INSTANCES: int(0, 0, 1_000_000),
  MAX_TOTAL_CPU_CORES: int(0, 0, 100_000_000),
  MAX_TOTAL_MEMORY: str('0'),
  MAX_EXTENSION_MINUTES: int(0, 0, 525_600),
  TEST_CRASH_AT: oneOf(['', 'after-row', 'after-namespace', 'between-vmis', 'stop-after-mark'] as const, ''),
});

export type Env = z.output<typeof envSchema>;

export function parseRateLimit(name: string, raw: string, addressMultiplier: number, problems: string[]): RateLimitRule {
  const m = /^(\d+)\/(\d+)$/.exec(raw.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    problems.push(`${name}: must look like ATTEMPTS/SECONDS, e.g. 10/300`);
    return { limit: 1, addressLimit: 1, windowSeconds: 1 };
  }
  const limit = Number(m[1]);
  return { limit, addressLimit: limit * addressMultiplier, windowSeconds: Number(m[2]) };
}

export function checkPort(name: string, raw: string, problems: string[]): void {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) problems.push(`${name}: must be a port number from 1 to 65535`);
}

/** The original's DJANGO_SUPERUSER_* names, accepted for SUPERUSER_*. */
export function withAliases(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env };
  for (const key of ['EMAIL', 'PASSWORD', 'FIRST_NAME']) {
    if (!out[`SUPERUSER_${key}`] && out[`DJANGO_SUPERUSER_${key}`]) out[`SUPERUSER_${key}`] = out[`DJANGO_SUPERUSER_${key}`];
  }
  return out;
}

