import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabInstance } from '../src/entities/index.js';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import type { GqlClient } from './support/graphql-client.js';
import { clusterEnv } from './support/replica/index.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

const ME_QUOTA = `query { me { instanceQuota {
  instances { used limit } clusterInstances { used limit } clusterCpuCores { used limit } clusterMemoryBytes { used limit } } } }`;

describe.each(ENGINES)('quotas on %s', (engine) => {
  let server: TestServer & { databaseEnv: Record<string, string> };
  let replica: TestServer | undefined;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  const env = { MAX_INSTANCES_PER_USER: '2', MAX_TOTAL_CPU_CORES: '10', MAX_TOTAL_MEMORY: '64Gi' };

  beforeAll(async () => {
    server = await startTestServer(engine, env);
    cluster = server.app.simulated!;
    admin = await createAdmin(server);
    // On PostgreSQL a second replica shares the database and the cluster: the limit holds across both.
    if (engine === 'postgres') replica = await startTestServer(engine, { ...env, ...clusterEnv(cluster.url) }, { databaseEnv: server.databaseEnv });
  });
  afterAll(async () => {
    await replica?.stop();
    await server?.stop();
  });

  async function startMany(user: TestUser, labId: string, n: number) {
    const clients: GqlClient[] = [user.client, ...(replica ? [replica.client(user.token)] : [])];
    return Promise.all(Array.from({ length: n }, (_, i) => clients[i % clients.length].request(StartLabDocument, { labId })));
  }

  it('gives exactly 2 instances for 100 concurrent startLab calls by one user against a limit of 2, and creates nothing for the others', { timeout: 60_000 }, async () => {
    const user = await createUser(server, { isTrusted: true });
    const { lab } = await createLabWithVms(admin.client, ['solo']);
    const namespacesBefore = cluster.list('namespaces').length;
    const results = await startMany(user, lab.id, 100);
    const ok = results.filter((r) => !r.errors);
    const refused = results.filter((r) => r.errors);
    expect(ok).toHaveLength(2);
    expect(refused).toHaveLength(98);
    for (const r of refused) {
      expect(r.errors![0].extensions).toMatchObject({ code: 'QUOTA_EXCEEDED', quota: 'instancesPerUser', limit: 2, used: 2 });
    }
    const rows = await server.app.deps.orm.em.fork().find(LabInstance, { user: user.user.id });
    expect(rows).toHaveLength(2);
    expect(cluster.list('namespaces').length - namespacesBefore).toBe(2);
    const { me } = await user.client.ok<{ me: { instanceQuota: Record<string, { used: number; limit: number | null }> } }, never>(ME_QUOTA);
    expect(me.instanceQuota.instances).toEqual({ used: 2, limit: 2 });
    expect(me.instanceQuota.clusterCpuCores).toEqual({ used: 2, limit: 10 });
    expect(me.instanceQuota.clusterMemoryBytes).toEqual({ used: 2 * 2 ** 30, limit: 64 * 2 ** 30 });
    expect(me.instanceQuota.clusterInstances.limit).toBeNull();
    // A stopped instance frees its place.
    await user.client.ok(StopLabInstanceDocument, { id: ok[0].data!.startLab.labInstance.id });
    await eventually(async () => {
      const { me: after } = await user.client.ok<{ me: { instanceQuota: Record<string, { used: number }> } }, never>(ME_QUOTA);
      expect(after.instanceQuota.instances.used).toBe(1);
    });
  });

  it('limits admins only by the totals: the CPU budget refuses a lab that does not fit, naming the limit and the use', async () => {
    const { lab } = await createLabWithVms(admin.client, ['a', 'b', 'c']); // 1 + 2 + 3 = 6 cores
    const before = (await admin.client.ok<{ me: { instanceQuota: { clusterCpuCores: { used: number } } } }, never>(ME_QUOTA)).me.instanceQuota.clusterCpuCores.used;
    expect(before + 6).toBeLessThanOrEqual(10);
    await admin.client.ok(StartLabDocument, { labId: lab.id });
    const error = await admin.client.fails(StartLabDocument, { labId: lab.id }, 'QUOTA_EXCEEDED');
    expect(error.extensions).toMatchObject({ quota: 'cpuCores', limit: 10, used: before + 6 });
    const { me } = await admin.client.ok<{ me: { instanceQuota: { instances: { limit: number | null } } } }, never>(ME_QUOTA);
    expect(me.instanceQuota.instances.limit).toBeNull();
  });

  it('applies a per-lab limit set on the lab', async () => {
    const { lab } = await createLabWithVms(admin.client, ['solo']);
    await admin.client.ok('mutation($id: ID!) { updateLab(id: $id, input: { maxInstances: 1 }) { id maxInstances } }', { id: lab.id });
    const [one, two] = [await createUser(server, { isTrusted: true }), await createUser(server, { isTrusted: true })];
    await one.client.ok(StartLabDocument, { labId: lab.id });
    const error = await two.client.fails(StartLabDocument, { labId: lab.id }, 'QUOTA_EXCEEDED');
    expect(error.extensions).toMatchObject({ quota: 'instancesPerLab', limit: 1, used: 1 });
  });
});
