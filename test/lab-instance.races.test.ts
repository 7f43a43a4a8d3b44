import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { LabInstance } from '../src/entities/index.js';
import { DeleteLabDocument, StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

const ROUNDS = 50;
const INSTANCE = 'lab-orchestrator.io/instance';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(ENGINES)('races that must not lose a VM on %s', (engine) => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let owner: TestUser;

  beforeAll(async () => {
    server = await startTestServer(engine, { STATUS_RESYNC_SECONDS: '0.2', SIMULATED_VM_READY_SECONDS: '0.3' });
    cluster = server.app.simulated!;
    [admin, owner] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
  });
  afterAll(() => server?.stop());

  const rows = () => server.app.deps.orm.em.fork().find(LabInstance, {}, { orderBy: { id: 'asc' } });
  /** Namespaces and VMIs in the cluster, by the instance id on their labels. */
  const objectsOf = (id: number) => [
    ...cluster.list('namespaces').filter((o) => o.metadata.labels?.[INSTANCE] === String(id)),
    ...cluster.list('virtualmachineinstances').filter((o) => o.metadata.labels?.[INSTANCE] === String(id)),
  ];

  /** Waits for the instance row that startLab inserts after `afterId`. */
  async function newInstance(afterId: number, give: Promise<unknown>): Promise<number | undefined> {
    let settled = false;
    void give.finally(() => (settled = true));
    for (;;) {
      const row = await server.app.deps.orm.em.fork().findOne(LabInstance, { id: { $gt: afterId } }, { orderBy: { id: 'asc' } });
      if (row) return row.id;
      if (settled) return undefined;
      await sleep(1);
    }
  }

  it(`lets a stop during a start win, ${ROUNDS} rounds: every instance ends STOPPED, with nothing left in the cluster, and stays so`, { timeout: 120_000 }, async () => {
    const labId = (await createLabWithVms(admin.client, ['a', 'b', 'c'])).lab.id;
    const outcomes: Record<string, number> = {};
    const ids: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const last = (await rows()).at(-1)?.id ?? 0;
      const start = owner.client.request(StartLabDocument, { labId });
      const id = await newInstance(last, start);
      expect(id, 'startLab recorded an instance').toBeDefined();
      ids.push(id!);
      await sleep(round % 7 === 0 ? 0 : Math.random() * 12);
      const stop = await owner.client.request(StopLabInstanceDocument, { id: String(id) });
      expect(stop.errors, JSON.stringify(stop.errors)).toBeUndefined();
      const started = await start;
      const outcome = started.errors ? started.errors[0].extensions?.code ?? 'error' : 'OK';
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      expect(['OK', 'CONFLICT']).toContain(outcome);
    }
    await eventually(async () => {
      const all = (await rows()).filter((r) => ids.includes(r.id));
      expect(all.map((r) => [r.id, r.status])).toEqual(ids.map((id) => [id, 'STOPPED']));
      expect(ids.flatMap(objectsOf)).toEqual([]);
    }, 20_000);
    await sleep(1000); // several resync passes: nothing comes back
    const after = (await rows()).filter((r) => ids.includes(r.id));
    expect(after.every((r) => r.status === 'STOPPED' && r.stoppedAt)).toBe(true);
    expect(ids.flatMap(objectsOf)).toEqual([]);
    console.log(`[races:${engine}] stop during start: startLab answered ${JSON.stringify(outcomes)}`);
  });

  it(`refuses to delete a lab while a start is recording an instance, ${ROUNDS} rounds: never both OK, no VM without an instance`, { timeout: 120_000 }, async () => {
    const outcomes: Record<string, number> = {};
    for (let round = 0; round < ROUNDS; round++) {
      const { lab } = await createLabWithVms(admin.client, ['solo']);
      const delay = Math.random() * 8;
      const [started, deleted] = await Promise.all([
        sleep(round % 2 ? delay : 0).then(() => owner.client.request(StartLabDocument, { labId: lab.id })),
        sleep(round % 2 ? 0 : delay).then(() => admin.client.request(DeleteLabDocument, { id: lab.id })),
      ]);
      const s = started.errors ? started.errors[0].extensions?.code : 'OK';
      const d = deleted.errors ? deleted.errors[0].extensions?.code : 'OK';
      const key = `start ${s}, delete ${d}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
      expect(['start OK, delete CONFLICT', 'start NOT_FOUND, delete OK']).toContain(key);
      const instances = (await rows()).filter((r) => r.lab.id === Number(lab.id));
      if (s === 'OK') {
        expect(instances).toHaveLength(1);
        const id = instances[0].id;
        expect(objectsOf(id).length).toBeGreaterThan(0);
        await owner.client.ok(StopLabInstanceDocument, { id: String(id) });
        await eventually(async () => {
          const row = await server.app.deps.orm.em.fork().findOneOrFail(LabInstance, id);
          expect(row.status).toBe('STOPPED');
        }, 10_000);
        // Now it may go; the instance row stays for history.
        await admin.client.ok(DeleteLabDocument, { id: lab.id });
        expect((await rows()).filter((r) => r.id === id)).toHaveLength(1);
      } else {
        expect(instances).toEqual([]);
      }
    }
    // Every VM in the cluster belongs to an instance that is not STOPPED.
    const active = new Set((await rows()).filter((r) => r.status !== 'STOPPED').map((r) => String(r.id)));
    await eventually(() => {
      const strays = cluster.list('virtualmachineinstances').filter((v) => !active.has(v.metadata.labels?.[INSTANCE] ?? ''));
      expect(strays.map((v) => v.metadata.namespace)).toEqual([]);
    }, 10_000);
    console.log(`[races:${engine}] deleteLab against startLab: ${JSON.stringify(outcomes)}`);
  });

  it('keeps the instances of a deleted lab, with their lab, and frees its name and prefix', async () => {
    const { lab } = await createLabWithVms(admin.client, ['solo'], { prefix: `keep-${engine}` });
    const { startLab } = await owner.client.ok(StartLabDocument, { labId: lab.id });
    await owner.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
    await eventually(async () => {
      const row = await server.app.deps.orm.em.fork().findOneOrFail(LabInstance, Number(startLab.labInstance.id));
      expect(row.status).toBe('STOPPED');
    }, 10_000);
    await admin.client.ok(DeleteLabDocument, { id: lab.id });
    const { lab: gone } = await admin.client.ok<{ lab: unknown }, { id: string }>('query($id: ID!) { lab(id: $id) { id } }', { id: lab.id });
    expect(gone).toBeNull();
    const { labInstance } = await owner.client.ok<{ labInstance: { lab: { id: string; namespacePrefix: string } } }, { id: string }>(
      'query($id: ID!) { labInstance(id: $id) { lab { id namespacePrefix } } }',
      { id: startLab.labInstance.id },
    );
    expect(labInstance.lab).toEqual({ id: lab.id, namespacePrefix: `keep-${engine}` });
    const again = await createLabWithVms(admin.client, ['solo'], { prefix: `keep-${engine}` });
    expect(again.lab.id).not.toBe(lab.id);
  });
});
