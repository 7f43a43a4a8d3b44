import type { KubeObject } from './resources.js';

/**
 * What the API server fills in on a new pod before storing it, as a real kube-apiserver with its default
 * admission plugins does (compared with one in test/simulated-kubevirt.real.test.ts):
 * - kubernetes pkg/apis/core/v1/defaults.go SetDefaults_PodSpec (dnsPolicy ClusterFirst, restartPolicy
 *   Always, terminationGracePeriodSeconds 30, schedulerName default-scheduler, securityContext {},
 *   enableServiceLinks true) and SetDefaults_Container (terminationMessagePath and -Policy,
 *   imagePullPolicy Always for an untagged or :latest image, IfNotPresent otherwise);
 * - plugin/pkg/admission/serviceaccount: the namespace's `default` account, in serviceAccountName and
 *   its deprecated twin serviceAccount;
 * - plugin/pkg/admission/priority: priority 0 and preemptionPolicy PreemptLowerPriority;
 * - plugin/pkg/admission/defaulttolerationseconds: tolerations of 300 s for the node.kubernetes.io/not-ready
 *   and unreachable NoExecute taints;
 * - a container's `resources` is a Go struct, not a pointer: stored as `{}` when empty.
 */
export function defaultPod(pod: KubeObject): void {
  const spec = (pod.spec ??= {}) as Record<string, unknown>;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  const account = (spec.serviceAccountName ?? spec.serviceAccount ?? 'default') as string;
  spec.serviceAccountName = account;
  spec.serviceAccount = account;
  spec.priority ??= 0;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  const tolerations = Array.isArray(spec.tolerations) ? [...(spec.tolerations as Array<Record<string, unknown>>)] : [];
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    const tolerated = tolerations.some((t) => (t.key === key || (t.key === undefined && t.operator === 'Exists')) && (t.effect === undefined || t.effect === 'NoExecute'));
    if (!tolerated) tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
  }
  spec.tolerations = tolerations;
  for (const list of ['initContainers', 'containers']) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    spec[list] = (containers as Array<Record<string, unknown>>).map((c) => ({
      ...c,
      resources: c.resources ?? {},
      terminationMessagePath: c.terminationMessagePath ?? '/dev/termination-log',
      terminationMessagePolicy: c.terminationMessagePolicy ?? 'File',
      imagePullPolicy: c.imagePullPolicy ?? defaultPullPolicy(String(c.image ?? '')),
    }));
  }
}

/** SetDefaults_Container: Always for an image without a tag or with :latest (and no digest), else IfNotPresent. */
function defaultPullPolicy(image: string): string {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const tag = last.includes(':') ? last.slice(last.indexOf(':') + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** The label every namespace gets and keeps (kubernetes pkg/registry/core/namespace/strategy.go, NamespaceDefaultLabelName). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export function labelNamespace(ns: KubeObject): void {
  ns.metadata.labels = { ...(ns.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: ns.metadata.name ?? '' };
}
