import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedCluster, type SimulatedCluster } from '../src/simulated/index.js';
import { clusterEnv, startReplica, type Replica } from './support/replica/index.js';
import { ENGINES, testDatabaseEnv } from './support/server.js';
import { eventually } from './support/wait.js';

const LEASE_MS = 2000;
const RETRY_MS = 200;
const PERIOD_MS = 250;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(ENGINES)('one leader for the periodic duties on %s', (engine) => {
  let cluster: SimulatedCluster;
  let database: { env: Record<string, string>; drop(): Promise<void> };
  const replicas: Replica[] = [];

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ vmReadySeconds: 0.2 });
    database = await testDatabaseEnv(engine);
    const env = {
      ...database.env,
      ...clusterEnv(cluster.url),
      LEADER_LEASE_SECONDS: String(LEASE_MS / 1000),
      LEADER_RETRY_SECONDS: String(RETRY_MS / 1000),
      STATUS_RESYNC_SECONDS: String(PERIOD_MS / 1000),
    };
    replicas.push(await startReplica(env));
    replicas.push(await startReplica(env));
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill()));
    await cluster?.stop();
    await database?.drop();
  });

  const lease = () => cluster.get('leases', 'default', 'lab-orchestrator-default');
  const leaders = () => replicas.filter((r) => !r.exit && r.state.leader);
  const expiryRuns = () => replicas.map((r) => r.state.runs.expiry ?? 0);

  it('elects exactly one replica, runs the duties once per period there, and lets the other take over within the lease duration when it is killed', { timeout: 60_000 }, async () => {
    await eventually(() => expect(leaders()).toHaveLength(1), 10_000);
    const leader = leaders()[0];
    const follower = replicas.find((r) => r !== leader)!;
    expect(lease()?.spec?.holderIdentity).toBe(leader.identity);
    // Exactly one leader all along, and the duties run on it only, once per period.
    const before = expiryRuns();
    const window = 2000;
    for (let t = 0; t < window; t += 100) {
      expect(leaders()).toHaveLength(1);
      await sleep(100);
    }
    const after = expiryRuns();
    const ran = after.map((n, i) => n - before[i]);
    expect(ran[replicas.indexOf(follower)]).toBe(0);
    const periods = window / PERIOD_MS;
    expect(ran[replicas.indexOf(leader)]).toBeGreaterThanOrEqual(periods - 2);
    expect(ran[replicas.indexOf(leader)]).toBeLessThanOrEqual(periods + 2);

    const transitions = Number(lease()?.spec?.leaseTransitions ?? 0);
    await leader.kill();
    const killedAt = Date.now();
    await eventually(() => expect(follower.state.leader).toBe(true), LEASE_MS * 3, 20);
    const tookOver = Date.now() - killedAt;
    console.log(`[leader:${engine}] took over ${tookOver} ms after the leader was killed (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`);
    // The follower sees the last renewal up to one retry late, times the lease from then, and tries every
    // retry; the child reports its state every 100 ms. So: the lease duration, plus at most two retries and a report.
    expect(tookOver).toBeLessThanOrEqual(LEASE_MS + 2 * RETRY_MS + 100 + 300);
    expect(lease()?.spec).toMatchObject({ holderIdentity: follower.identity, leaseTransitions: transitions + 1 });
    const runs = follower.state.runs.expiry ?? 0;
    await sleep(1000);
    expect((follower.state.runs.expiry ?? 0) - runs).toBeGreaterThanOrEqual(2);
  });

  it('releases the lease on a graceful stop', async () => {
    const leader = leaders()[0];
    expect(leader).toBeDefined();
    await leader.stop();
    expect(lease()?.spec?.holderIdentity).toBeUndefined();
  });
});

describe('leases in the simulated cluster', () => {
  it('serves coordination.k8s.io/v1 leases as the API server does: create once, get, update under the resourceVersion read', async () => {
    const cluster = await startSimulatedCluster();
    try {
      const base = `${cluster.url}/apis/coordination.k8s.io/v1/namespaces/default/leases`;
      const send = (method: string, url: string, body?: unknown) =>
        fetch(url, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, any> })); // eslint-disable-line @typescript-eslint/no-explicit-any
      const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } };
      expect((await send('GET', `${base}/l`)).status).toBe(404);
      const created = await send('POST', base, lease);
      expect(created.status).toBe(201);
      expect((await send('POST', base, lease)).body).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 });
      const read = (await send('GET', `${base}/l`)).body;
      const renewed = await send('PUT', `${base}/l`, { ...read, spec: { ...read.spec, holderIdentity: 'b' } });
      expect(renewed.status).toBe(200);
      const stale = await send('PUT', `${base}/l`, { ...read, spec: { ...read.spec, holderIdentity: 'c' } });
      expect(stale.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
      expect((await send('GET', `${base}/l`)).body.spec.holderIdentity).toBe('b');
      expect((await send('GET', `${cluster.url}/apis/coordination.k8s.io/v1`)).body.resources.map((r: { name: string }) => r.name)).toEqual(['leases']);
    } finally {
      await cluster.stop();
    }
  });
});
