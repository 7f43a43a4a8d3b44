/**
 * Adoption of an older server's objects on the REAL control plane of the global setup, with deploy/
 * applied (rbac.yaml and optional/namespace-guard.yaml): the server runs with the token of deploy/'s
 * service account, so the adoption patches pass only if RBAC grants them and the guard's CEL lets them
 * through. Skipped when TEST_CLUSTERS does not name `real`.
 */
import { randomUUID } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db.js';
import { LabInstance, LabInstanceStatus, VmPhase } from '../src/entities/index.js';
import { AdoptionClient } from '../src/k8s/adoption.js';
import { buildNamespace, buildVirtualMachineInstance, type InstanceSpec } from '../src/k8s/templates/instance.js';
import { LABEL } from '../src/k8s/templates/labels.js';
import { createLogger } from '../src/logger.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin } from './support/factories.js';
import { KubeApi } from './support/kubevirt-controller.js';
import { baseTestEnv, CLUSTERS, ENGINES, startTestServer, testDatabaseEnv, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

const VMIS = (ns: string) => `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachineinstances`;
const MERGE_PATCH = { contentType: 'application/merge-patch+json' };

/** Without its deployment label, as a server older than DEPLOYMENT_ID made it. */
function older<T extends { metadata?: { labels?: Record<string, string> } }>(obj: T): T {
  const labels = { ...obj.metadata?.labels };
  delete labels[LABEL.deployment];
  return { ...obj, metadata: { ...obj.metadata, labels } };
}

const engine = ENGINES[0];
const LEASES = 'lab-orchestrator';
const ROLES = `/apis/rbac.authorization.k8s.io/v1/namespaces/${LEASES}`;

describe.skipIf(!CLUSTERS.includes('real') || !engine)('adoption on a real control plane', () => {
  let admin: KubeApi;
  let sa: KubeApi;
  let database: Awaited<ReturnType<typeof testDatabaseEnv>>;
  let server: TestServer;
  let env: Record<string, string>;
  const created: string[] = [];

  beforeAll(async () => {
    admin = KubeApi.fromKubeconfig(inject('realClusterAdminKubeconfig'));
    sa = KubeApi.fromKubeconfig(inject('realClusterKubeconfig'));
    database = await testDatabaseEnv(engine);
    env = {
      KUBERNETES_MODE: 'kubeconfig',
      KUBECONFIG: inject('realClusterKubeconfig'),
      DEPLOYMENT_ID: `t-${randomUUID().slice(0, 8)}`,
      KUBERNETES_REQUEST_TIMEOUT_SECONDS: '10',
      STATUS_RESYNC_SECONDS: '0.5',
      WATCH_BACKOFF_MAX_SECONDS: '0.5',
      LEASE_NAMESPACE: LEASES,
      LEADER_LEASE_SECONDS: '3',
      LEADER_RETRY_SECONDS: '0.3',
    };
    // deploy/'s Role names the lease of DEPLOYMENT_ID=default only, which leader.real.test.ts uses: a
    // deployment id of this file's own needs its lease granted the same way (adoption runs on the leader).
    const name = `lab-orchestrator-${env.DEPLOYMENT_ID}`;
    await admin.call('POST', `${ROLES}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name },
      rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [name], verbs: ['get', 'update', 'watch'] }],
    });
    await admin.call('POST', `${ROLES}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name: 'lab-orchestrator', namespace: LEASES }],
    });
  });

  afterAll(async () => {
    await server?.stop();
    for (const name of created) await admin?.request('DELETE', `/api/v1/namespaces/${name}`);
    if (env) {
      const name = `lab-orchestrator-${env.DEPLOYMENT_ID}`;
      for (const path of [`${ROLES}/rolebindings/${name}`, `${ROLES}/roles/${name}`, `/apis/coordination.k8s.io/v1/namespaces/${LEASES}/leases/${name}`]) {
        await admin.request('DELETE', path);
      }
    }
    await database?.drop();
    admin?.close();
    sa?.close();
  });

  it("adopts an older server's namespace and VMIs with deploy/'s service account, which the guard lets patch only its own namespaces", { timeout: 120_000 }, async () => {
    // Before the upgrade: a catalogue, and an instance row the older server wrote, STARTING for two minutes.
    const before = await startTestServer(engine, env, { databaseEnv: database.env });
    const owner = await createAdmin(before);
    const prefix = `adopt-${randomUUID().slice(0, 6)}`;
    const { lab } = await createLabWithVms(owner.client, ['gateway', 'web'], { prefix });
    await before.stop();
    const orm = await openDatabase(loadConfig({ ...baseTestEnv(), ...database.env }).database, createLogger('silent'));
    let spec: InstanceSpec;
    try {
      const em = orm.em.fork();
      const since = new Date(Date.now() - 120_000);
      const vms = ['gateway', 'web'].map((name) => ({ name, phase: VmPhase.PENDING, ready: false }));
      const row = em.create(LabInstance, { lab: Number(lab.id), user: owner.user.id, status: LabInstanceStatus.STARTING, vms, createdAt: since, updatedAt: since } as never);
      await em.flush();
      row.namespace = `${prefix}-${owner.user.id}-${row.id}`;
      await em.flush();
      spec = {
        instanceId: row.id,
        labId: Number(lab.id),
        userId: owner.user.id,
        namespace: row.namespace,
        vms: vms.map(({ name }) => ({ name, image: `registry.example.org/vms/${name}:1`, cpuCores: 1, memory: '1Gi' })),
      };
    } finally {
      await orm.close();
    }
    const name = spec.namespace;
    created.push(name);
    const namespaceBefore = (await admin.call('POST', '/api/v1/namespaces', older(buildNamespace(spec)))).body;
    for (const vm of spec.vms) await admin.call('POST', VMIS(name), older(buildVirtualMachineInstance(spec, vm)));

    // The upgraded server adopts it; its watches then follow the instance to READY.
    server = await startTestServer(engine, env, { databaseEnv: database.env });
    await eventually(
      async () => expect((await server.app.deps.orm.em.fork().findOneOrFail(LabInstance, spec.instanceId)).status).toBe(LabInstanceStatus.READY),
      60_000,
      250,
    );
    const namespace = (await admin.call('GET', `/api/v1/namespaces/${name}`)).body;
    expect(namespace.metadata.labels[LABEL.deployment]).toBe(env.DEPLOYMENT_ID);
    expect(namespace.metadata.annotations['lab-orchestrator.io/adopted-at']).toEqual(expect.any(String));
    const vmis = (await admin.call('GET', VMIS(name))).body.items as Array<{ metadata: { labels: Record<string, string> } }>;
    expect(vmis.map((v) => v.metadata.labels[LABEL.deployment])).toEqual([env.DEPLOYMENT_ID, env.DEPLOYMENT_ID]);

    // A patch from what was read before the adoption is a 409, which adoption takes as "look again"; a VMI gone is a 404.
    const kc = new KubeConfig();
    kc.loadFromFile(inject('realClusterKubeconfig'));
    const client = new AdoptionClient(kc, 10_000);
    expect(await client.labelNamespace(name, namespaceBefore.metadata.resourceVersion, env.DEPLOYMENT_ID)).toBe('conflict');
    expect(await client.labelVmi(name, 'no-such-vm', env.DEPLOYMENT_ID)).toBe('gone');

    // The guard: the service account may not patch a namespace that was not the server's, even to make it so.
    const plain = `plain-${randomUUID().slice(0, 8)}`;
    created.push(plain);
    await admin.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: plain } });
    const claim = { metadata: { labels: { [LABEL.managedBy]: 'lab-orchestrator' } } };
    const refused = await sa.request('PATCH', `/api/v1/namespaces/${plain}`, claim, MERGE_PATCH);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.message).toContain('lab-orchestrator may only update namespaces labelled');
    expect((await admin.call('GET', `/api/v1/namespaces/${plain}`)).body.metadata.labels).not.toHaveProperty(LABEL.managedBy);
  });
});
