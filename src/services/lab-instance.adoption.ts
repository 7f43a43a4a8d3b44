import type { EntityManager } from '@mikro-orm/core';
import { LabInstance } from '../entities/index.js';
import type { AdoptionClient } from '../k8s/adoption.js';
import type { KubeObject } from '../k8s/informer.js';
import { instanceIdOf } from '../k8s/templates/labels.js';
import type { LabInstanceDeps } from './lab-instance.service.js';

/**
 * Adoption of what a server older than DEPLOYMENT_ID made: namespaces (and their VMIs) that carry the
 * managed label but no deployment label. The watches select on the deployment label, so until they
 * carry it their VMs run unseen. Run by the leader before garbage collection; level-based and
 * idempotent like the other duties.
 */

/** How far the API server's clock (a namespace's creationTimestamp, whole seconds) may be from ours. */
const CLOCK_SKEW_MS = 30_000;

type RowFacts = Pick<LabInstance, 'id' | 'namespace' | 'status' | 'createdAt'>;

/**
 * Why this deployment must not adopt the namespace, or undefined when it may: only when an instance
 * row of its own database names it. Another deployment sharing the cluster may have a row for the
 * same name (same prefix, user id and instance id); the namespace is then its instance's, made before
 * our row was, and is not taken.
 */
export function adoptionRefusal(namespace: KubeObject, row: RowFacts | undefined): string | undefined {
  const name = namespace.metadata.name;
  if (!row) return "no instance in this deployment's database names it";
  const labelled = instanceIdOf(namespace.metadata.labels);
  if (labelled !== row.id) return `instance ${row.id} names it but it is labelled as instance ${labelled ?? '(none)'}`;
  const created = namespace.metadata.creationTimestamp ? new Date(namespace.metadata.creationTimestamp).getTime() : undefined;
  if (created === undefined || created < row.createdAt.getTime() - CLOCK_SKEW_MS) {
    return `it is older than instance ${row.id}, which names it: ${name} is another deployment's`;
  }
  return undefined;
}

/**
 * Adopts each unlabelled managed namespace that an instance of this deployment's database names: its
 * VMIs are labelled first, then the namespace, only if unchanged since it was read (so that the
 * status watch never sees the namespace without its VMIs, and a namespace that changed meanwhile is
 * looked at again next pass). A 404 or 409 is no failure. After that the usual rules apply: an active
 * instance is watched, a stopped or failed one's namespace is collected. Namespaces that must not be
 * adopted are left alone (never deleted: they may be another deployment's) and logged once each, in
 * `noted`. Resolves with how many namespaces were adopted.
 */
export async function adoptNamespaces(
  em: EntityManager,
  deps: LabInstanceDeps,
  client: AdoptionClient,
  unadopted: KubeObject[],
  noted: Map<string, string>,
): Promise<number> {
  const candidates = unadopted.filter((ns) => !ns.metadata.deletionTimestamp && ns.status?.phase !== 'Terminating');
  const names = candidates.map((ns) => ns.metadata.name);
  const present = new Set(names);
  for (const name of noted.keys()) if (!present.has(name)) noted.delete(name);
  if (!candidates.length) return 0;
  const rows = await em.find(LabInstance, { namespace: { $in: names } }, { fields: ['id', 'namespace', 'status', 'createdAt'] });
  const byNamespace = new Map(rows.map((r) => [r.namespace, r]));
  let adopted = 0;
  for (const ns of candidates) {
    const name = ns.metadata.name;
    const row = byNamespace.get(name);
    const refusal = adoptionRefusal(ns, row);
    if (refusal) {
      if (noted.get(name) !== refusal) deps.logger.warn('leaving an unlabelled managed namespace alone', { namespace: name, reason: refusal });
      noted.set(name, refusal);
      continue;
    }
    try {
      adopted += Number(await adoptOne(deps, client, ns, row!));
    } catch (err) {
      deps.logger.warn('could not adopt a namespace; will retry', { namespace: name, error: (err as Error).message });
    }
  }
  return adopted;
}

async function adoptOne(deps: LabInstanceDeps, client: AdoptionClient, ns: KubeObject, row: RowFacts): Promise<boolean> {
  const name = ns.metadata.name;
  const deploymentId = deps.config.deploymentId;
  const vmis = await client.listUnadoptedVmis(name);
  deps.logger.info('adopting namespace', {
    namespace: name,
    instanceId: row.id,
    vmis: vmis.map((v) => v.metadata.name),
    reason: `made by a server older than DEPLOYMENT_ID, and instance ${row.id} (${row.status}) of this deployment's database names it`,
  });
  for (const vmi of vmis) await client.labelVmi(name, vmi.metadata.name, deploymentId);
  const outcome = await client.labelNamespace(name, ns.metadata.resourceVersion, deploymentId);
  if (outcome !== 'labelled') deps.logger.info('namespace not adopted this pass; will look again', { namespace: name, outcome });
  deps.reconciler.touch(row.id);
  return outcome === 'labelled';
}
