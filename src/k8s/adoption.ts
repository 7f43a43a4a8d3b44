import { ApiException, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { KubernetesRequestError } from './client.js';
import type { KubeObject } from './informer.js';
import { KUBEVIRT_GROUP, KUBEVIRT_VERSION, VMI_PLURAL } from './templates/instance.js';
import { ADOPTED_AT, LABEL, unadoptedSelector } from './templates/labels.js';

/** How a labelling patch ended: 404 (the object is gone) and 409 (it changed since it was read) are no failures. */
export type LabelOutcome = 'labelled' | 'gone' | 'conflict';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * The calls that adopt an older server's objects (managed, but with no deployment label): list the
 * VMIs of such a namespace, and add the deployment label to an object with a JSON merge patch that
 * touches that label only. Each call is bounded in time and fails with a KubernetesRequestError.
 */
export class AdoptionClient {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    private readonly timeoutMs: number,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** The VMIs of the namespace that carry the managed label and no deployment label. */
  async listUnadoptedVmis(namespace: string): Promise<KubeObject[]> {
    const list = (await this.call(`list VirtualMachineInstances in ${namespace}`, () =>
      this.custom.listNamespacedCustomObject({
        group: KUBEVIRT_GROUP,
        version: KUBEVIRT_VERSION,
        namespace,
        plural: VMI_PLURAL,
        labelSelector: unadoptedSelector(),
      }),
    )) as { items?: KubeObject[] };
    return list.items ?? [];
  }

  /**
   * Labels the namespace, and annotates it with the time (ADOPTED_AT), only if it is still at
   * `resourceVersion` (the API server answers 409 otherwise): what was decided on is what gets adopted.
   */
  labelNamespace(name: string, resourceVersion: string | undefined, deploymentId: string, now = new Date()): Promise<LabelOutcome> {
    const metadata = {
      ...(resourceVersion ? { resourceVersion } : {}),
      labels: { [LABEL.deployment]: deploymentId },
      annotations: { [ADOPTED_AT]: now.toISOString() },
    };
    const body = { metadata };
    return this.outcome(`label namespace ${name}`, () => this.core.patchNamespace({ name, body }, MERGE_PATCH));
  }

  /** Unconditional: virt-handler rewrites a running VMI's status often, and its namespace is already decided on. */
  labelVmi(namespace: string, name: string, deploymentId: string): Promise<LabelOutcome> {
    const body = { metadata: { labels: { [LABEL.deployment]: deploymentId } } };
    return this.outcome(`label VirtualMachineInstance ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject({ group: KUBEVIRT_GROUP, version: KUBEVIRT_VERSION, namespace, plural: VMI_PLURAL, name, body }, MERGE_PATCH),
    );
  }

  private async outcome(what: string, fn: () => Promise<unknown>): Promise<LabelOutcome> {
    try {
      await this.call(what, fn);
      return 'labelled';
    } catch (err) {
      if (err instanceof KubernetesRequestError && err.status === 404) return 'gone';
      if (err instanceof KubernetesRequestError && err.status === 409) return 'conflict';
      throw err;
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KubernetesRequestError(`${what}: no answer from the Kubernetes API within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof KubernetesRequestError) throw err;
      if (err instanceof ApiException) throw new KubernetesRequestError(`${what}: ${messageOf(err.body) ?? `HTTP ${err.code}`}`, err.code);
      throw new KubernetesRequestError(`${what}: the Kubernetes API could not be reached (${(err as Error)?.message?.slice(0, 200) ?? String(err)})`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function messageOf(body: unknown): string | undefined {
  if (typeof body !== 'string') return (body as { message?: string } | undefined)?.message;
  try {
    return (JSON.parse(body) as { message?: string }).message;
  } catch {
    return body.slice(0, 200);
  }
}
