import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabInstance, LabInstanceStatus, VmPhase } from '../src/entities/index.js';
import { readInstanceRows, writeInstanceStates, type StateWrite } from '../src/services/lab-instance.rows.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

describe.each(ENGINES)('instance rows on %s', (engine) => {
  let server: TestServer;
  let admin: TestUser;
  let labId: number;
  beforeAll(async () => {
    // Kubernetes objects are not needed: rows are inserted directly and the reconciler never sees them.
    server = await startTestServer(engine);
    admin = await createAdmin(server);
    labId = Number((await createLabWithVms(admin.client, ['vm'])).lab.id);
  });
  afterAll(() => server?.stop());

  async function insert(status: LabInstanceStatus): Promise<LabInstance> {
    const em = server.app.deps.orm.em.fork();
    const row = em.create(LabInstance, {
      lab: labId,
      user: admin.user.id,
      namespace: `rows-${Math.random().toString(36).slice(2, 8)}`,
      status,
      vms: [],
      createdAt: new Date(1_700_000_000_123),
      updatedAt: new Date(1_700_000_000_456),
      expiresAt: new Date(1_700_000_009_000),
    } as never);
    await em.flush();
    return row;
  }

  it('writes only rows whose status is still the expected one, and reads back what it wrote, dates to the millisecond', async () => {
    const [a, b, c] = await Promise.all([insert(LabInstanceStatus.STARTING), insert(LabInstanceStatus.STARTING), insert(LabInstanceStatus.STOPPING)]);
    const vms = [{ name: 'vm', phase: VmPhase.RUNNING, ready: true, podName: 'virt-launcher-vm-x2b4z', nodeName: 'n1', message: "l'été ✓" }];
    const write = (id: number, expectedStatus: LabInstanceStatus, status: LabInstanceStatus, stoppedAt: Date | null = null): StateWrite => ({
      id,
      expectedStatus,
      status,
      statusMessage: status === LabInstanceStatus.STOPPED ? 'gone' : null,
      vms,
      updatedAt: new Date(1_800_000_000_789),
      stoppedAt,
    });
    const em = server.app.deps.orm.em.fork();
    const written = await writeInstanceStates(em, engine, [
      write(a.id, LabInstanceStatus.STARTING, LabInstanceStatus.READY),
      write(b.id, LabInstanceStatus.READY, LabInstanceStatus.STOPPING), // b is still STARTING: not written
      write(c.id, LabInstanceStatus.STOPPING, LabInstanceStatus.STOPPED, new Date(1_800_000_001_001)),
    ]);
    expect([...written].sort((x, y) => x - y)).toEqual([a.id, c.id]);

    const rows = await readInstanceRows(em, [c.id, a.id, b.id, 999_999]);
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(rows).toHaveLength(3);
    expect(byId.get(a.id)).toEqual({
      id: a.id,
      lab: { id: labId },
      user: { id: admin.user.id },
      namespace: a.namespace,
      status: LabInstanceStatus.READY,
      statusMessage: null,
      vms,
      createdAt: new Date(1_700_000_000_123),
      updatedAt: new Date(1_800_000_000_789),
      expiresAt: new Date(1_700_000_009_000),
      stoppedAt: null,
    });
    expect(byId.get(b.id)).toMatchObject({ status: LabInstanceStatus.STARTING, vms: [], updatedAt: new Date(1_700_000_000_456) });
    expect(byId.get(c.id)).toMatchObject({ status: LabInstanceStatus.STOPPED, statusMessage: 'gone', stoppedAt: new Date(1_800_000_001_001) });

    // The ORM reads the same values back from what the raw statements wrote.
    const entity = await server.app.deps.orm.em.fork().findOneOrFail(LabInstance, a.id);
    expect({ status: entity.status, vms: entity.vms, updatedAt: entity.updatedAt }).toEqual({ status: 'READY', vms, updatedAt: new Date(1_800_000_000_789) });
  });
});
