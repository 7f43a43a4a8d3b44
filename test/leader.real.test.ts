/**
 * Leader election against the REAL API server of the global setup (kube-apiserver 1.36), as the
 * server's own service account with deploy/rbac.yaml applied: the Lease's MicroTime fields, its
 * resourceVersion conflicts and the namespaced Role are the real ones. Skipped when TEST_CLUSTERS
 * does not name `real`.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { KubeClient } from '../src/k8s/client.js';
import { LeaderElector } from '../src/k8s/leader.js';
import { createLogger } from '../src/logger.js';
import { CLUSTERS } from './support/server.js';
import { eventually } from './support/wait.js';

describe.skipIf(!CLUSTERS.includes('real'))('leader election on a real control plane', () => {
  it('elects one of two replicas with the Role of deploy/, and hands over when the leader stops', { timeout: 60_000 }, async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(inject('realClusterKubeconfig'));
    const kube = new KubeClient(kc, 5000);
    const options = { namespace: 'lab-orchestrator', name: 'lab-orchestrator-default', leaseDurationMs: 3000, renewDeadlineMs: 2000, retryMs: 200 };
    const logger = createLogger('silent');
    const a = new LeaderElector(kube, { ...options, identity: 'replica-a' }, logger);
    const b = new LeaderElector(kube, { ...options, identity: 'replica-b' }, logger);
    a.start();
    await eventually(() => expect(a.isLeader).toBe(true), 10_000);
    b.start();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect([a.isLeader, b.isLeader]).toEqual([true, false]);
      const lease = await kube.readLease('lab-orchestrator', 'lab-orchestrator-default');
      expect(lease?.spec?.holderIdentity).toBe('replica-a');
      expect(String(lease?.spec?.renewTime)).toMatch(/\.\d{6}Z$/); // MicroTime, as the API server stores it
      await a.stop(); // releases the lease
      await eventually(() => expect(b.isLeader).toBe(true), 5000);
      expect((await kube.readLease('lab-orchestrator', 'lab-orchestrator-default'))?.spec?.holderIdentity).toBe('replica-b');
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
