import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const production = { NODE_ENV: 'production', SECRET_KEY: 'a-production-secret-key', ACCOUNT_EMAIL_VERIFICATION: 'none' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('runs with no variables at all in development mode: SQLite, a simulated cluster, a generated secret', () => {
    const config = loadConfig({});
    expect(config.mode).toBe('development');
    expect(config.database).toEqual({ engine: 'sqlite', path: './data/lab-orchestrator.sqlite3' });
    expect(config.kubernetes.mode).toBe('auto');
    expect(config.secretKeyGenerated).toBe(true);
    expect(config.secretKey.length).toBeGreaterThanOrEqual(32);
    expect(config.vnc.tokenSecret).toBe(config.secretKey);
    expect(config.http).toMatchObject({ host: '0.0.0.0', port: 4000 });
  });

  it('reports every bad variable at once, each by name', () => {
    const found = problems({ NODE_ENV: 'production', PORT: '70000', DEBUG: 'maybe', DATABASE_ENGINE: 'mysql', LAB_VNC_PORT: 'x' });
    expect(found.map((p) => p.split(':')[0]).sort()).toEqual(
      ['DATABASE_ENGINE', 'DEBUG', 'EMAIL_HOST', 'LAB_VNC_PORT', 'PORT', 'SECRET_KEY'].sort(),
    );
  });

  it('requires SECRET_KEY in production but not with DEBUG', () => {
    expect(problems({ NODE_ENV: 'production', ACCOUNT_EMAIL_VERIFICATION: 'none' })[0]).toMatch(/^SECRET_KEY: required/);
    expect(loadConfig({ NODE_ENV: 'production', DEBUG: 'true', ACCOUNT_EMAIL_VERIFICATION: 'none' }).mode).toBe('development');
  });

  it("keeps the original's variable names and meanings", () => {
    const config = loadConfig({
      ...production,
      DATABASE_ENGINE: 'postgres',
      POSTGRES_DB: 'labs',
      POSTGRES_USER: 'lab',
      POSTGRES_PASSWORD: 'pw',
      POSTGRES_SERVICE_HOST: 'db',
      POSTGRES_SERVICE_PORT: '6543',
      ALLOWED_HOSTS: 'localhost;labs.example.org',
      DEVELOPMENT: 'true',
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: '8001',
      DJANGO_SUPERUSER_EMAIL: 'root@example.org',
      DJANGO_SUPERUSER_PASSWORD: 'pw-pw-pw-pw',
      DJANGO_SUPERUSER_FIRST_NAME: 'Root',
      WS_PROXY_PATH_PREFIX: '/ws_proxy/',
    });
    expect(config.database).toMatchObject({ engine: 'postgres', dbName: 'labs', user: 'lab', host: 'db', port: 6543 });
    expect(config.http.allowedHosts).toEqual(['localhost', 'labs.example.org']);
    expect(config.kubernetes).toMatchObject({ mode: 'proxy', serviceHost: '127.0.0.1', servicePort: 8001 });
    expect(config.auth.superuser).toEqual({ email: 'root@example.org', password: 'pw-pw-pw-pw', firstName: 'Root' });
    expect(config.vnc.wsProxyPathPrefix).toBe('ws_proxy');
  });

  it('refuses proxy mode without the API address and rate limits that are not N/SECONDS', () => {
    expect(problems({ ...production, KUBERNETES_MODE: 'proxy' })[0]).toMatch(/^KUBERNETES_SERVICE_HOST/);
    expect(problems({ ...production, RATE_LIMIT_LOGIN: 'ten' })[0]).toMatch(/^RATE_LIMIT_LOGIN/);
  });

  it('uses VNC_TOKEN_SECRET for VNC tokens when given, and never the session key for it', () => {
    expect(loadConfig({ ...production, VNC_TOKEN_SECRET: 'shared-with-the-proxy' }).vnc.tokenSecret).toBe('shared-with-the-proxy');
  });
});

describe('choosing the cluster', () => {
  const noKubeconfigHome = async () => {
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    return mkdtemp(join(tmpdir(), 'no-kube-'));
  };
  const withHome = async <T>(home: string, fn: () => Promise<T>): Promise<T> => {
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      return await fn();
    } finally {
      process.env.HOME = saved;
    }
  };
  const neverStarted = () => Promise.reject(new Error('the simulated cluster must not start'));

  it('refuses, in production mode, to fall back to the simulated cluster when auto finds no cluster', async () => {
    const { connectKubernetes } = await import('../src/k8s/client.js');
    const { createLogger } = await import('../src/logger.js');
    const config = loadConfig({ ...production });
    const error = await withHome(await noKubeconfigHome(), () => connectKubernetes(config, createLogger('error'), neverStarted).catch((e) => e));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems[0]).toMatch(/^KUBERNETES_MODE: .*KUBERNETES_MODE=simulated/);
  });

  it('starts the simulated cluster in production mode only when chosen explicitly, and in development mode by default', async () => {
    const { connectKubernetes } = await import('../src/k8s/client.js');
    const { createLogger } = await import('../src/logger.js');
    const started: string[] = [];
    const start = async () => {
      started.push('simulated');
      return { url: 'http://127.0.0.1:1', stop: async () => undefined };
    };
    const home = await noKubeconfigHome();
    const chosen = await withHome(home, () => connectKubernetes(loadConfig({ ...production, KUBERNETES_MODE: 'simulated' }), createLogger('error'), start));
    const development = await withHome(home, () => connectKubernetes(loadConfig({}), createLogger('error'), start));
    expect([chosen.mode, development.mode, started.length]).toEqual(['simulated', 'simulated', 2]);
  });
});

describe('configuration of the instance life cycle', () => {
  it('has sensible defaults for the deployment, recovery, leader election and quotas', () => {
    const config = loadConfig(production);
    expect(config.deploymentId).toBe('default');
    expect(config.lifecycle).toEqual({ recoveryAfterMs: 60_000, gcGraceMs: 300_000, maxExtensionMinutes: 0 });
    expect(config.leader).toMatchObject({ namespace: 'default', name: 'lab-orchestrator-default', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryMs: 2000 });
    expect(config.quotas).toEqual({ perUser: 5, perLab: 0, total: 0, cpuCores: 0, memoryBytes: 0 });
    expect(config.testCrashAt).toBeUndefined();
    expect(loadConfig({ ...production, MAX_TOTAL_MEMORY: '512Gi' }).quotas.memoryBytes).toBe(512 * 2 ** 30);
  });

  it('refuses a deployment id that is no label value, a recovery bound a live start could reach, and a lease too short to renew', () => {
    expect(problems({ ...production, DEPLOYMENT_ID: 'Team_A' }).map((p) => p.split(':')[0])).toEqual(['DEPLOYMENT_ID']);
    expect(problems({ ...production, RECOVERY_AFTER_SECONDS: '15' }).map((p) => p.split(':')[0])).toEqual(['RECOVERY_AFTER_SECONDS']);
    expect(problems({ ...production, LEADER_LEASE_SECONDS: '3', LEADER_RETRY_SECONDS: '2' }).map((p) => p.split(':')[0])).toEqual(['LEADER_RETRY_SECONDS']);
    expect(problems({ ...production, MAX_TOTAL_MEMORY: 'lots' }).map((p) => p.split(':')[0])).toEqual(['MAX_TOTAL_MEMORY']);
    expect(problems({ ...production, TEST_CRASH_AT: 'somewhere' }).map((p) => p.split(':')[0])).toEqual(['TEST_CRASH_AT']);
  });
});
