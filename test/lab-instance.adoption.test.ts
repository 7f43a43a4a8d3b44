import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { openDatabase } from '../src/db.js';
import { LabInstance, LabInstanceStatus, VmPhase } from '../src/entities/index.js';
import type { KubeObject } from '../src/k8s/informer.js';
import { buildNamespace, buildVirtualMachineInstance, type InstanceSpec } from '../src/k8s/templates/instance.js';
import { LABEL } from '../src/k8s/templates/labels.js';
import { createLogger, type Logger } from '../src/logger.js';
import { adoptionRefusal } from '../src/services/lab-instance.adoption.js';
import { startSimulatedCluster, type SimulatedCluster } from '../src/simulated/index.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin } from './support/factories.js';
import { clusterEnv } from './support/replica/index.js';
import { baseTestEnv, ENGINES, startTestServer, testDatabaseEnv, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

type Line = { level: string; msg: string } & Record<string, unknown>;

/** A logger that keeps its lines, for the adoptions and their reasons. */
function capturingLogger(lines: Line[], base: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ ...base, ...fields, level, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => capturingLogger(lines, { ...base, ...f }) };
}

const VMS = ['gateway', 'web'];
const MINUTE = 60_000;

/** An object as a server older than DEPLOYMENT_ID made it: the contract's labels, but no deployment label. */
function older<T extends { metadata?: { labels?: Record<string, string> } }>(obj: T): T {
  const labels = { ...obj.metadata?.labels };
  delete labels[LABEL.deployment];
  return { ...obj, metadata: { ...obj.metadata, labels } };
}

/**
 * The upgrade: an older server left instances (rows in the database, namespaces and running VMIs in the
 * cluster, none with a deployment label) and stopped; this server starts on the same database and cluster.
 */
describe.each(ENGINES)('adoption of an older server’s namespaces on %s', (engine) => {
  let cluster: SimulatedCluster;
  let database: Awaited<ReturnType<typeof testDatabaseEnv>>;
  let server: TestServer;
  const lines: Line[] = [];
  const ns = { active: '', ready: '', stopped: '', foreign: 'older-foreign-1-4242' };
  const ids = { active: 0, ready: 0, stopped: 0 };
  /** When the READY instance started: long past its start deadline, as instances that ran for hours are. */
  const longAgo = new Date(Date.now() - 120 * MINUTE);

  async function create(path: string, body: unknown) {
    const res = await fetch(`${cluster.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status, await res.clone().text()).toBe(201);
  }

  /** The namespace and VMIs of one instance, as the older server created them. */
  async function createOlderObjects(spec: InstanceSpec) {
    await create('/api/v1/namespaces', older(buildNamespace(spec)));
    for (const vm of spec.vms) {
      await create(`/apis/kubevirt.io/v1/namespaces/${spec.namespace}/virtualmachineinstances`, older(buildVirtualMachineInstance(spec, vm)));
    }
  }

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ vmReadySeconds: 0.3, namespaceTerminationMs: 100, podTerminationMs: 50 });
    database = await testDatabaseEnv(engine);
    const env = {
      ...clusterEnv(cluster.url),
      DEPLOYMENT_ID: 'alpha',
      GC_GRACE_SECONDS: '1',
      STATUS_RESYNC_SECONDS: '0.2',
      LEADER_LEASE_SECONDS: '1.5',
      LEADER_RETRY_SECONDS: '0.2',
    };
    // The catalogue, made through the API before the upgrade.
    const before = await startTestServer(engine, env, { databaseEnv: database.env });
    const admin = await createAdmin(before);
    const { lab } = await createLabWithVms(admin.client, VMS, { prefix: 'older' });
    await before.stop();

    // The older server's instances: rows written straight to the database, then their objects.
    const orm = await openDatabase(loadConfig({ ...baseTestEnv(), ...database.env }).database, createLogger('silent'));
    try {
      const em = orm.em.fork();
      const since = new Date(Date.now() - 2 * MINUTE);
      const vms = VMS.map((name) => ({ name, phase: VmPhase.PENDING, ready: false }));
      const row = (status: LabInstanceStatus, at = since) =>
        em.create(LabInstance, { lab: Number(lab.id), user: admin.user.id, status, vms, createdAt: at, updatedAt: at } as never);
      const active = row(LabInstanceStatus.STARTING);
      const ready = row(LabInstanceStatus.READY, longAgo);
      const stopped = row(LabInstanceStatus.STOPPED);
      stopped.stoppedAt = since;
      await em.flush();
      for (const instance of [active, ready, stopped]) instance.namespace = `older-${admin.user.id}-${instance.id}`;
      await em.flush();
      Object.assign(ids, { active: active.id, ready: ready.id, stopped: stopped.id });
      Object.assign(ns, { active: active.namespace, ready: ready.namespace, stopped: stopped.namespace });
    } finally {
      await orm.close();
    }
    for (const key of ['active', 'ready', 'stopped'] as const) {
      const vms = VMS.map((name) => ({ name, image: `registry.example.org/vms/${name}:1`, cpuCores: 1, memory: '1Gi' }));
      await createOlderObjects({ instanceId: ids[key], labId: Number(lab.id), userId: admin.user.id, namespace: ns[key], vms });
    }
    // Managed, unlabelled, and named by no row of this deployment (another deployment's older server's, say).
    await createOlderObjects({ instanceId: 4242, labId: 1, userId: 1, namespace: ns.foreign, vms: [{ name: 'vm', image: 'img', cpuCores: 1, memory: '1Gi' }] });

    // The READY instance's VMs run, as they did under the older server before the upgrade (otherwise a
    // VMI still booting makes it STARTING, rightly, and the test would see that, not the adoption).
    await eventually(() => {
      for (const vm of VMS) {
        const vmi = cluster.get('virtualmachineinstances', ns.ready, vm);
        expect(vmi?.status?.phase).toBe('Running');
        expect(vmi?.status?.conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
      }
    }, 20_000, 50);

    server = await startTestServer(engine, env, { databaseEnv: database.env }, { logger: capturingLogger(lines) });
  });

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
    await cluster?.stop();
  });

  const row = (id: number) => server.app.deps.orm.em.fork().findOneOrFail(LabInstance, id);
  const logged = (msg: string, namespace: string) => lines.filter((l) => l.msg === msg && l.namespace === namespace);

  it('adopts the active instance’s namespace and VMIs, which the status watch then follows to READY', { timeout: 30_000 }, async () => {
    await eventually(async () => expect((await row(ids.active)).status).toBe(LabInstanceStatus.READY), 20_000, 50);
    const ready = await row(ids.active);
    expect(ready.vms.map((vm) => [vm.name, vm.phase, vm.ready])).toEqual(VMS.map((name) => [name, VmPhase.RUNNING, true]));
    expect(ready.stoppedAt ?? null).toBeNull();

    const namespace = cluster.get('namespaces', undefined, ns.active)!;
    expect(namespace.metadata.labels?.[LABEL.deployment]).toBe('alpha');
    expect(Date.parse(namespace.metadata.annotations?.['lab-orchestrator.io/adopted-at'] ?? '')).toBeGreaterThan(Date.now() - MINUTE);
    for (const vm of VMS) expect(cluster.get('virtualmachineinstances', ns.active, vm)?.metadata.labels?.[LABEL.deployment]).toBe('alpha');
    expect(logged('adopting namespace', ns.active)).toEqual([
      expect.objectContaining({
        instanceId: ids.active,
        vmis: expect.arrayContaining(VMS),
        reason: `made by a server older than DEPLOYMENT_ID, and instance ${ids.active} (STARTING) of this deployment's database names it`,
      }),
    ]);
  });

  it('keeps an instance that was READY long before the upgrade READY all through its adoption, never half gone', { timeout: 30_000 }, async () => {
    await eventually(() => expect(cluster.get('namespaces', undefined, ns.ready)?.metadata.labels?.[LABEL.deployment]).toBe('alpha'), 20_000, 50);
    await eventually(async () => expect((await row(ids.ready)).vms.map((vm) => vm.phase)).toEqual(VMS.map(() => VmPhase.RUNNING)), 10_000, 50);
    const ready = await row(ids.ready);
    expect(ready.status).toBe(LabInstanceStatus.READY);
    // No status change was ever written: updatedAt moves with every one.
    expect(ready.updatedAt.getTime()).toBe(longAgo.getTime());
  });

  it('adopts the stopped instance’s namespace, which is then deleted as any leftover of a STOPPED instance', { timeout: 30_000 }, async () => {
    await eventually(() => expect(cluster.get('namespaces', undefined, ns.stopped)).toBeUndefined(), 20_000, 50);
    expect(logged('adopting namespace', ns.stopped)).toEqual([expect.objectContaining({ instanceId: ids.stopped, reason: expect.stringContaining('(STOPPED)') })]);
    // By the reconciler of its replica, or the leader's GC if that comes first: once or more, always for this reason.
    const reasons = logged('deleting namespace', ns.stopped).map((l) => l.reason);
    expect(reasons.length).toBeGreaterThanOrEqual(1);
    for (const reason of reasons) expect(reason).toMatch(/STOPPED/);
    expect((await row(ids.stopped)).status).toBe(LabInstanceStatus.STOPPED);
  });

  it('leaves an unlabelled namespace that no instance of its database names alone, and says so once', { timeout: 30_000 }, async () => {
    await eventually(() => expect(logged('leaving an unlabelled managed namespace alone', ns.foreign)).toHaveLength(1), 20_000, 50);
    const passes = server.app.duties.runs.adoption;
    await eventually(() => expect(server.app.duties.runs.adoption).toBeGreaterThanOrEqual(passes + 3), 10_000, 50);
    expect(logged('leaving an unlabelled managed namespace alone', ns.foreign)).toEqual([
      expect.objectContaining({ level: 'warn', reason: "no instance in this deployment's database names it" }),
    ]);
    const namespace = cluster.get('namespaces', undefined, ns.foreign);
    expect(namespace?.metadata.deletionTimestamp).toBeUndefined();
    expect(namespace?.metadata.labels).not.toHaveProperty(LABEL.deployment);
    expect(cluster.get('virtualmachineinstances', ns.foreign, 'vm')?.metadata.labels).not.toHaveProperty(LABEL.deployment);
    expect(lines.filter((l) => l.msg === 'adopting namespace').map((l) => l.namespace).sort()).toEqual([ns.active, ns.ready, ns.stopped].sort());
    expect(lines.filter((l) => /could not adopt/.test(l.msg))).toEqual([]);
  });
});

describe('which unlabelled namespace a deployment may adopt', () => {
  const created = new Date('2026-01-10T12:00:00Z');
  const namespace = (instance: string, creationTimestamp = created): KubeObject => ({
    metadata: { name: 'lab-1-7', labels: { [LABEL.managedBy]: 'lab-orchestrator', [LABEL.instance]: instance }, creationTimestamp },
  });
  const row = (createdAt: Date) => ({ id: 7, namespace: 'lab-1-7', status: LabInstanceStatus.READY, createdAt });

  it('adopts a namespace that a row of its database names, made after that row', () => {
    expect(adoptionRefusal(namespace('7'), row(new Date(created.getTime() - 500)))).toBeUndefined();
  });

  it('refuses a namespace that no row names', () => {
    expect(adoptionRefusal(namespace('7'), undefined)).toBe("no instance in this deployment's database names it");
  });

  it('refuses a namespace labelled as another instance than the row that names it', () => {
    expect(adoptionRefusal(namespace('8'), row(created))).toBe('instance 7 names it but it is labelled as instance 8');
  });

  it('refuses a namespace made well before the row that names it: another deployment’s of the same name', () => {
    expect(adoptionRefusal(namespace('7'), row(new Date(created.getTime() + 5 * MINUTE)))).toMatch(/older than instance 7, which names it/);
  });
});
