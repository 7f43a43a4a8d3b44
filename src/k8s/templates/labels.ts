/** The labels every object of a lab instance carries (the contract's "Kubernetes objects" section). */
export const LABEL = {
  managedBy: 'app.kubernetes.io/managed-by',
  instance: 'lab-orchestrator.io/instance',
  lab: 'lab-orchestrator.io/lab',
  user: 'lab-orchestrator.io/user',
  /** Which deployment (DEPLOYMENT_ID) made the object: deployments sharing a cluster never touch each other's. */
  deployment: 'lab-orchestrator.io/deployment',
} as const;

export const DEFAULT_DEPLOYMENT = 'default';

export const MANAGED_BY = 'lab-orchestrator';

/** Selects every object of this deployment, in every namespace: one watch per kind uses it. */
export function managedSelector(deploymentId: string): string {
  return `${LABEL.managedBy}=${MANAGED_BY},${LABEL.deployment}=${deploymentId}`;
}

/** Selects the managed objects of no deployment: made by a server older than DEPLOYMENT_ID, not adopted yet. */
export function unadoptedSelector(): string {
  return `${LABEL.managedBy}=${MANAGED_BY},!${LABEL.deployment}`;
}

/** Selects every managed object, of any deployment or none (the namespace watch, which keeps `ownOrUnadopted`). */
export function anyDeploymentSelector(): string {
  return `${LABEL.managedBy}=${MANAGED_BY}`;
}

/** The object is this deployment's, or an older server's that no deployment has adopted yet. */
export function ownOrUnadopted(labels: Record<string, string> | undefined, deploymentId: string): boolean {
  const deployment = labels?.[LABEL.deployment];
  return deployment === undefined || deployment === deploymentId;
}

/** Set on a namespace when it is adopted: when (ISO 8601), for operators and for the status watch. */
export const ADOPTED_AT = 'lab-orchestrator.io/adopted-at';

export interface InstanceRef {
  instanceId: number;
  labId: number;
  userId: number;
  /** DEPLOYMENT_ID; 'default' when omitted. */
  deploymentId?: string;
}

export function instanceLabels(ref: InstanceRef): Record<string, string> {
  return {
    [LABEL.managedBy]: MANAGED_BY,
    [LABEL.deployment]: ref.deploymentId ?? DEFAULT_DEPLOYMENT,
    [LABEL.instance]: String(ref.instanceId),
    [LABEL.lab]: String(ref.labId),
    [LABEL.user]: String(ref.userId),
  };
}

/** The instance id an object belongs to, from its labels; undefined for objects not ours. */
export function instanceIdOf(labels: Record<string, string> | undefined): number | undefined {
  if (!labels || labels[LABEL.managedBy] !== MANAGED_BY) return undefined;
  const id = Number(labels[LABEL.instance]);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}
