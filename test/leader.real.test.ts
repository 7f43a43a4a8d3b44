/**
 * Leader election against the REAL API server of the global setup (kube-apiserver 1.36), as the
 * server's own service account with deploy/rbac.yaml applied: the Lease's MicroTime fields, its
 * resourceVersion conflicts, its watch and the namespaced Role are the real ones. Skipped when
 * TEST_CLUSTERS does not name `real`.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../src/k8s/client.js';
import { LeaderElector } from '../src/k8s/leader.js';
import { createLogger } from '../src/logger.js';
import { expectOneLeaseWatched, killLeader, LeaseLog } from './support/leader-takeover.js';
import { startReplica, type Replica } from './support/replica/index.js';
import { CLUSTERS, ENGINES, testDatabaseEnv } from './support/server.js';
import { eventually } from './support/wait.js';

const NAMESPACE = 'lab-orchestrator';
/** The one lease name deploy/rbac.yaml lets the service account get, update and watch (DEPLOYMENT_ID=default). */
const NAME = 'lab-orchestrator-default';
const LEASE_MS = 2000;
/** As in leader.test.ts: long, so that an elector that acted only at its polls would be 0.55 s or more late. */
const RETRY_MS = 850;
const PERIOD_MS = 250;
/** The acquiring write, the lag of the follower's watch behind the test's, and the event back (see leader.test.ts). */
const WRITE_MS = 300;
const EARLY_MS = 100;

const kubeConfig = (file: string) => {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
};

describe.skipIf(!CLUSTERS.includes('real'))('leader election on a real control plane', () => {
  it('elects one of two replicas with the Role of deploy/, and hands over when the leader stops', { timeout: 60_000 }, async () => {
    const kube = new KubeClient(kubeConfig(inject('realClusterKubeconfig')), 5000);
    const options = { namespace: NAMESPACE, name: NAME, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryMs: 200 };
    const logger = createLogger('silent');
    const a = new LeaderElector(kube, { ...options, identity: 'replica-a' }, logger);
    const b = new LeaderElector(kube, { ...options, identity: 'replica-b' }, logger);
    a.start();
    await eventually(() => expect(a.isLeader).toBe(true), 10_000);
    b.start();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect([a.isLeader, b.isLeader]).toEqual([true, false]);
      const lease = await kube.readLease(NAMESPACE, NAME);
      expect(lease?.spec?.holderIdentity).toBe('replica-a');
      expect(String(lease?.spec?.renewTime)).toMatch(/\.\d{6}Z$/); // MicroTime, as the API server stores it
      await a.stop(); // releases the lease
      await eventually(() => expect(b.isLeader).toBe(true), 5000);
      expect((await kube.readLease(NAMESPACE, NAME))?.spec?.holderIdentity).toBe('replica-b');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('lets the service account watch its lease: the lease as it is first, then its changes and its deletion, no other lease', async () => {
    await expectOneLeaseWatched(kubeConfig(inject('realClusterKubeconfig')), kubeConfig(inject('realClusterAdminKubeconfig')), NAMESPACE, NAME);
  });

  describe.each(ENGINES)('replicas in child processes on %s', (engine) => {
    let database: { env: Record<string, string>; drop(): Promise<void> };
    let replicas: Replica[] = [];

    beforeAll(async () => {
      database = await testDatabaseEnv(engine);
      const env = {
        ...database.env,
        KUBERNETES_MODE: 'kubeconfig',
        KUBECONFIG: inject('realClusterKubeconfig'),
        KUBERNETES_REQUEST_TIMEOUT_SECONDS: '10',
        LEASE_NAMESPACE: NAMESPACE,
        LEADER_LEASE_SECONDS: String(LEASE_MS / 1000),
        LEADER_RETRY_SECONDS: String(RETRY_MS / 1000),
        STATUS_RESYNC_SECONDS: String(PERIOD_MS / 1000),
      };
      // The first migrates the empty database alone (two migrating at once may fail on a lock).
      const first = await startReplica(env);
      replicas = [first, ...(await Promise.all([startReplica(env), startReplica(env)]))];
    }, 180_000); // three servers starting at once on a loaded machine
    afterAll(async () => {
      await Promise.all(replicas.map((r) => r.stop()));
      await database?.drop();
    });

    const live = () => replicas.filter((r) => !r.exit);
    const leaders = () => live().filter((r) => r.state.leader);
    const expiryRuns = () => live().map((r) => r.state.runs.expiry ?? 0);

    /** Over two seconds: one leader all along, no other holder, and the duties there only, once per period. */
    async function expectDutiesOn(leader: Replica, log: LeaseLog): Promise<void> {
      const from = log.sightings.length;
      const before = expiryRuns();
      for (let t = 0; t < 2000; t += 100) {
        expect(leaders()).toEqual([leader]);
        await new Promise((r) => setTimeout(r, 100));
      }
      const ran = expiryRuns().map((n, i) => n - before[i]);
      expect(ran).toEqual(live().map((r, i) => (r === leader ? ran[i] : 0)));
      expect(ran[live().indexOf(leader)]).toBeGreaterThanOrEqual(2000 / PERIOD_MS - 2);
      expect(ran[live().indexOf(leader)]).toBeLessThanOrEqual(2000 / PERIOD_MS + 2);
      expect(log.sightings.slice(from).filter((s) => s.holder !== leader.identity)).toEqual([]);
    }

    it('replaces a SIGKILLed leader within the lease duration, twice, and runs the duties once per period throughout', { timeout: 60_000 }, async () => {
      const log = await LeaseLog.open(kubeConfig(inject('realClusterAdminKubeconfig')), NAMESPACE, NAME);
      try {
        await eventually(() => expect(leaders()).toHaveLength(1), 15_000);
        let leader = leaders()[0];
        await expectDutiesOn(leader, log);
        for (const round of [1, 2]) {
          const { takeoverMs, sinceRenewalMs, triedMs, holder } = await killLeader(log, leader, LEASE_MS * 3);
          console.log(`[leader:real:${engine}] round ${round}: taken over ${takeoverMs} ms after the SIGKILL (tried at ${triedMs} ms), ${sinceRenewalMs} ms after the last renewal (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)`);
          expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + WRITE_MS);
          expect(sinceRenewalMs).toBeGreaterThanOrEqual(LEASE_MS - EARLY_MS);
          const next = live().find((r) => r.identity === holder)!;
          expect(next).toBeDefined();
          await eventually(() => expect(next.state.leader).toBe(true), 1000);
          await expectDutiesOn(next, log);
          leader = next;
        }
      } finally {
        log.close();
      }
    });
  });
});
