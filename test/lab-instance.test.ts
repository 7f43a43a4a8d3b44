import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedCluster } from '../src/simulated/index.js';
import {
  CreateLabDocument,
  DeleteLabDocument,
  LabInstanceDocument,
  LabInstancesDocument,
  MyLabInstancesDocument,
  RenewVncAccessDocument,
  StartLabDocument,
  StopLabInstanceDocument,
} from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, TEST_SECRET, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';
import { contractVmis } from './support/contract-objects.js';

const MANAGED = 'app.kubernetes.io/managed-by';

/** What the API server and KubeVirt add to what the server sent (KubeVirt: its finalizer and observed-version annotations). */
const SERVER_FIELDS = ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'finalizers', 'annotations'];

function stripServerFields(obj: { metadata: Record<string, unknown>; status?: unknown } & Record<string, unknown>) {
  const metadata = Object.fromEntries(Object.entries(obj.metadata).filter(([k]) => !SERVER_FIELDS.includes(k)));
  const rest = Object.fromEntries(Object.entries(obj).filter(([k]) => k !== 'status' && k !== 'metadata'));
  return { ...rest, metadata };
}

describe.each(ENGINES)('lab instances on %s', (engine) => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let trusted: TestUser;
  let plain: TestUser;
  let threeVmLab: { id: string; namespacePrefix: string };

  beforeAll(async () => {
    server = await startTestServer(engine, {
      VNC_TOKEN_TTL_SECONDS: '900',
      LAB_VNC_PROTOCOL: 'https',
      LAB_VNC_HOST: 'labs.example.org',
      LAB_VNC_PORT: '443',
      LAB_VNC_PATH: 'lab_vnc_prefix/lab_vnc.html',
      VNC_CONSOLE: 'labvnc',
      WS_PROXY_HOST: 'ws.example.org',
      WS_PROXY_PORT: '8443',
      WS_PROXY_PATH_PREFIX: 'ws_proxy',
      KUBERNETES_REQUEST_TIMEOUT_SECONDS: '3', // short, for the unanswered-request test; 20 concurrent starts fit in it on a loaded machine
      SIMULATED_VM_READY_SECONDS: '60',
    });
    cluster = server.app.simulated!;
    [admin, trusted, plain] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true }), createUser(server)]);
    threeVmLab = (await createLabWithVms(admin.client, ['gateway', 'web-1', 'db.internal'], { instanceLifetimeMinutes: 90 })).lab;
  });
  afterAll(() => server?.stop());

  const namespacesOf = (instanceId: string) =>
    cluster.list('namespaces').filter((ns) => ns.metadata.labels?.['lab-orchestrator.io/instance'] === instanceId);

  it('creates exactly the contract objects for a lab of three VMs', async () => {
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
    const instance = startLab.labInstance;
    const ns = `${threeVmLab.namespacePrefix}-${trusted.user.id}-${instance.id}`;
    expect(instance).toMatchObject({ namespace: ns, status: 'STARTING', statusMessage: null, user: { id: String(trusted.user.id) } });
    expect(instance.vms.map((vm) => [vm.name, vm.phase, vm.ready])).toEqual([
      ['gateway', 'PENDING', false],
      ['web-1', 'PENDING', false],
      ['db.internal', 'PENDING', false],
    ]);
    const expiresIn = Date.parse(instance.expiresAt!) - Date.parse(instance.createdAt);
    expect(Math.abs(expiresIn - 90 * 60_000)).toBeLessThan(2000);

    const labels = {
      [MANAGED]: 'lab-orchestrator',
      'lab-orchestrator.io/deployment': 'default',
      'lab-orchestrator.io/instance': instance.id,
      'lab-orchestrator.io/lab': threeVmLab.id,
      'lab-orchestrator.io/user': String(trusted.user.id),
    };
    expect(stripServerFields(cluster.get('namespaces', undefined, ns)!)).toEqual({
      apiVersion: 'v1',
      kind: 'Namespace',
      // The API server labels every namespace with its name (as the real one does: lab-instance.real.test.ts).
      metadata: { name: ns, labels: { ...labels, 'kubernetes.io/metadata.name': ns } },
      spec: expect.anything(),
    });
    expect(stripServerFields(cluster.get('networkpolicies', ns, 'allow-same-namespace')!)).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-same-namespace', namespace: ns, labels },
      spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
    });
    const vmis = cluster.list('virtualmachineinstances', ns).map(stripServerFields);
    expect(vmis.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)))).toEqual(contractVmis(ns, labels));
  });

  it('hands out a VNC token and URL that the original proxy and LabVNC accept', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
    const { vncAccess, labInstance } = startLab;
    const { payload, protectedHeader } = await jwtVerify(vncAccess.token, new TextEncoder().encode(TEST_SECRET), { algorithms: ['HS256'] });
    expect(protectedHeader).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(Object.keys(payload).sort()).toEqual(['exp', 'iat', 'id', 'lab_instance']);
    expect(payload).toMatchObject({
      id: trusted.user.id,
      lab_instance: {
        lab_id: Number(threeVmLab.id),
        lab_instance_id: Number(labInstance.id),
        namespace_name: labInstance.namespace,
        allowed_vmi_names: ['gateway', 'web-1', 'db.internal'],
      },
    });
    expect(payload.exp! - payload.iat!).toBe(900);
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(Date.parse(vncAccess.expiresAt)).toBe(payload.exp! * 1000);
    expect(vncAccess.allowedVms).toEqual(['gateway', 'web-1', 'db.internal']);

    const url = new URL(vncAccess.url);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe('https://labs.example.org/lab_vnc_prefix/lab_vnc.html');
    expect(url.port).toBe(''); // 443 is https's default and URL drops it; the raw text keeps it:
    expect(vncAccess.url.startsWith('https://labs.example.org:443/lab_vnc_prefix/lab_vnc.html?')).toBe(true);
    expect([...url.searchParams.keys()]).toEqual(['host', 'port', 'path', 'allowed_vmis', 'autoconnect']);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      host: 'ws.example.org',
      port: '8443',
      path: `ws_proxy/${vncAccess.token}/gateway`,
      allowed_vmis: 'gateway,web-1,db.internal',
      autoconnect: '1',
    });
  });

  it('renews VNC access for the owner and for an admin, and hides it from others', async () => {
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
    const id = startLab.labInstance.id;
    const own = (await trusted.client.ok(RenewVncAccessDocument, { labInstanceId: id })).renewVncAccess;
    expect(own.allowedVms).toEqual(['gateway', 'web-1', 'db.internal']);
    const byAdmin = (await admin.client.ok(RenewVncAccessDocument, { labInstanceId: id })).renewVncAccess;
    const { payload } = await jwtVerify(byAdmin.token, new TextEncoder().encode(TEST_SECRET));
    expect(payload).toMatchObject({ id: admin.user.id, lab_instance: { lab_instance_id: Number(id) } });
    await plain.client.fails(RenewVncAccessDocument, { labInstanceId: id }, 'NOT_FOUND');
    await server.client().fails(RenewVncAccessDocument, { labInstanceId: id }, 'UNAUTHENTICATED');
  });

  it('lets only trusted users and admins start labs', async () => {
    await server.client().fails(StartLabDocument, { labId: threeVmLab.id }, 'UNAUTHENTICATED');
    await plain.client.fails(StartLabDocument, { labId: threeVmLab.id }, 'FORBIDDEN');
    const { startLab } = await admin.client.ok(StartLabDocument, { labId: threeVmLab.id });
    expect(startLab.labInstance.user.id).toBe(String(admin.user.id));
    await trusted.client.fails(StartLabDocument, { labId: '987654' }, 'NOT_FOUND');
  });

  it('refuses a lab without VMs before creating anything', async () => {
    const { createLab } = await admin.client.ok(CreateLabDocument, {
      input: { name: `empty-${engine}`, namespacePrefix: `empty-${engine}`, description: 'no VMs' },
    });
    const before = cluster.requestCounts()['create namespaces'] ?? 0;
    await trusted.client.fails(StartLabDocument, { labId: createLab.id }, 'BAD_USER_INPUT', 'labId');
    expect(cluster.requestCounts()['create namespaces'] ?? 0).toBe(before);
  });

  it('shows instances to their owner and to admins only', async () => {
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
    const id = startLab.labInstance.id;
    expect((await trusted.client.ok(LabInstanceDocument, { id })).labInstance?.id).toBe(id);
    expect((await admin.client.ok(LabInstanceDocument, { id })).labInstance?.id).toBe(id);
    await plain.client.fails(LabInstanceDocument, { id }, 'NOT_FOUND');
    await server.client().fails(LabInstanceDocument, { id }, 'UNAUTHENTICATED');

    const mine = (await trusted.client.ok(LabInstancesDocument, { first: 100 })).labInstances;
    expect(mine.edges.every((e) => e.node.user.id === String(trusted.user.id))).toBe(true);
    expect(mine.edges.map((e) => e.node.id)).toContain(id);
    const others = (await plain.client.ok(LabInstancesDocument, { first: 100 })).labInstances;
    expect(others.totalCount).toBe(0);
    const filtered = (await admin.client.ok(LabInstancesDocument, { first: 100, filter: { userId: String(trusted.user.id), status: ['STARTING'] } }))
      .labInstances;
    expect(filtered.edges.length).toBeGreaterThan(0);
    expect(filtered.edges.every((e) => e.node.user.id === String(trusted.user.id) && e.node.status === 'STARTING')).toBe(true);
    const viaMe = (await trusted.client.ok(MyLabInstancesDocument)).me!.labInstances;
    expect(viaMe.edges.map((e) => e.node.id)).toContain(id);
  });

  it.each([
    ['the namespace', { verb: 'create', resource: 'namespaces' }],
    ['the network policy', { verb: 'create', resource: 'networkpolicies' }],
    ['the 1st VMI', { verb: 'create', resource: 'virtualmachineinstances', nth: 1 }],
    ['the 2nd VMI', { verb: 'create', resource: 'virtualmachineinstances', nth: 2 }],
    ['the 3rd VMI', { verb: 'create', resource: 'virtualmachineinstances', nth: 3 }],
  ] as const)('rolls everything back when creating %s fails', async (_what, match) => {
    cluster.faults.failRequest({ ...match }, 500);
    const error = await trusted.client.fails(StartLabDocument, { labId: threeVmLab.id }, 'KUBERNETES_ERROR');
    expect(error.message).toMatch(/Could not start the lab/);
    const { labInstances } = await trusted.client.ok(LabInstancesDocument, { first: 1 });
    const failed = labInstances.edges[0].node;
    expect(failed.status).toBe('FAILED');
    expect(failed.statusMessage).toMatch(/Start failed/);
    await eventually(() => expect(namespacesOf(failed.id)).toEqual([]));
    expect(cluster.list('virtualmachineinstances', failed.namespace)).toEqual([]);
    expect(cluster.list('pods', failed.namespace)).toEqual([]);
    cluster.faults.clear();
  });

  it('answers KUBERNETES_ERROR within the request timeout when the cluster does not answer', async () => {
    cluster.faults.failRequest({ verb: 'create', resource: 'namespaces' }, 'timeout');
    const started = Date.now();
    await trusted.client.fails(StartLabDocument, { labId: threeVmLab.id }, 'KUBERNETES_ERROR');
    expect(Date.now() - started).toBeLessThan(5000);
    cluster.faults.clear();
  });

  it('answers KUBERNETES_ERROR when the cluster is unreachable, leaving no instance half-started', async () => {
    cluster.faults.down('reset');
    try {
      await trusted.client.fails(StartLabDocument, { labId: threeVmLab.id }, 'KUBERNETES_ERROR');
    } finally {
      cluster.faults.up();
    }
    const failed = (await trusted.client.ok(LabInstancesDocument, { first: 1 })).labInstances.edges[0].node;
    expect(failed.status).toBe('FAILED');
    expect(namespacesOf(failed.id)).toEqual([]);
  });

  it('starts 20 labs at once into 20 distinct namespaces', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => trusted.client.ok(StartLabDocument, { labId: threeVmLab.id })));
    const namespaces = results.map((r) => r.startLab.labInstance.namespace);
    expect(new Set(namespaces).size).toBe(20);
    for (const ns of namespaces) {
      expect(cluster.get('namespaces', undefined, ns)).toBeDefined();
      expect(cluster.list('virtualmachineinstances', ns)).toHaveLength(3);
    }
  });

  it('stops an instance for its owner or an admin, idempotently, and hides it from others', async () => {
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
    const { id, namespace } = startLab.labInstance;
    await plain.client.fails(StopLabInstanceDocument, { id }, 'NOT_FOUND');
    await server.client().fails(StopLabInstanceDocument, { id }, 'UNAUTHENTICATED');
    const stopped = (await trusted.client.ok(StopLabInstanceDocument, { id })).stopLabInstance;
    expect(['STOPPING', 'STOPPED']).toContain(stopped.status);
    await eventually(() => expect(cluster.get('namespaces', undefined, namespace)).toBeUndefined());
    const again = (await admin.client.ok(StopLabInstanceDocument, { id })).stopLabInstance;
    expect(again.status).toBe('STOPPED');
    expect(again.stoppedAt).not.toBeNull();
  });

  it('treats a namespace deleted behind its back as already stopped', async () => {
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
    cluster.deleteObject('namespaces', undefined, startLab.labInstance.namespace);
    await eventually(() => expect(cluster.get('namespaces', undefined, startLab.labInstance.namespace)).toBeUndefined());
    const { stopLabInstance } = await trusted.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
    expect(stopLabInstance.status).toBe('STOPPED');
  });

  it('refuses to delete a lab while it has instances that are not stopped', async () => {
    const { lab } = await createLabWithVms(admin.client, ['solo']);
    const { startLab } = await trusted.client.ok(StartLabDocument, { labId: lab.id });
    await admin.client.fails(DeleteLabDocument, { id: lab.id }, 'CONFLICT');
    await trusted.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
    await eventually(async () => {
      const { stopLabInstance } = await trusted.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
      expect(stopLabInstance.status).toBe('STOPPED');
    });
    expect((await admin.client.ok(DeleteLabDocument, { id: lab.id })).deleteLab).toBe(true);
  });
});
