import { randomBytes } from 'node:crypto';
import { checkPort, envSchema, parseRateLimit, withAliases, type Env } from './config-env.js';

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
    rateLimits: Record<'login' | 'register' | 'passwordReset' | 'verifyEmail' | 'resendVerification' | 'resetPassword', RateLimitRule>;
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
    /** The simulated cluster's timings and failure modes (KUBERNETES_MODE=simulated only). */
    simulated: {
      namespaceTerminationMs: number;
      podTerminationMs: number;
      imagePullBackOffMs: number;
      unpullableImages: string[];
      node: { cpu: string; memory: string };
      bookmarkIntervalMs: number;
    };
    requestTimeoutMs: number;
    /** How often every active instance is re-derived from the watch caches (and expiry is checked). */
    resyncMs: number;
    /** A STARTING instance not READY this long after startLab becomes FAILED, with the reason. */
    startTimeoutMs: number;
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
    /** Where vncAccess.url points: the console page served by this server, or LabVNC. */
    console: 'builtin' | 'labvnc';
    /** Public address of the built-in console page (VNC_CONSOLE_URL). */
    consoleUrl: string;
    /** Origins whose pages may open the VNC proxy; empty: this server's own host and LAB_VNC_HOST; '*': any. */
    allowedOrigins: string[];
    /** A second connection to a VM already open through this replica takes it over, or is refused (409). */
    secondConnection: 'takeover' | 'refuse';
    /** lastActivityAt is written at most this often per instance. */
    activityWriteMs: number;
    /** How long the proxy waits for KubeVirt's VNC subresource to answer the upgrade. */
    upstreamTimeoutMs: number;
  };
  graphql: {
    maxDepth: number;
    maxCost: number;
    maxAliases: number;
    maxRootFields: number;
    /** Tokens a query may have; parsing stops there (HTTP and WebSocket alike). */
    maxTokens: number;
    maxPageSize: number;
    keepAliveMs: number;
    sessionCheckMs: number;
    catalogueCacheEntries: number;
    catalogueCacheBytes: number;
    /** Parsed documents kept, by the bytes they hold (query text included); per cache (HTTP, WebSocket). */
    documentCacheBytes: number;
    /** A WebSocket message larger than this closes the socket (1009), as a larger HTTP body is refused (413). */
    wsMaxMessageBytes: number;
    /** A socket whose client leaves more than this unread is closed (1008): no result waits unbounded. */
    wsMaxBufferedBytes: number;
    /** Queries and mutations executing at once per socket; more are refused (RATE_LIMITED). */
    wsMaxInFlight: number;
    /** Subscriptions per socket. */
    wsMaxSubscriptions: number;
    /** A socket that has not sent connection_init by then is closed (4408), on both protocols. */
    wsInitTimeoutMs: number;
  };
  /** DEPLOYMENT_ID: the label value on every object this deployment makes, and what its watches select. */
  deploymentId: string;
  lifecycle: {
    /** An instance PENDING or STOPPING this long is taken over by the leader (crash recovery). */
    recoveryAfterMs: number;
    /** A managed namespace of this deployment that no active instance accounts for is deleted once this old. */
    gcGraceMs: number;
    /** Most minutes one extendLabInstance call may add; 0: up to the lab's maximum lifetime. */
    maxExtensionMinutes: number;
  };
  /** Leader election for the periodic duties, through a coordination.k8s.io/v1 Lease. */
  leader: {
    namespace: string;
    name: string;
    leaseDurationMs: number;
    /** A leader that could not renew for this long stops leading (before anyone may take over). */
    renewDeadlineMs: number;
    retryMs: number;
    /** This replica's name in the lease (LEADER_IDENTITY, or host name and a random suffix). */
    identity?: string;
  };
  /** 0: no limit. */
  quotas: { perUser: number; perLab: number; total: number; cpuCores: number; memoryBytes: number };
  /** Test-only (TEST_CRASH_AT): the process kills itself with SIGKILL at this step of startLab. */
  testCrashAt?: CrashStep;
}

/** The steps of startLab (and of a stop: after STOPPING is written) at which TEST_CRASH_AT (test-only) kills the process. */
export type CrashStep = 'after-row' | 'after-namespace' | 'between-vmis' | 'stop-after-mark';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
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
      simulated: {
        namespaceTerminationMs: Math.round(e.SIMULATED_NAMESPACE_TERMINATION_SECONDS * 1000),
        podTerminationMs: Math.round(e.SIMULATED_POD_TERMINATION_SECONDS * 1000),
        imagePullBackOffMs: Math.round(e.SIMULATED_IMAGE_PULL_BACKOFF_SECONDS * 1000),
        unpullableImages: (e.SIMULATED_UNPULLABLE_IMAGES ?? '*:does-not-exist').split(',').map((p) => p.trim()).filter(Boolean),
        node: { cpu: e.SIMULATED_NODE_CPU ?? '16', memory: e.SIMULATED_NODE_MEMORY ?? '64Gi' },
        bookmarkIntervalMs: Math.round(e.SIMULATED_BOOKMARK_SECONDS * 1000),
      },
      requestTimeoutMs: Math.round(e.KUBERNETES_REQUEST_TIMEOUT_SECONDS * 1000),
      resyncMs: Math.round(e.STATUS_RESYNC_SECONDS * 1000),
      startTimeoutMs: Math.round(e.START_TIMEOUT_SECONDS * 1000),
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
      console: e.VNC_CONSOLE,
      consoleUrl: e.VNC_CONSOLE_URL ?? `http://localhost:${e.PORT}/console/`,
      allowedOrigins: e.VNC_ALLOWED_ORIGINS!.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter(Boolean),
      secondConnection: e.VNC_SECOND_CONNECTION,
      activityWriteMs: Math.round(e.VNC_ACTIVITY_WRITE_SECONDS * 1000),
      upstreamTimeoutMs: Math.round(e.VNC_UPSTREAM_TIMEOUT_SECONDS * 1000),
    },
    graphql: {
      maxDepth: e.GRAPHQL_MAX_DEPTH,
      maxCost: e.GRAPHQL_MAX_COST,
      maxAliases: e.GRAPHQL_MAX_ALIASES,
      maxRootFields: e.GRAPHQL_MAX_ROOT_FIELDS,
      maxTokens: e.GRAPHQL_MAX_TOKENS,
      documentCacheBytes: Math.round(e.GRAPHQL_DOCUMENT_CACHE_MB * 2 ** 20),
      catalogueCacheBytes: Math.round(e.CATALOGUE_CACHE_MB * 2 ** 20),
      wsMaxMessageBytes: e.WS_MAX_MESSAGE_KB * 1024,
      wsMaxBufferedBytes: Math.round(e.WS_MAX_BUFFERED_MB * 2 ** 20),
      wsMaxInFlight: e.WS_MAX_OPERATIONS_IN_FLIGHT,
      wsMaxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
      wsInitTimeoutMs: Math.round(e.WS_INIT_TIMEOUT_SECONDS * 1000),
      maxPageSize: 100,
      keepAliveMs: Math.round(e.WS_KEEPALIVE_SECONDS * 1000),
      sessionCheckMs: Math.round(e.WS_SESSION_CHECK_SECONDS * 1000),
      catalogueCacheEntries: e.CATALOGUE_CACHE_ENTRIES,
    },
    deploymentId: e.DEPLOYMENT_ID!,
    lifecycle: {
      recoveryAfterMs: Math.round(e.RECOVERY_AFTER_SECONDS * 1000),
      gcGraceMs: Math.round(e.GC_GRACE_SECONDS * 1000),
      maxExtensionMinutes: e.MAX_EXTENSION_MINUTES,
    },
    leader: {
      namespace: e.LEASE_NAMESPACE!,
      name: `lab-orchestrator-${e.DEPLOYMENT_ID!}`.slice(0, 253),
      leaseDurationMs: Math.round(e.LEADER_LEASE_SECONDS * 1000),
      renewDeadlineMs: Math.round(e.LEADER_LEASE_SECONDS * 1000 * (2 / 3)),
      retryMs: Math.round(e.LEADER_RETRY_SECONDS * 1000),
      identity: e.LEADER_IDENTITY,
    },
    quotas: {
      perUser: e.MAX_INSTANCES_PER_USER,
      perLab: e.MAX_INSTANCES_PER_LAB,
      total: e.MAX_INSTANCES,
      cpuCores: e.MAX_TOTAL_CPU_CORES,
      memoryBytes: memoryOf(e.MAX_TOTAL_MEMORY!, problems),
    },
    testCrashAt: e.TEST_CRASH_AT || undefined,
  };
}

/** MAX_TOTAL_MEMORY: a Kubernetes quantity (64Gi, 500G) or 0. */
function memoryOf(raw: string, problems: string[]): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.exec(raw.trim());
  if (!m) {
    problems.push('MAX_TOTAL_MEMORY: must be a quantity such as 64Gi or 500G, or 0 for no limit');
    return 0;
  }
  const factor: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };
  return Math.round(Number(m[1]) * (m[2] ? factor[m[2]] : 1));
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
    // Uses of a reset link: per link, and x multiplier per address (guessing links).
    resetPassword: rule('RATE_LIMIT_RESET_PASSWORD', e.RATE_LIMIT_RESET_PASSWORD!),
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
  if (!/^[a-z0-9]([-a-z0-9]{0,44}[a-z0-9])?$/.test(e.DEPLOYMENT_ID!)) {
    problems.push('DEPLOYMENT_ID: must be 1-46 lower-case letters, digits and "-", starting and ending with a letter or digit (a label value that also names the lease)');
  }
  if (e.RECOVERY_AFTER_SECONDS <= 2 * e.KUBERNETES_REQUEST_TIMEOUT_SECONDS) {
    problems.push(
      'RECOVERY_AFTER_SECONDS: must be more than twice KUBERNETES_REQUEST_TIMEOUT_SECONDS (a startLab in progress may take that long; recovery must not take it over)',
    );
  }
  if (e.LEADER_RETRY_SECONDS * 1.5 >= e.LEADER_LEASE_SECONDS * (2 / 3)) {
    problems.push('LEADER_RETRY_SECONDS: must be well under LEADER_LEASE_SECONDS (at most a third of it), or the leader cannot renew in time');
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
