/**
 * Lab instances on a REAL Kubernetes control plane: kube-apiserver, etcd and kube-controller-manager of
 * Kubernetes 1.36 with KubeVirt's real VMI CRD (test/support/control-plane.ts), deploy/ applied for real.
 * The server under test runs with KUBERNETES_MODE=kubeconfig and the token of deploy/'s service
 * account, so a verb missing from deploy/rbac.yaml fails here. KubeVirt's and the kubelet's part is the
 * simulated cluster's logic run as a controller against that API server (test/support/kubevirt-controller.ts).
 *
 * The shared control plane (and its controller) comes from the global setup; the fault tests start a
 * second one of their own, so that restarting its API server or compacting its etcd disturbs no other
 * file. A deleted namespace takes the real namespace controller about ten seconds to remove, so the
 * tests that stop instances take that long.
 *
 * Skipped when TEST_CLUSTERS does not name `real`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LabInstance } from '../src/entities/index.js';
import type { Logger } from '../src/logger.js';
import {
  LabInstancesDocument,
  LabInstanceStatusDocument,
  StartLabDocument,
  StopLabInstanceDocument,
  type LabInstanceStatusSubscription,
} from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { startControlPlane, type ControlPlane } from './support/control-plane.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { installDeploy, realEnv, serviceAccountKubeconfig, writeTokenKubeconfig } from './support/global-setup.js';
import { KubeApi, KubeVirtController } from './support/kubevirt-controller.js';
import { CLUSTERS, ENGINES, startTestServer, type TestServer } from './support/server.js';
import { graphqlWsClient, subscribeGraphqlWs, type Received } from './support/subscriptions.js';
import { eventually } from './support/wait.js';
import { contractVmis } from './support/contract-objects.js';

const MANAGED = 'app.kubernetes.io/managed-by';
const VMIS = (ns: string) => `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachineinstances`;
/** The end of a stop: the real namespace controller removes a namespace in about ten seconds. */
const GONE_MS = 90_000;

/**
 * What the API server (and KubeVirt: its finalizer and observed-version annotations) adds to what the
 * server sent; the real API server also labels every namespace with its name.
 */
const SERVER_FIELDS = ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'finalizers', 'annotations'];
const SERVER_LABELS = ['kubernetes.io/metadata.name'];

type Obj = { metadata: Record<string, unknown> & { labels?: Record<string, string> }; status?: unknown } & Record<string, unknown>;

function stripServerFields(obj: Obj) {
  const metadata = Object.fromEntries(Object.entries(obj.metadata).filter(([k]) => !SERVER_FIELDS.includes(k)));
  if (obj.metadata.labels) metadata.labels = Object.fromEntries(Object.entries(obj.metadata.labels).filter(([k]) => !SERVER_LABELS.includes(k)));
  const rest = Object.fromEntries(Object.entries(obj).filter(([k]) => k !== 'status' && k !== 'metadata'));
  return { ...rest, metadata };
}

const statuses = (events: { status: string }[]) => events.map((e) => e.status).filter((s, i, all) => s !== all[i - 1]);
const one = (r: Received<LabInstanceStatusSubscription>) => r.events.map((e) => e.labInstanceStatus);


/** A logger that keeps what the server logs, for asserting on its recoveries. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = {
    lines,
    debug: () => {},
    info: (msg: string, fields?: Record<string, unknown>) => void lines.push(`info ${msg} ${JSON.stringify(fields ?? {})}`),
    warn: (msg: string, fields?: Record<string, unknown>) => void lines.push(`warn ${msg} ${JSON.stringify(fields ?? {})}`),
    error: (msg: string, fields?: Record<string, unknown>) => void lines.push(`error ${msg} ${JSON.stringify(fields ?? {})}`),
    child: () => logger,
  };
  return logger;
}

async function waitReady(server: TestServer) {
  await eventually(async () => expect((await fetch(server.url.replace('/graphql', '/readyz'))).status).toBe(200), 30_000, 100);
}

/** A namespace and everything in it are gone: the namespace answers 404, and no VMI or pod of it is left. */
async function expectGone(admin: KubeApi, namespace: string) {
  await eventually(
    async () => {
      expect((await admin.request('GET', `/api/v1/namespaces/${namespace}`)).status).toBe(404);
    },
    GONE_MS,
    250,
  );
  expect((await admin.call('GET', VMIS(namespace))).body.items).toEqual([]);
  expect((await admin.call('GET', `/api/v1/namespaces/${namespace}/pods`)).body.items).toEqual([]);
  expect((await admin.call('GET', `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies`)).body.items).toEqual([]);
}

/**
 * A TCP proxy between the server and the API server (TLS passes through it untouched): `reset()` ends
 * every open connection with a TCP RST; `stall()` keeps connections open but forwards nothing either way
 * (new ones included) until `resume()`, which delivers what was held.
 */
async function startProxy(target: string) {
  const { hostname, port } = new URL(target);
  type Pair = { client: Socket; upstream: Socket; held: Array<[Socket, Buffer]> };
  const pairs = new Set<Pair>();
  let stalled = false;
  let connections = 0;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect(Number(port), hostname);
    const pair: Pair = { client, upstream, held: [] };
    pairs.add(pair);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (stalled) pair.held.push([to, chunk]);
      else if (!to.destroyed) to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const proxyPort = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `https://127.0.0.1:${proxyPort}`,
    connections: () => connections,
    reset() {
      for (const { client, upstream } of [...pairs]) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
    },
    stall() {
      stalled = true;
    },
    resume() {
      stalled = false;
      for (const pair of pairs) {
        for (const [to, chunk] of pair.held.splice(0)) if (!to.destroyed) to.write(chunk);
      }
    },
    async close() {
      this.reset();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.skipIf(!CLUSTERS.includes('real'))('lab instances on a real control plane', () => {
  let admin: KubeApi;
  let dir: string;

  beforeAll(() => {
    admin = KubeApi.fromKubeconfig(inject('realClusterAdminKubeconfig'));
    dir = mkdtempSync(join(tmpdir(), 'lo-real-'));
  });
  afterAll(() => {
    admin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("lets deploy/'s service account create and delete only namespaces labelled as the server's (namespace-guard.yaml)", async () => {
    const sa = KubeApi.fromKubeconfig(inject('realClusterKubeconfig'));
    try {
      const name = `guard-${randomUUID().slice(0, 8)}`;
      const refused = await sa.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      expect(refused.status, refused.text).toBe(403);
      expect(refused.body.message).toContain('lab-orchestrator may only create or delete namespaces labelled');
      await admin.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
      const notDeleted = await sa.request('DELETE', `/api/v1/namespaces/${name}`);
      expect(notDeleted.status, notDeleted.text).toBe(403);
      await admin.call('DELETE', `/api/v1/namespaces/${name}`);
      // RBAC: nothing beyond deploy/rbac.yaml (no secrets, no pod writes).
      expect((await sa.request('GET', '/api/v1/namespaces/lab-orchestrator/secrets')).status).toBe(403);
      expect((await sa.request('POST', `/api/v1/namespaces/lab-orchestrator/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } })).status).toBe(403);
    } finally {
      sa.close();
    }
  });

  describe.each(ENGINES)('on %s', (engine) => {
    let server: TestServer;
    let adminUser: TestUser;
    let trusted: TestUser;
    let threeVmLab: { id: string; namespacePrefix: string };

    beforeAll(async () => {
      server = await startTestServer(engine, realEnv(inject('realClusterKubeconfig')));
      [adminUser, trusted] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
      threeVmLab = (await createLabWithVms(adminUser.client, ['gateway', 'web-1', 'db.internal'])).lab;
      await waitReady(server);
    });
    afterAll(() => server?.stop());

    it('creates exactly the contract objects for a lab of three VMs, as the API server stores them', async () => {
      const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
      const instance = startLab.labInstance;
      const ns = `${threeVmLab.namespacePrefix}-${trusted.user.id}-${instance.id}`;
      expect(instance).toMatchObject({ namespace: ns, status: 'STARTING', statusMessage: null });
      const labels = {
        [MANAGED]: 'lab-orchestrator',
        'lab-orchestrator.io/deployment': server.config.deploymentId,
        'lab-orchestrator.io/instance': instance.id,
        'lab-orchestrator.io/lab': threeVmLab.id,
        'lab-orchestrator.io/user': String(trusted.user.id),
      };
      const namespace = (await admin.call('GET', `/api/v1/namespaces/${ns}`)).body as Obj;
      expect(namespace.metadata.labels?.['kubernetes.io/metadata.name']).toBe(ns);
      expect(stripServerFields(namespace)).toEqual({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels },
        spec: { finalizers: ['kubernetes'] },
      });
      const policy = (await admin.call('GET', `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/allow-same-namespace`)).body as Obj;
      expect(stripServerFields(policy)).toEqual({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'allow-same-namespace', namespace: ns, labels },
        spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: {} }] }] },
      });
      const list = (await admin.call('GET', VMIS(ns))).body as { items: Obj[] };
      // A list's items carry no apiVersion and kind: read each VMI on its own.
      const vmis = await Promise.all(list.items.map(async (v) => (await admin.call('GET', `${VMIS(ns)}/${String(v.metadata.name)}`)).body as Obj));
      expect(vmis.map(stripServerFields).sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)))).toEqual(contractVmis(ns, labels));
      await trusted.client.ok(StopLabInstanceDocument, { id: instance.id });
    });

    it('follows a start to READY and a stop to STOPPED once the namespace controller has removed the namespace', { timeout: 150_000 }, async () => {
      const { startLab } = await trusted.client.ok(StartLabDocument, { labId: threeVmLab.id });
      const { id, namespace } = startLab.labInstance;
      const client = graphqlWsClient(server.wsUrl, trusted.token);
      const sub = subscribeGraphqlWs(client, LabInstanceStatusDocument, { id });
      try {
        await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'), 60_000);
        const ready = one(sub).find((e) => e.status === 'READY')!;
        expect(ready.vms.map((vm) => [vm.name, vm.phase, vm.ready])).toEqual([
          ['gateway', 'RUNNING', true],
          ['web-1', 'RUNNING', true],
          ['db.internal', 'RUNNING', true],
        ]);
        expect(ready.vms.every((vm) => vm.podName?.startsWith(`virt-launcher-${vm.name}-`))).toBe(true);
        // What the server read is what the cluster holds: each VMI Running with Ready=True, its pod Ready.
        const vmis = (await admin.call('GET', VMIS(namespace))).body.items as Obj[];
        for (const vmi of vmis) {
          expect(vmi.status).toMatchObject({ phase: 'Running', conditions: expect.arrayContaining([expect.objectContaining({ type: 'Ready', status: 'True' })]) });
          expect(vmi.metadata.finalizers).toEqual(['kubevirt.io/foregroundDeleteVirtualMachine']);
        }

        const stopped = (await trusted.client.ok(StopLabInstanceDocument, { id })).stopLabInstance;
        expect(stopped.status).toBe('STOPPING');
        // The namespace is Terminating; KubeVirt's finalizer holds each VMI until its pod is gone.
        const terminating = (await admin.call('GET', `/api/v1/namespaces/${namespace}`)).body;
        expect(terminating.status.phase).toBe('Terminating');
        await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'), GONE_MS);
        expect(statuses(one(sub))).toEqual(['STARTING', 'READY', 'STOPPING', 'STOPPED']);
        expect((await admin.request('GET', `/api/v1/namespaces/${namespace}`)).status).toBe(404);
        await expectGone(admin, namespace);
      } finally {
        sub.close();
        await client.dispose();
      }
    });

    it.each([
      ['may create namespaces but not VMIs', 'limited', /cannot create resource \\?"virtualmachineinstances\\?"/],
      ['has no rights at all', 'none', /cannot create resource \\?"namespaces\\?"/],
    ] as const)('rolls a start back when its token %s (403): KUBERNETES_ERROR, no namespace left', { timeout: 120_000 }, async (_what, kind, message) => {
      const name = `lo-${kind}-${engine}-${randomUUID().slice(0, 6)}`;
      const rules = kind === 'none' ? undefined : [
        { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
        { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list', 'create', 'delete'] },
        { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      ];
      const kubeconfig = await serviceAccountKubeconfig(admin, name, rules, dir);
      const limited = await startTestServer(engine, realEnv(kubeconfig));
      try {
        const [boss, user] = await Promise.all([createAdmin(limited), createUser(limited, { isTrusted: true })]);
        const lab = (await createLabWithVms(boss.client, ['gateway', 'web-1'])).lab;
        const error = await user.client.fails(StartLabDocument, { labId: lab.id }, 'KUBERNETES_ERROR');
        expect(error.message).toMatch(/Could not start the lab/);
        expect(error.message).toMatch(message);
        const failed = (await user.client.ok(LabInstancesDocument, { first: 1 })).labInstances.edges[0].node;
        expect(failed.status).toBe('FAILED');
        expect(failed.statusMessage).toMatch(/Start failed/);
        await expectGone(admin, failed.namespace);
      } finally {
        await limited.stop();
      }
    });

    it('starts 10 labs at once: all READY in 10 namespaces, all stopped with nothing left', { timeout: 240_000 }, async () => {
      const results = await Promise.all(Array.from({ length: 10 }, () => trusted.client.ok(StartLabDocument, { labId: threeVmLab.id })));
      const ids = results.map((r) => r.startLab.labInstance.id);
      const namespaces = results.map((r) => r.startLab.labInstance.namespace);
      expect(new Set(namespaces).size).toBe(10);
      await eventually(
        async () => {
          const rows = await server.app.deps.orm.em.fork().find(LabInstance, { id: { $in: ids.map(Number) } });
          expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'READY'));
        },
        120_000,
        250,
      );
      const selector = encodeURIComponent(`${MANAGED}=lab-orchestrator,lab-orchestrator.io/lab=${threeVmLab.id}`);
      const listed = (await admin.call('GET', `/api/v1/namespaces?labelSelector=${selector}`)).body.items as Obj[];
      const mine = listed.map((ns) => String(ns.metadata.name)).filter((n) => namespaces.includes(n));
      expect(mine.sort()).toEqual([...namespaces].sort());
      for (const ns of namespaces) expect((await admin.call('GET', VMIS(ns))).body.items).toHaveLength(3);

      await Promise.all(ids.map((id) => trusted.client.ok(StopLabInstanceDocument, { id })));
      await eventually(
        async () => {
          const rows = await server.app.deps.orm.em.fork().find(LabInstance, { id: { $in: ids.map(Number) } });
          expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'STOPPED'));
        },
        GONE_MS * 2,
        500,
      );
      for (const ns of namespaces) await expectGone(admin, ns);
    });
  });

  /**
   * Faults on the real thing, on a control plane of this file's own (its API server restarted, its etcd
   * compacted), with a TCP proxy between the server and the API server.
   */
  describe('faults', () => {
    let plane: ControlPlane;
    let controller: KubeVirtController;
    let proxy: Awaited<ReturnType<typeof startProxy>>;
    let proxied: string;
    let api: KubeApi;

    beforeAll(async () => {
      plane = await startControlPlane();
      const { token } = await installDeploy(plane);
      controller = new KubeVirtController({ vmReadySeconds: 2, podTerminationMs: 200 });
      await controller.start(plane.kubeconfigPath);
      proxy = await startProxy(plane.server);
      proxied = join(plane.dir, 'proxied.kubeconfig');
      await writeTokenKubeconfig(proxied, proxy.url, plane.tls.ca, token, 'lab-orchestrator');
      api = KubeApi.fromKubeconfig(plane.kubeconfigPath);
    }, 180_000);

    afterAll(async () => {
      api?.close();
      await proxy?.close();
      await controller?.stop();
      await plane?.stop();
      expect(controller?.problems ?? []).toEqual([]);
    }, 60_000);

    describe.each(ENGINES)('on %s', (engine) => {
      let server: TestServer;
      let logger: ReturnType<typeof recordingLogger>;
      let owner: TestUser;
      let labId: string;

      beforeAll(async () => {
        logger = recordingLogger();
        server = await startTestServer(
          engine,
          realEnv(proxied, { WATCH_STALL_SECONDS: '3', KUBERNETES_REQUEST_TIMEOUT_SECONDS: '3', STATUS_RESYNC_SECONDS: '0.5' }),
          undefined,
          { logger },
        );
        const boss = await createAdmin(server);
        owner = await createUser(server, { isTrusted: true });
        labId = (await createLabWithVms(boss.client, ['router', 'client'])).lab.id;
        await waitReady(server);
      });
      afterAll(() => server?.stop());

      async function startAndFollow() {
        const { startLab } = await owner.client.ok(StartLabDocument, { labId });
        const client = graphqlWsClient(server.wsUrl, owner.token);
        const sub = subscribeGraphqlWs(client, LabInstanceStatusDocument, { id: startLab.labInstance.id });
        await sub.until((e) => e.length >= 1);
        return { id: startLab.labInstance.id, namespace: startLab.labInstance.namespace, sub, client };
      }

      async function allVmisReady(namespace: string) {
        await eventually(
          async () => {
            const items = (await api.call('GET', VMIS(namespace))).body.items as Obj[];
            expect(items).toHaveLength(2);
            for (const vmi of items) {
              const status = vmi.status as { phase?: string; conditions?: Array<{ type: string; status: string }> };
              expect(status.phase).toBe('Running');
              expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
            }
          },
          30_000,
          100,
        );
      }

      /** Stops the instance and checks the whole story: every status once, in order, and nothing left in the cluster. */
      async function stopAndCheck(started: Awaited<ReturnType<typeof startAndFollow>>) {
        const { id, namespace, sub, client } = started;
        try {
          await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'), 60_000);
          await owner.client.ok(StopLabInstanceDocument, { id });
          await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'), GONE_MS);
          expect(statuses(one(sub))).toEqual(['STARTING', 'READY', 'STOPPING', 'STOPPED']);
          await expectGone(api, namespace);
        } finally {
          sub.close();
          await client.dispose();
        }
      }

      it('relists after a real 410: the watches resume from a compacted resourceVersion', { timeout: 150_000 }, async () => {
        const started = await startAndFollow();
        const relistsBefore = logger.lines.filter((l) => l.includes('410 Gone')).length;
        proxy.stall();
        try {
          await allVmisReady(started.namespace); // the server sees none of it
          await plane.compact();
        } finally {
          proxy.reset();
          proxy.resume();
        }
        await stopAndCheck(started);
        expect(logger.lines.filter((l) => l.includes('410 Gone')).length).toBeGreaterThan(relistsBefore);
      });

      it('recovers when kube-apiserver restarts under its open watches', { timeout: 180_000 }, async () => {
        const started = await startAndFollow();
        const failuresBefore = logger.lines.filter((l) => l.includes('watch failed')).length;
        await plane.restartApiServer();
        await stopAndCheck(started);
        expect(logger.lines.filter((l) => l.includes('watch failed')).length).toBeGreaterThan(failuresBefore);
      });

      it('recovers from connections reset and stalled between the server and the API server', { timeout: 180_000 }, async () => {
        const started = await startAndFollow();
        for (let i = 0; i < 5; i++) {
          proxy.reset();
          await new Promise((r) => setTimeout(r, 200));
        }
        const stallsBefore = logger.lines.filter((l) => l.includes('watch stalled')).length;
        proxy.stall();
        await new Promise((r) => setTimeout(r, 4500)); // longer than WATCH_STALL_SECONDS
        proxy.resume();
        expect(logger.lines.filter((l) => l.includes('watch stalled')).length).toBeGreaterThan(stallsBefore);
        await stopAndCheck(started);
      });

      it('fails a start whose requests stall, and deletes the namespace that arrives late', { timeout: 150_000 }, async () => {
        proxy.stall();
        let failed: { status: string; namespace: string };
        try {
          await owner.client.fails(StartLabDocument, { labId }, 'KUBERNETES_ERROR');
          failed = (await owner.client.ok(LabInstancesDocument, { first: 1 })).labInstances.edges[0].node;
        } finally {
          proxy.resume();
        }
        expect(failed.status).toBe('FAILED');
        // Held requests arrive now (the namespace may be created after all): the reconciler deletes it.
        await expectGone(api, failed.namespace);
      });
    });
  });
});
