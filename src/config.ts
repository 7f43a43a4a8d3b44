import { randomBytes } from 'node:crypto';
import { z } from 'zod';

export type DatabaseConfig =
  | { engine: 'sqlite'; path: string }
  | { engine: 'postgres'; host: string; port: number; dbName: string; user: string; password: string; poolMax: number };

export type KubernetesMode = 'auto' | 'simulated' | 'kubeconfig' | 'in-cluster' | 'proxy';
export type EmailVerification = 'none' | 'optional' | 'mandatory';

export interface RateLimitRule {
  /** Attempts allowed per account (e-mail address) within the window. */
  limit: number;
  /** Attempts allowed per client address within the window: limit x RATE_LIMIT_ADDRESS_MULTIPLIER. */
  addressLimit: number;
  windowSeconds: number;
}

export interface Config {
  mode: 'production' | 'development';
  http: { host: string; port: number; allowedHosts: string[]; useXForwardedHost: boolean; trustProxy: boolean };
  /** Signs session tokens (and VNC tokens unless VNC_TOKEN_SECRET is set). */
  secretKey: string;
  /** True when no SECRET_KEY was given and a random one was generated (development only). */
  secretKeyGenerated: boolean;
  database: DatabaseConfig;
  auth: {
    sessionTtlSeconds: number;
    emailVerification: EmailVerification;
    verificationTokenTtlSeconds: number;
    passwordResetTokenTtlSeconds: number;
    superuser?: { email: string; password: string; firstName: string };
    rateLimits: Record<'login' | 'register' | 'passwordReset' | 'verifyEmail' | 'resendVerification', RateLimitRule>;
  };
  email: {
    host?: string;
    port: number;
    user?: string;
    password?: string;
    useTls: boolean;
    from: string;
    /** Names the service in mail subjects and bodies (the original's Site name). */
    siteName: string;
    /** Link templates; `{token}` is replaced by the URL-encoded token. */
    verifyUrlTemplate: string;
    resetUrlTemplate: string;
  };
  kubernetes: {
    mode: KubernetesMode;
    serviceHost?: string;
    servicePort?: number;
    kubeconfigPath?: string;
    simulatedVmReadySeconds: number;
    requestTimeoutMs: number;
    /** How often every active instance is re-derived from the watch caches (and expiry is checked). */
    resyncMs: number;
    /** Instances per UPDATE statement when a burst of changes is written. */
    writeBatch: number;
    /** A watch that sends nothing, not even a bookmark, for this long is restarted. */
    watchStallMs: number;
    watchBackoffMaxMs: number;
  };
  vnc: {
    tokenSecret: string;
    tokenTtlSeconds: number;
    labVncProtocol: string;
    labVncHost: string;
    labVncPort: string;
    labVncPath: string;
    wsProxyHost: string;
    wsProxyPort: string;
    wsProxyPathPrefix: string;
  };
  graphql: { maxDepth: number; maxCost: number; maxPageSize: number; keepAliveMs: number; sessionCheckMs: number; catalogueCacheEntries: number };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

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

const envSchema = z.object({
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
  STATUS_RESYNC_SECONDS: num(10, 0.05, 3600),
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
  GRAPHQL_MAX_DEPTH: int(10, 2, 100),
  GRAPHQL_MAX_COST: int(20_000, 10, 10_000_000),
  WS_KEEPALIVE_SECONDS: num(12, 0.05, 15),
  WS_SESSION_CHECK_SECONDS: num(30, 0.05, 3600),
  CATALOGUE_CACHE_ENTRIES: int(1000, 0, 1_000_000),
});

type Env = z.output<typeof envSchema>;

function parseRateLimit(name: string, raw: string, addressMultiplier: number, problems: string[]): RateLimitRule {
  const m = /^(\d+)\/(\d+)$/.exec(raw.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    problems.push(`${name}: must look like ATTEMPTS/SECONDS, e.g. 10/300`);
    return { limit: 1, addressLimit: 1, windowSeconds: 1 };
  }
  const limit = Number(m[1]);
  return { limit, addressLimit: limit * addressMultiplier, windowSeconds: Number(m[2]) };
}

function checkPort(name: string, raw: string, problems: string[]): void {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) problems.push(`${name}: must be a port number from 1 to 65535`);
}

/**
 * Reads the whole configuration from an environment map. Every problem is collected and reported
 * at once in a ConfigError whose lines each start with the variable's name.
 */
export function loadConfig(rawEnv: Record<string, string | undefined>): Config {
  const env = withAliases(rawEnv);
  const problems: string[] = [];
  // Variable by variable, so that a bad value is reported together with every other problem.
  const e = {} as Record<string, unknown>;
  for (const [key, schema] of Object.entries(envSchema.shape)) {
    const result = schema.safeParse(env[key]);
    if (result.success) e[key] = result.data;
    else {
      problems.push(`${key}: ${result.error.issues[0]?.message ?? 'invalid'}`);
      e[key] = schema.parse(undefined);
    }
  }
  return finish(e as Env, problems);
}

function finish(e: Env, problems: string[]): Config {
  const development = e.DEBUG || e.NODE_ENV !== 'production';
  const config = buildConfig(e, development, problems);
  validateCrossField(e, config, problems);
  if (problems.length) throw new ConfigError(problems);
  return config;
}

function withAliases(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const out = { ...env };
  for (const key of ['EMAIL', 'PASSWORD', 'FIRST_NAME']) {
    if (!out[`SUPERUSER_${key}`] && out[`DJANGO_SUPERUSER_${key}`]) out[`SUPERUSER_${key}`] = out[`DJANGO_SUPERUSER_${key}`];
  }
  return out;
}

function buildConfig(e: Env, development: boolean, problems: string[]): Config {
  const secretKey = e.SECRET_KEY ?? (development ? randomBytes(32).toString('base64url') : '');
  const superuser =
    e.SUPERUSER_EMAIL && e.SUPERUSER_PASSWORD
      ? { email: e.SUPERUSER_EMAIL, password: e.SUPERUSER_PASSWORD, firstName: e.SUPERUSER_FIRST_NAME ?? 'Admin' }
      : undefined;
  return {
    mode: development ? 'development' : 'production',
    http: {
      host: e.HOST!,
      port: e.PORT,
      allowedHosts: e.ALLOWED_HOSTS!.split(/[;,]/).map((h) => h.trim()).filter(Boolean),
      useXForwardedHost: e.USE_X_FORWARDED_HOST,
      trustProxy: e.TRUST_PROXY,
    },
    secretKey,
    secretKeyGenerated: !e.SECRET_KEY,
    database: e.DATABASE_ENGINE.startsWith('postgres')
      ? {
          engine: 'postgres',
          host: e.POSTGRES_SERVICE_HOST!,
          port: e.POSTGRES_SERVICE_PORT,
          dbName: e.POSTGRES_DB!,
          user: e.POSTGRES_USER!,
          password: e.POSTGRES_PASSWORD!,
          poolMax: e.POSTGRES_POOL_MAX,
        }
      : { engine: 'sqlite', path: e.SQLITE_PATH! },
    auth: {
      sessionTtlSeconds: e.SESSION_TTL_SECONDS,
      emailVerification: e.ACCOUNT_EMAIL_VERIFICATION,
      verificationTokenTtlSeconds: e.EMAIL_VERIFICATION_TTL_SECONDS,
      passwordResetTokenTtlSeconds: e.PASSWORD_RESET_TTL_SECONDS,
      superuser,
      rateLimits: rateLimitsOf(e, problems),
    },
    email: {
      host: e.EMAIL_HOST,
      port: e.EMAIL_PORT,
      user: e.EMAIL_HOST_USER,
      password: e.EMAIL_HOST_PASSWORD,
      useTls: e.EMAIL_USE_TLS,
      from: e.DEFAULT_FROM_EMAIL!,
      siteName: e.SITE_NAME!,
      verifyUrlTemplate: e.FRONTEND_VERIFY_EMAIL_URL!,
      resetUrlTemplate: e.FRONTEND_RESET_PASSWORD_URL!,
    },
    kubernetes: {
      mode: e.DEVELOPMENT && e.KUBERNETES_MODE === 'auto' ? 'proxy' : e.KUBERNETES_MODE,
      serviceHost: e.KUBERNETES_SERVICE_HOST,
      servicePort: e.KUBERNETES_SERVICE_PORT || undefined,
      kubeconfigPath: e.KUBECONFIG,
      simulatedVmReadySeconds: e.SIMULATED_VM_READY_SECONDS,
      requestTimeoutMs: Math.round(e.KUBERNETES_REQUEST_TIMEOUT_SECONDS * 1000),
      resyncMs: Math.round(e.STATUS_RESYNC_SECONDS * 1000),
      writeBatch: e.STATUS_WRITE_BATCH,
      watchStallMs: Math.round(e.WATCH_STALL_SECONDS * 1000),
      watchBackoffMaxMs: Math.round(e.WATCH_BACKOFF_MAX_SECONDS * 1000),
    },
    vnc: {
      tokenSecret: e.VNC_TOKEN_SECRET ?? secretKey,
      tokenTtlSeconds: e.VNC_TOKEN_TTL_SECONDS,
      labVncProtocol: e.LAB_VNC_PROTOCOL,
      labVncHost: e.LAB_VNC_HOST!,
      labVncPort: e.LAB_VNC_PORT!,
      labVncPath: e.LAB_VNC_PATH!.replace(/^\/+/, ''),
      wsProxyHost: e.WS_PROXY_HOST!,
      wsProxyPort: e.WS_PROXY_PORT!,
      wsProxyPathPrefix: e.WS_PROXY_PATH_PREFIX!.replace(/^\/+|\/+$/g, ''),
    },
    graphql: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxCost: e.GRAPHQL_MAX_COST,
      maxPageSize: 100,
      keepAliveMs: Math.round(e.WS_KEEPALIVE_SECONDS * 1000),
      sessionCheckMs: Math.round(e.WS_SESSION_CHECK_SECONDS * 1000),
      catalogueCacheEntries: e.CATALOGUE_CACHE_ENTRIES,
    },
  };
}

/** Many people may share one client address (a classroom behind NAT), hence the multiplier for it. */
function rateLimitsOf(e: Env, problems: string[]): Config['auth']['rateLimits'] {
  const rule = (name: string, raw: string) => parseRateLimit(name, raw, e.RATE_LIMIT_ADDRESS_MULTIPLIER, problems);
  return {
    login: rule('RATE_LIMIT_LOGIN', e.RATE_LIMIT_LOGIN!),
    register: rule('RATE_LIMIT_REGISTER', e.RATE_LIMIT_REGISTER!),
    passwordReset: rule('RATE_LIMIT_PASSWORD_RESET', e.RATE_LIMIT_PASSWORD_RESET!),
    verifyEmail: rule('RATE_LIMIT_VERIFY_EMAIL', e.RATE_LIMIT_VERIFY_EMAIL!),
    resendVerification: rule('RATE_LIMIT_RESEND_VERIFICATION', e.RATE_LIMIT_RESEND_VERIFICATION!),
  };
}

function validateCrossField(e: Env, config: Config, problems: string[]): void {
  if (config.mode === 'production' && !e.SECRET_KEY) {
    problems.push('SECRET_KEY: required in production mode (set DEBUG=true or NODE_ENV=development to generate one)');
  } else if (e.SECRET_KEY && e.SECRET_KEY.length < 16 && config.mode === 'production') {
    problems.push('SECRET_KEY: must be at least 16 characters in production mode');
  }
  checkPort('LAB_VNC_PORT', e.LAB_VNC_PORT!, problems);
  checkPort('WS_PROXY_PORT', e.WS_PROXY_PORT!, problems);
  if (config.kubernetes.mode === 'proxy' && (!e.KUBERNETES_SERVICE_HOST || !e.KUBERNETES_SERVICE_PORT)) {
    problems.push('KUBERNETES_SERVICE_HOST: required (with KUBERNETES_SERVICE_PORT) in proxy mode (DEVELOPMENT=true)');
  }
  if (e.SUPERUSER_EMAIL && !e.SUPERUSER_PASSWORD) problems.push('SUPERUSER_PASSWORD: required when SUPERUSER_EMAIL is set');
  if (e.SUPERUSER_EMAIL && !/^[^@\s]+@[^@\s]+$/.test(e.SUPERUSER_EMAIL)) problems.push('SUPERUSER_EMAIL: not an e-mail address');
  for (const [name, tpl] of [
    ['FRONTEND_VERIFY_EMAIL_URL', e.FRONTEND_VERIFY_EMAIL_URL!],
    ['FRONTEND_RESET_PASSWORD_URL', e.FRONTEND_RESET_PASSWORD_URL!],
  ] as const) {
    if (!tpl.includes('{token}')) problems.push(`${name}: must contain {token}`);
  }
  const needsMail = config.auth.emailVerification !== 'none';
  if (config.mode === 'production' && needsMail && !config.email.host) {
    problems.push(
      `EMAIL_HOST: required in production mode while ACCOUNT_EMAIL_VERIFICATION=${config.auth.emailVerification} (verification mails must be sent); set it or ACCOUNT_EMAIL_VERIFICATION=none`,
    );
  }
}
