import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabInstance } from '../src/entities/index.js';
import type { Logger } from '../src/logger.js';
import { startSimulatedCluster, type SimulatedCluster } from '../src/simulated/index.js';
import { StartLabDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin } from './support/factories.js';
import { clusterEnv } from './support/replica/index.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

type Line = { level: string; msg: string } & Record<string, unknown>;

/** A logger that keeps its lines, for the deletions and their reasons. */
function capturingLogger(lines: Line[], base: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ ...base, ...fields, level, msg });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (f) => capturingLogger(lines, { ...base, ...f }) };
}

const labels = (deployment: string | undefined, instance: string) => ({
  'app.kubernetes.io/managed-by': 'lab-orchestrator',
  ...(deployment ? { 'lab-orchestrator.io/deployment': deployment } : {}),
  'lab-orchestrator.io/instance': instance,
});

describe.each(ENGINES)('garbage collection on %s', (engine) => {
  let cluster: SimulatedCluster;
  const servers: Record<'alpha' | 'beta', TestServer> = {} as never;
  const logs: Record<'alpha' | 'beta', Line[]> = { alpha: [], beta: [] };

  beforeAll(async () => {
    cluster = await startSimulatedCluster({ vmReadySeconds: 0.2, namespaceTerminationMs: 100, podTerminationMs: 50 });
    for (const id of ['alpha', 'beta'] as const) {
      servers[id] = await startTestServer(
        engine,
        { ...clusterEnv(cluster.url), DEPLOYMENT_ID: id, GC_GRACE_SECONDS: '1', STATUS_RESYNC_SECONDS: '0.2', LEADER_LEASE_SECONDS: '1.5', LEADER_RETRY_SECONDS: '0.2' },
        undefined,
        { logger: capturingLogger(logs[id]) },
      );
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s?.stop()));
    await cluster?.stop();
  });

  async function createNamespace(name: string, l: Record<string, string>) {
    const res = await fetch(`${cluster.url}/api/v1/namespaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: l } }),
    });
    expect(res.status).toBe(201);
  }

  it('deletes, after the grace period, only the orphaned namespaces of its own deployment, each with its reason in the log', { timeout: 60_000 }, async () => {
    // A live instance in each deployment (both have instance id 1 in their own database).
    const live: Record<string, string> = {};
    for (const id of ['alpha', 'beta'] as const) {
      const admin = await createAdmin(servers[id]);
      const { lab } = await createLabWithVms(admin.client, ['vm'], { prefix: `${id}-lab` });
      live[id] = (await admin.client.ok(StartLabDocument, { labId: lab.id })).startLab.labInstance.namespace;
    }
    // A second alpha instance whose row then disappears: its namespace is an orphan.
    const alphaAdmin = await createAdmin(servers.alpha);
    const { lab } = await createLabWithVms(alphaAdmin.client, ['vm'], { prefix: 'alpha-gone' });
    const gone = (await alphaAdmin.client.ok(StartLabDocument, { labId: lab.id })).startLab.labInstance;
    await servers.alpha.app.deps.orm.em.fork().nativeDelete(LabInstance, { id: Number(gone.id) });
    // Orphans made by hand, one per deployment, and one of no deployment (an older server's, say).
    await createNamespace('orphan-alpha', labels('alpha', '999'));
    await createNamespace('orphan-beta', labels('beta', '999'));
    await createNamespace('orphan-nobody', labels(undefined, '999'));
    const exists = (name: string) => Boolean(cluster.get('namespaces', undefined, name));
    await eventually(() => {
      expect([gone.namespace, 'orphan-alpha', 'orphan-beta'].map(exists)).toEqual([false, false, false]);
    }, 20_000, 100);
    expect([live.alpha, live.beta, 'orphan-nobody'].map(exists)).toEqual([true, true, true]);
    const deletions = (id: 'alpha' | 'beta') => logs[id].filter((l) => l.msg === 'deleting namespace').map((l) => [l.namespace, l.reason]);
    expect(deletions('alpha')).toEqual(
      expect.arrayContaining([
        [gone.namespace, `orphan: instance ${gone.id} does not exist in this deployment's database`],
        ['orphan-alpha', "orphan: instance 999 does not exist in this deployment's database"],
      ]),
    );
    expect(deletions('beta')).toEqual([['orphan-beta', "orphan: instance 999 does not exist in this deployment's database"]]);
    expect(deletions('alpha').map(([ns]) => ns)).not.toContain('orphan-beta');
  });
});
