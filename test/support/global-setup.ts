/**
 * Vitest global setup: one PostgreSQL server for the whole run, handed to tests as `inject('postgresUrl')`.
 * Each test file then makes its own database on it with `createDatabase` (test/support/postgres.ts).
 *
 * - `TEST_DATABASE_URL` set: that server is used and nothing is started.
 * - `TEST_ENGINES` (comma list, default `sqlite,postgres`) without `postgres`: nothing is started and
 *   `postgresUrl` is '' (PostgreSQL tests skip themselves).
 * - otherwise a throwaway cluster is started here and stopped at the end of the run.
 *
 * And, when `TEST_CLUSTERS` (comma list, default `simulated,real`) names `real`, one real Kubernetes
 * control plane for the whole run (test/support/control-plane.ts: built from Go modules on the first
 * run, or taken from KUBEBUILDER_ASSETS), set up as deploy/ describes it, handed to tests as
 * `inject('realClusterKubeconfig')` (the server's service account: what the server under test uses)
 * and `inject('realClusterAdminKubeconfig')` (cluster admin: for the tests' own reads). A failed build
 * or start fails the run; nothing is skipped silently.
 *
 * KubeVirt's and the kubelet's part on that cluster (test/support/kubevirt-controller.ts) runs here too,
 * once: two controllers on one cluster (one per test worker) would both create launcher pods for the
 * same VMI. Test files that need other timings or faults start a control plane and controller of their own.
 * So does virt-api's VNC subresource (test/support/virt-api.ts: an aggregated API server behind the
 * APIService v1.subresources.kubevirt.io, one per cluster), whose inspection address is handed over as
 * `inject('realClusterVirtApi')`.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { KubeVirtController, type KubeApi } from './kubevirt-controller.js';
import { startPostgresCluster } from './postgres.js';
import { startVirtApi, type VirtApiStandIn } from './virt-api.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URL for `createDatabase`, or '' when PostgreSQL is not among TEST_ENGINES. */
    postgresUrl: string;
    /** Kubeconfig of deploy/'s service account on the shared real control plane, or '' when TEST_CLUSTERS excludes real. */
    realClusterKubeconfig: string;
    /** Admin kubeconfig (system:masters) of the shared real control plane, or ''. */
    realClusterAdminKubeconfig: string;
    /** Inspection URL of the shared control plane's stand-in virt-api (`vncConsoleOf`), or ''. */
    realClusterVirtApi: string;
  }
}

/** The engines named in TEST_ENGINES (default: both). */
export function testEngines(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.TEST_ENGINES ?? 'sqlite,postgres')
    .split(',')
    .map((engine) => engine.trim().toLowerCase())
    .filter(Boolean);
}

/** The clusters named in TEST_CLUSTERS (default: both). */
export function testClusters(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.TEST_CLUSTERS ?? 'simulated,real')
    .split(',')
    .map((cluster) => cluster.trim().toLowerCase())
    .filter(Boolean);
}

const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), '../../deploy');
/** What deploy/ holds for the cluster itself, applied in this order (deploy/README.md). */
export const DEPLOY_FILES = ['namespace.yaml', 'serviceaccount.yaml', 'rbac.yaml', 'optional/namespace-guard.yaml'].map((f) => join(DEPLOY, f));

async function setupPostgres(project: TestProject): Promise<() => Promise<void>> {
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

/**
 * deploy/ applied with the built kubectl, then a kubeconfig for the server's service account: the
 * cluster's address and CA, and a token from the TokenRequest API (kubectl create token).
 */
export async function installDeploy(
  plane: ControlPlane,
  file = join(plane.dir, 'lab-orchestrator.kubeconfig'),
): Promise<{ kubeconfig: string; token: string }> {
  const kubectl = async (...args: string[]) => {
    const result = await plane.kubectl(args);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${result.code}):\n${result.stderr}`);
    return result.stdout;
  };
  await kubectl('apply', ...DEPLOY_FILES.flatMap((f) => ['-f', f]));
  const token = (await kubectl('create', 'token', 'lab-orchestrator', '-n', 'lab-orchestrator', '--duration=24h')).trim();
  await writeTokenKubeconfig(file, plane.server, plane.tls.ca, token, 'lab-orchestrator');
  return { kubeconfig: file, token };
}

/** A kubeconfig that authenticates with a bearer token. */
export async function writeTokenKubeconfig(file: string, server: string, caPem: string, token: string, user: string): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user } }],
    'current-context': 'test',
  };
  await writeFile(file, JSON.stringify(config, null, 2), { mode: 0o600 });
}

/** A service account of our own in lab-orchestrator's namespace, optionally bound to a ClusterRole of `rules`; its token's kubeconfig. */
export async function serviceAccountKubeconfig(admin: KubeApi, name: string, rules: unknown[] | undefined, dir: string): Promise<string> {
  const ns = 'lab-orchestrator';
  await admin.call('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  if (rules) {
    await admin.call('POST', '/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name }, rules,
    });
    await admin.call('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    });
  }
  const request = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } };
  const token = (await admin.call('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, request)).body.status.token as string;
  const file = join(dir, `${name}.kubeconfig`);
  await writeTokenKubeconfig(file, admin.connection.server, admin.connection.ca, token, name);
  return file;
}

async function setupRealCluster(project: TestProject): Promise<() => Promise<void>> {
  if (!testClusters().includes('real')) {
    project.provide('realClusterKubeconfig', '');
    project.provide('realClusterAdminKubeconfig', '');
    project.provide('realClusterVirtApi', '');
    return async () => {};
  }
  const started = Date.now();
  let plane: ControlPlane | undefined;
  let virtApi: VirtApiStandIn | undefined;
  const controller = new KubeVirtController({
    vmReadySeconds: 1,
    podTerminationMs: 200,
    log: (line) => console.warn(line),
  });
  try {
    plane = await startControlPlane({ log: (line) => console.log(line) });
    // Independent of each other: at once, each to its end (so that a failure leaves nothing running).
    const [deployed, controlled, standIn] = await Promise.allSettled([
      installDeploy(plane),
      controller.start(plane.kubeconfigPath),
      startVirtApi(plane),
    ]);
    if (standIn.status === 'fulfilled') virtApi = standIn.value;
    for (const part of [deployed, controlled, standIn]) if (part.status === 'rejected') throw part.reason;
    const { kubeconfig } = (deployed as PromiseFulfilledResult<{ kubeconfig: string }>).value;
    console.log(`[global-setup] real control plane at ${plane.server} with deploy/ applied (ready in ${Date.now() - started} ms)`);
    project.provide('realClusterKubeconfig', kubeconfig);
    project.provide('realClusterAdminKubeconfig', plane.kubeconfigPath);
    project.provide('realClusterVirtApi', virtApi!.inspectUrl);
  } catch (error) {
    await virtApi?.stop();
    await controller.stop();
    await plane?.stop();
    throw new Error(
      `TEST_CLUSTERS includes "real" but the real control plane could not be set up (set TEST_CLUSTERS=simulated to run without it): ${(error as Error).message}`,
      { cause: error },
    );
  }
  const running = plane;
  const runningVirtApi = virtApi;
  return async () => {
    await runningVirtApi?.stop();
    await controller.stop();
    await running.stop();
    if (controller.differences.length) console.log(`[global-setup] KubeVirt controller on the real control plane:\n${controller.report()}`);
    if (controller.problems.length) {
      throw new Error(`the KubeVirt controller of the shared control plane met unexpected API answers:\n${controller.report()}`);
    }
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [postgres, real] = await Promise.allSettled([setupPostgres(project), setupRealCluster(project)]);
  if (postgres.status === 'rejected' || real.status === 'rejected') {
    if (postgres.status === 'fulfilled') await postgres.value();
    if (real.status === 'fulfilled') await real.value();
    throw postgres.status === 'rejected' ? postgres.reason : (real as PromiseRejectedResult).reason;
  }
  return async () => {
    const results = await Promise.allSettled([postgres.value(), real.value()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
}

/**
 * The server under test on a real cluster: KUBERNETES_MODE=kubeconfig with the given kubeconfig, and a
 * DEPLOYMENT_ID of its own, so that servers sharing the cluster (other files, other engines) never
 * touch each other's objects.
 */
export function realEnv(kubeconfig: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    KUBERNETES_MODE: 'kubeconfig',
    KUBECONFIG: kubeconfig,
    DEPLOYMENT_ID: `t-${randomUUID().slice(0, 8)}`,
    KUBERNETES_REQUEST_TIMEOUT_SECONDS: '10',
    STATUS_RESYNC_SECONDS: '1',
    WATCH_BACKOFF_MAX_SECONDS: '0.5',
    ...extra,
  };
}
