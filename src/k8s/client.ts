import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  NetworkingV1Api,
  type V1Lease,
  type V1Namespace,
  type V1NetworkPolicy,
} from '@kubernetes/client-node';
import { ConfigError, type Config } from '../config.js';
import type { Logger } from '../logger.js';
import { KUBEVIRT_GROUP, KUBEVIRT_VERSION, VMI_PLURAL, type VirtualMachineInstance } from './templates/instance.js';
import { watch, type WatchCallback, type WatchDone } from './watch.js';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A failed or unanswered Kubernetes request; `status` is the HTTP code when there was one. */
export class KubernetesRequestError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'KubernetesRequestError';
  }
}

export interface KubeConnection {
  kubeConfig: KubeConfig;
  mode: 'simulated' | 'kubeconfig' | 'in-cluster' | 'proxy';
  /** Where requests go, for logs (never credentials). */
  server: string;
  /** Present in simulated mode: the in-process cluster, stopped with the app. */
  simulated?: { url: string; stop(): Promise<void> };
}

/** Starts the in-process simulated cluster; passed in by the composition root, which loads it on demand. */
export type StartSimulated = (
  options: { vmReadySeconds: number; logger: Logger } & Config['kubernetes']['simulated'],
) => Promise<{ url: string; stop(): Promise<void> }>;

/** Picks how to reach Kubernetes per the contract's Serving section and connects. */
export async function connectKubernetes(config: Config, logger: Logger, startSimulated: StartSimulated): Promise<KubeConnection> {
  const k = config.kubernetes;
  const mode = k.mode === 'auto' ? detectMode(config) : k.mode;
  if (k.mode === 'auto' && mode === 'simulated' && config.mode === 'production') {
    throw new ConfigError([
      'KUBERNETES_MODE: auto found no cluster (no in-cluster service account, no kubeconfig) and will not fall back to the simulated cluster in production mode; ' +
        'set KUBERNETES_MODE=in-cluster, kubeconfig or proxy for a real cluster, or KUBERNETES_MODE=simulated to run without one on purpose',
    ]);
  }
  const kc = new KubeConfig();
  if (mode === 'simulated') {
    const simulated = await startSimulated({ vmReadySeconds: k.simulatedVmReadySeconds, logger, ...k.simulated });
    loadPlain(kc, simulated.url);
    logger.warn('SIMULATED KUBERNETES CLUSTER: no real VMs run. Configure KUBERNETES_MODE (kubeconfig, in-cluster, proxy) for a real cluster.', {
      server: simulated.url,
      vmReadySeconds: k.simulatedVmReadySeconds,
    });
    return { kubeConfig: kc, mode, server: simulated.url, simulated };
  }
  if (mode === 'proxy') {
    const server = `http://${k.serviceHost}:${k.servicePort}`;
    loadPlain(kc, server);
    return { kubeConfig: kc, mode, server };
  }
  if (mode === 'in-cluster') kc.loadFromCluster();
  else if (k.kubeconfigPath) kc.loadFromFile(k.kubeconfigPath);
  else kc.loadFromDefault();
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error(`KUBERNETES_MODE=${mode}: no cluster found in the configuration`);
  return { kubeConfig: kc, mode, server };
}

function detectMode(config: Config): KubeConnection['mode'] {
  const k = config.kubernetes;
  if (k.serviceHost && existsSync(SERVICE_ACCOUNT_TOKEN)) return 'in-cluster';
  if (k.kubeconfigPath || existsSync(join(homedir(), '.kube', 'config'))) return 'kubeconfig';
  return 'simulated';
}

function loadPlain(kc: KubeConfig, server: string): void {
  kc.loadFromOptions({
    clusters: [{ name: 'cluster', server, skipTLSVerify: true }],
    users: [{ name: 'user' }],
    contexts: [{ name: 'context', cluster: 'cluster', user: 'user' }],
    currentContext: 'context',
  });
}

/**
 * The few calls the server makes, each bounded in time and each failing with a
 * KubernetesRequestError. Knows nothing of entities.
 */
export class KubeClient {
  private readonly core: CoreV1Api;
  private readonly networking: NetworkingV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly coordination: CoordinationV1Api;

  constructor(
    readonly kubeConfig: KubeConfig,
    private readonly timeoutMs: number,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.networking = kubeConfig.makeApiClient(NetworkingV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  /** The lease, or undefined when there is none. */
  async readLease(namespace: string, name: string): Promise<V1Lease | undefined> {
    try {
      return await this.call('get lease', () => this.coordination.readNamespacedLease({ namespace, name }));
    } catch (err) {
      if (err instanceof KubernetesRequestError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Fails with status 409 when another replica created it first. */
  createLease(namespace: string, body: V1Lease): Promise<V1Lease> {
    return this.call('create lease', () => this.coordination.createNamespacedLease({ namespace, body }));
  }

  /** An update with body.metadata.resourceVersion: fails with status 409 when the lease changed since it was read. */
  replaceLease(namespace: string, name: string, body: V1Lease): Promise<V1Lease> {
    return this.call('update lease', () => this.coordination.replaceNamespacedLease({ namespace, name, body }));
  }

  /**
   * Watches the one lease named (fieldSelector metadata.name, which the API server authorizes against
   * RBAC resourceNames, as for get: k8s.io/apiserver pkg/endpoints/request/requestinfo.go). Without a
   * resourceVersion: the lease as it is comes first (ADDED), then its changes, as raw JSON objects.
   * Resolves once the API server answered; every failure goes to `done`, as with watch().
   */
  watchLease(namespace: string, name: string, timeoutSeconds: number, onEvent: WatchCallback, done: WatchDone): Promise<AbortController> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    return watch(this.kubeConfig, path, { fieldSelector: `metadata.name=${name}`, timeoutSeconds }, onEvent, done);
  }

  createNamespace(body: V1Namespace): Promise<unknown> {
    return this.call('create namespace', () => this.core.createNamespace({ body }));
  }

  /** Resolves false when the namespace was already gone, true while it exists (deleting is idempotent). */
  async deleteNamespace(name: string): Promise<boolean> {
    try {
      await this.call('delete namespace', () => this.core.deleteNamespace({ name, propagationPolicy: 'Background' }));
      return true;
    } catch (err) {
      if (err instanceof KubernetesRequestError && err.status === 404) return false;
      // 409: already Terminating; it exists and is on its way out.
      if (err instanceof KubernetesRequestError && err.status === 409) return true;
      throw err;
    }
  }

  createNetworkPolicy(namespace: string, body: V1NetworkPolicy): Promise<unknown> {
    return this.call('create network policy', () => this.networking.createNamespacedNetworkPolicy({ namespace, body }));
  }

  createVirtualMachineInstance(namespace: string, body: VirtualMachineInstance): Promise<unknown> {
    return this.call(`create VirtualMachineInstance ${body.metadata.name}`, () =>
      this.custom.createNamespacedCustomObject({ group: KUBEVIRT_GROUP, version: KUBEVIRT_VERSION, namespace, plural: VMI_PLURAL, body }),
    );
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new KubernetesRequestError(`${what}: no answer from the Kubernetes API within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      throw toRequestError(what, err);
    } finally {
      clearTimeout(timer);
    }
  }
}

function toRequestError(what: string, err: unknown): KubernetesRequestError {
  if (err instanceof KubernetesRequestError) return err;
  if (err instanceof ApiException) {
    const body = parseBody(err.body);
    return new KubernetesRequestError(`${what}: ${body.message ?? `HTTP ${err.code}`}`, err.code, body.reason);
  }
  const cause = (err as { cause?: { code?: string } })?.cause?.code ?? (err as { code?: string })?.code;
  const detail = cause ?? (err instanceof Error ? err.message.slice(0, 200) : undefined);
  return new KubernetesRequestError(`${what}: the Kubernetes API could not be reached${detail ? ` (${detail})` : ''}`);
}

function parseBody(body: unknown): { message?: string; reason?: string } {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as { message?: string; reason?: string };
    } catch {
      return { message: body.slice(0, 200) };
    }
  }
  return (body ?? {}) as { message?: string; reason?: string };
}
