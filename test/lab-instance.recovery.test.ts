import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedCluster, type SimulatedCluster } from '../src/simulated/index.js';
import { LabInstancesDocument, LoginDocument, StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import type { GqlClient } from './support/graphql-client.js';
import { clusterEnv, startReplica, type Replica } from './support/replica/index.js';
import { ENGINES, testDatabaseEnv } from './support/server.js';
import { eventually } from './support/wait.js';

const ADMIN = { email: 'crash-admin@example.org', password: 'a long and unusual password 42' };
const INSTANCE = 'lab-orchestrator.io/instance';
const MANAGED = 'app.kubernetes.io/managed-by';

/**
 * Replicas in child processes killed with SIGKILL at each step of startLab (TEST_CRASH_AT, test-only)
 * and after a stop wrote STOPPING, against a simulated cluster in this process that outlives them.
 */
describe.each(ENGINES)('crash recovery on %s', (engine) => {
  let cluster: SimulatedCluster;
  let database: { env: Record<string, string>; drop(): Promise<void> };
  let env: Record<string, string>;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ vmReadySeconds: 0.3, namespaceTerminationMs: 200, podTerminationMs: 100 });
    database = await testDatabaseEnv(engine);
    env = {
      ...database.env,
      ...clusterEnv(cluster.url),
      SUPERUSER_EMAIL: ADMIN.email,
      SUPERUSER_PASSWORD: ADMIN.password,
      KUBERNETES_REQUEST_TIMEOUT_SECONDS: '0.5',
      RECOVERY_AFTER_SECONDS: '1.5',
      GC_GRACE_SECONDS: '1',
      STATUS_RESYNC_SECONDS: '0.3',
      LEADER_LEASE_SECONDS: '1.5',
      LEADER_RETRY_SECONDS: '0.2',
    };
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill()));
    await cluster?.stop();
    await database?.drop();
  });

  async function replica(extra: Record<string, string> = {}): Promise<Replica> {
    const r = await startReplica({ ...env, ...extra });
    replicas.push(r);
    return r;
  }

  async function admin(r: Replica): Promise<GqlClient> {
    const { login } = await r.client().ok(LoginDocument, ADMIN);
    return r.client(login.token!);
  }

  it('brings every instance to READY, FAILED or STOPPED after kills at each step, leaving no namespace unaccounted for', { timeout: 120_000 }, async () => {
    // On PostgreSQL a second replica runs throughout and never dies; on SQLite (one process at a time) only restarts.
    const survivor = engine === 'postgres' ? await replica() : undefined;
    let labId = '';
    const killed: string[] = [];
    for (const step of ['after-row', 'after-namespace', 'between-vmis', 'stop-after-mark']) {
      const victim = await replica({ TEST_CRASH_AT: step });
      const client = await admin(victim);
      labId ||= (await createLabWithVms(client, ['a', 'b', 'c'])).lab.id;
      if (step === 'stop-after-mark') {
        const { startLab } = await client.ok(StartLabDocument, { labId });
        await expect(client.request(StopLabInstanceDocument, { id: startLab.labInstance.id })).rejects.toThrow();
      } else {
        await expect(client.request(StartLabDocument, { labId })).rejects.toThrow(); // the process died mid-request
      }
      await victim.exited;
      expect(victim.exit?.signal).toBe('SIGKILL');
      killed.push(step);
      // What the kill left behind, before anyone recovers it (RECOVERY_AFTER_SECONDS is 1.5).
      const ids = cluster.list('namespaces').map((ns) => Number(ns.metadata.labels?.[INSTANCE] ?? 0));
      const newest = cluster.list('namespaces').find((ns) => Number(ns.metadata.labels?.[INSTANCE]) === Math.max(0, ...ids));
      const vmis = newest ? cluster.list('virtualmachineinstances', newest.metadata.name) : [];
      if (step === 'after-row') expect(newest === undefined || Number(newest.metadata.labels?.[INSTANCE]) < killed.length).toBe(true);
      if (step === 'after-namespace') expect([Boolean(newest), vmis.length]).toEqual([true, 0]);
      if (step === 'between-vmis') expect(vmis.length).toBeGreaterThanOrEqual(1);
      if (step === 'stop-after-mark') expect(newest?.metadata.deletionTimestamp).toBeUndefined();
    }
    const restarted = survivor ?? (await replica());
    const client = await admin(restarted);
    await eventually(async () => {
      const { labInstances } = await client.ok(LabInstancesDocument, { first: 100 });
      const rows = labInstances.edges.map((e) => e.node);
      expect(rows).toHaveLength(killed.length);
      expect(rows.map((r) => r.status).sort()).toEqual(['FAILED', 'FAILED', 'FAILED', 'STOPPED']);
      // Every managed namespace is accounted for by an instance that is neither FAILED at start nor STOPPED.
      const active = new Set(rows.filter((r) => r.status === 'READY' || r.status === 'STARTING').map((r) => r.namespace));
      const managed = cluster.list('namespaces').filter((ns) => ns.metadata.labels?.[MANAGED]);
      expect(managed.filter((ns) => !active.has(ns.metadata.name!)).map((ns) => ns.metadata.name)).toEqual([]);
      expect(cluster.list('virtualmachineinstances').map((v) => v.metadata.labels?.[INSTANCE])).toEqual([]);
    }, 30_000, 200);
    const { labInstances } = await client.ok(LabInstancesDocument, { first: 100 });
    for (const row of labInstances.edges.map((e) => e.node).filter((r) => r.status === 'FAILED')) {
      expect(row.statusMessage).toMatch(/Start failed: the start did not finish/);
    }
  });
});
