/**
 * The simulated cluster agrees with a real API server. The same requests go to both: the simulated
 * cluster, and the shared real control plane of the global setup (kube-apiserver 1.36 with KubeVirt's
 * VMI CRD, KubeVirt and the kubelet played by test/support/kubevirt-controller.ts). Their answers are
 * compared whole, after what differs by nature is blanked out (uids, resourceVersions, times, generated
 * name suffixes, addresses, container IDs). Each difference found here was fixed in src/simulated and is
 * listed in docs/simulated-cluster.md.
 *
 * What the harness itself does differently is left out, and said where: the real control plane has no
 * KubeVirt webhooks (the controller adds the finalizer and the Pending status just after the create), and
 * its watch cache is off (no bookmarks; a 410's wording is etcd's).
 *
 * Skipped when TEST_CLUSTERS does not name `real`.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildNamespace, buildNetworkPolicy, buildVirtualMachineInstance } from '../src/k8s/templates/instance.js';
import { startSimulatedCluster, type SimulatedCluster } from '../src/simulated/index.js';
import { buildControlPlane } from './support/control-plane.js';
import { KubeApi, type ApiAnswer } from './support/kubevirt-controller.js';
import { CLUSTERS } from './support/server.js';
import { eventually } from './support/wait.js';

const UID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** What differs by nature between two clusters, blanked out. */
function normalise(value: unknown): unknown {
  return JSON.parse(
    JSON.stringify(value, (key, v: unknown) => {
      if (key === 'uid' || key === 'resourceVersion' || key === 'managedFields') return undefined;
      if (typeof v === 'string') {
        return v
          .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
          .replace(UID, '<uid>')
          .replace(/(virt-launcher-[a-z0-9.-]+-)[a-z0-9]{5}\b/g, '$1<suffix>')
          .replace(/sha256:[0-9a-f]{64}/g, 'sha256:<digest>')
          .replace(/containerd:\/\/[0-9a-f]{64}/g, 'containerd://<id>')
          .replace(/\b10\.244\.\d+\.\d+\b/g, '<pod-ip>')
          .replace(/^02(:[0-9a-f]{2}){5}$/, '<mac>')
          .replace(/\b(ns|sim|real)-parity-[0-9a-f]{6}\b/g, '<namespace>');
      }
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        return Object.fromEntries(
          Object.entries(v).map(([k, x]) => [k.replace(UID, '<uid>').replace(/\b(sim|real)-parity-[0-9a-f]{6}\b/g, '<namespace>'), x]),
        );
      }
      return v;
    }),
  );
}

/** The paths where two normalised answers differ, each with both values: [] when they agree. */
function differences(simulated: unknown, real: unknown, path = ''): string[] {
  if (JSON.stringify(simulated) === JSON.stringify(real)) return [];
  if (simulated && real && typeof simulated === 'object' && typeof real === 'object' && Array.isArray(simulated) === Array.isArray(real)) {
    const a = simulated as Record<string, unknown>;
    const b = real as Record<string, unknown>;
    if (!(Array.isArray(a) && (a as unknown[]).length !== (b as unknown as unknown[]).length)) {
      return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => differences(a[k], b[k], `${path}.${k}`));
    }
  }
  return [`${path || '.'}: simulated ${JSON.stringify(simulated)?.slice(0, 400)} | real ${JSON.stringify(real)?.slice(0, 400)}`];
}

const answer = (a: ApiAnswer) => normalise({ code: a.status, body: a.body });

describe.skipIf(!CLUSTERS.includes('real'))('the simulated cluster agrees with a real API server', () => {
  let sim: SimulatedCluster;
  let simApi: KubeApi;
  let real: KubeApi;
  const suffix = randomUUID().slice(0, 6);
  const ns = { sim: `sim-parity-${suffix}`, real: `real-parity-${suffix}` };
  const spec = (cluster: 'sim' | 'real') => ({ namespace: ns[cluster], instanceId: 1, labId: 2, userId: 3, vms: [] });
  const vm = { name: 'vm-1', image: 'quay.io/containerdisks/fedora:41', cpuCores: 2, memory: '1Gi' };

  /** The same request to both; `path` names the namespace as NS. */
  async function both(method: string, path: string, body?: (cluster: 'sim' | 'real') => unknown) {
    const [s, r] = await Promise.all(
      (['sim', 'real'] as const).map((c) => (c === 'sim' ? simApi : real).request(method, path.replace('NS', ns[c]), body?.(c))),
    );
    return { sim: s, real: r };
  }

  function expectSame(pair: { sim: ApiAnswer; real: ApiAnswer }) {
    expect(differences(answer(pair.sim), answer(pair.real))).toEqual([]);
  }

  let dir: string;
  let kubectl: (cluster: 'sim' | 'real', ...args: string[]) => Promise<string[][]>;

  beforeAll(async () => {
    // Slow enough that a deleted namespace stays Terminating while both are compared.
    sim = await startSimulatedCluster({ vmReadySeconds: 0.5, podTerminationMs: 200, namespaceTerminationMs: 10_000 });
    simApi = new KubeApi({ server: sim.url, ca: '' });
    real = KubeApi.fromKubeconfig(inject('realClusterAdminKubeconfig'));
    // The kubectl of the control plane's release (from the build's cache), for both.
    const bin = join(await buildControlPlane({ log: () => {} }), 'kubectl');
    dir = mkdtempSync(join(tmpdir(), 'lo-parity-'));
    const simConfig = join(dir, 'sim.kubeconfig');
    writeFileSync(simConfig, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', clusters: [{ name: 's', cluster: { server: sim.url } }], users: [{ name: 'u', user: {} }],
      contexts: [{ name: 's', context: { cluster: 's', user: 'u' } }], 'current-context': 's',
    }));
    const configs = { sim: simConfig, real: inject('realClusterAdminKubeconfig') };
    // Output as rows of cells, with what differs by nature blanked out (ages, name suffixes, the namespace).
    kubectl = async (cluster, ...args) => {
      const { stdout } = await promisify(execFile)(bin, ['--kubeconfig', configs[cluster], '--cache-dir', join(dir, cluster), ...args.map((a) => a.replace('NS', ns[cluster]))]);
      return stdout.trim().split('\n').map((line) => line.trim().split(/\s+/).map((cell) => String(normalise(cell)).replace(/^\d+[smhdy](\d+[smhd])?$/, '<age>')));
    };
  });
  afterAll(async () => {
    await Promise.all([real?.request('DELETE', `/api/v1/namespaces/${ns.real}`), simApi?.request('DELETE', `/api/v1/namespaces/${ns.sim}`)]);
    real?.close();
    simApi?.close();
    await sim?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores a namespace and a network policy alike (the namespace labelled with its name)', async () => {
    expectSame(await both('POST', '/api/v1/namespaces', (c) => buildNamespace(spec(c))));
    expectSame(await both('GET', '/api/v1/namespaces/NS'));
    const policy = (c: 'sim' | 'real') => JSON.parse(JSON.stringify(buildNetworkPolicy(spec(c))).replace('"_from"', '"from"'));
    expectSame(await both('POST', '/apis/networking.k8s.io/v1/namespaces/NS/networkpolicies', policy));
    expectSame(await both('GET', '/apis/networking.k8s.io/v1/namespaces/NS/networkpolicies/allow-same-namespace'));
    expectSame(await both('GET', '/apis/networking.k8s.io/v1/networkpolicies?labelSelector=lab-orchestrator.io%2Flab%3D2'));
  });

  it('answers errors with the same Status objects', async () => {
    const vmi = (c: 'sim' | 'real') => buildVirtualMachineInstance(spec(c), vm);
    expectSame(await both('POST', '/api/v1/namespaces', (c) => buildNamespace(spec(c)))); // 409 AlreadyExists
    expectSame(await both('GET', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances/nope'));
    expectSame(await both('GET', '/api/v1/namespaces/NS/pods/nope'));
    expectSame(await both('POST', '/apis/kubevirt.io/v1/namespaces/nowhere/virtualmachineinstances', (c) => ({ ...vmi(c), metadata: { ...vmi(c).metadata, namespace: 'nowhere' } })));
    const stale = (c: 'sim' | 'real') => ({ ...buildNamespace(spec(c)), metadata: { ...buildNamespace(spec(c)).metadata, resourceVersion: '1' } });
    expectSame(await both('PUT', '/api/v1/namespaces/NS', stale)); // 409 Conflict
    const notAQuantity = (c: 'sim' | 'real') => {
      const body = vmi(c);
      return { ...body, metadata: { ...body.metadata, name: 'bad' }, spec: { ...body.spec, domain: { ...body.spec.domain, resources: { requests: { memory: 'lots' } } } } };
    };
    expectSame(await both('POST', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances', notAQuantity)); // 422 from the CRD's schema
  });

  it("runs a VMI through KubeVirt's start to the same VMI and virt-launcher pod", { timeout: 60_000 }, async () => {
    const created = await both('POST', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances', (c) => buildVirtualMachineInstance(spec(c), vm));
    // (No KubeVirt webhook on the real API server: its create answer lacks the finalizer and Pending status the webhook adds.)
    expect([created.sim.status, created.real.status]).toEqual([201, 201]);
    const readyIn = async (api: KubeApi, namespace: string) =>
      eventually(
        async () => {
          const vmi = (await api.call('GET', `/apis/kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances/vm-1`)).body;
          expect(vmi.status?.phase).toBe('Running');
          expect(vmi.status?.conditions?.find((c: { type: string }) => c.type === 'Ready')?.status).toBe('True');
          return vmi;
        },
        30_000,
        100,
      );
    await Promise.all([readyIn(simApi, ns.sim), readyIn(real, ns.real)]);
    const vmis = await both('GET', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances/vm-1');
    // The late webhook is one more write on the real side: one generation more (a VMI has no status subresource).
    vmis.real.body.metadata.generation -= 1;
    expectSame(vmis);
    expectSame(await both('GET', '/api/v1/namespaces/NS/pods'));
    const list = await both('GET', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances');
    list.real.body.items[0].metadata.generation -= 1;
    expectSame(list);
  });

  it.each([
    [['get', 'pods', '-n', 'NS', '-o', 'wide']],
    [['get', 'vmi', '-n', 'NS', '-o', 'wide']],
    [['get', 'namespace', 'NS', '--show-labels']],
    [['get', 'networkpolicies', '-n', 'NS', '-o', 'wide']],
  ])('prints the same table for kubectl %j', async (args) => {
    const [simulated, actual] = await Promise.all([kubectl('sim', ...args), kubectl('real', ...args)]);
    expect(simulated).toEqual(actual);
  });

  it('deletes alike: a pod gracefully, a VMI held by its finalizer, a namespace through Terminating', { timeout: 60_000 }, async () => {
    const vmi = (c: 'sim' | 'real') => ({ ...buildVirtualMachineInstance(spec(c), vm), metadata: { ...buildVirtualMachineInstance(spec(c), vm).metadata, name: 'vm-2' } });
    await both('POST', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances', vmi);
    const podOf = async (api: KubeApi, namespace: string) =>
      eventually(
        async () => {
          const pods = (await api.call('GET', `/api/v1/namespaces/${namespace}/pods`)).body.items as Array<{ metadata: { name: string }; spec: { nodeName?: string } }>;
          const pod = pods.find((p) => p.metadata.name.startsWith('virt-launcher-vm-1-'));
          expect(pod?.spec.nodeName).toBeTruthy();
          return pod!.metadata.name;
        },
        30_000,
        100,
      );
    const pods = { sim: await podOf(simApi, ns.sim), real: await podOf(real, ns.real) };
    const [simPod, realPod] = await Promise.all([
      simApi.request('DELETE', `/api/v1/namespaces/${ns.sim}/pods/${pods.sim}`),
      real.request('DELETE', `/api/v1/namespaces/${ns.real}/pods/${pods.real}`),
    ]);
    expectSame({ sim: simPod, real: realPod }); // deletionTimestamp now + 60 s, deletionGracePeriodSeconds 60, generation 2
    expect(simPod.body.metadata.deletionGracePeriodSeconds).toBe(60);

    // vm-2 as a whole differs by timing (how far its start got); what its DELETE answer says of the deletion does not.
    // (On the real side, once the controller has played the webhook: before, nothing holds the VMI.)
    await eventually(async () => expect((await real.call('GET', `/apis/kubevirt.io/v1/namespaces/${ns.real}/virtualmachineinstances/vm-2`)).body.metadata.finalizers).toBeDefined(), 10_000, 50);
    const deleted = await both('DELETE', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances/vm-2');
    const deletion = (a: ApiAnswer) => normalise({
      code: a.status, kind: a.body.kind, deletionTimestamp: a.body.metadata.deletionTimestamp,
      deletionGracePeriodSeconds: a.body.metadata.deletionGracePeriodSeconds, finalizers: a.body.metadata.finalizers,
    });
    expect(differences(deletion(deleted.sim), deletion(deleted.real))).toEqual([]);

    expectSame(await both('DELETE', '/apis/networking.k8s.io/v1/namespaces/NS/networkpolicies/allow-same-namespace')); // a Success Status
    expectSame(await both('DELETE', '/api/v1/namespaces/NS'));
    expectSame(await both('DELETE', '/api/v1/namespaces/NS')); // again: 200, the namespace as it is
    expectSame(await both('POST', '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances', vmi)); // 403, NamespaceTerminating
  });
});
