/**
 * The real control plane of test/support/control-plane.ts: Kubernetes' own API server, controller
 * manager, kubectl and etcd, with KubeVirt's VirtualMachineInstance CRD and its real schema.
 *
 * The first run builds the programs from Go modules (test/control-plane/build.sh: tens of minutes on
 * two cores); later runs take them from the cache. TEST_CONTROL_PLANE=off, or TEST_CLUSTERS without `real`,
 * skips this file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { startControlPlane, type ControlPlane } from './support/control-plane.js';
import { eventually } from './support/wait.js';
import { buildVirtualMachineInstance } from '../src/k8s/templates/instance.js';
import { CLUSTERS } from './support/server.js';

const VMIS = '/apis/kubevirt.io/v1/namespaces/NS/virtualmachineinstances';

describe.skipIf(process.env.TEST_CONTROL_PLANE === 'off' || !CLUSTERS.includes('real'))('real control plane', () => {
  let plane: ControlPlane;
  let seq = 0;
  const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${seq++}`;

  async function kubectlOk(...args: string[]) {
    const result = await plane.kubectl(args);
    if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  }

  async function createNamespace() {
    const name = uniqueName('cp-test');
    await kubectlOk('create', 'namespace', name);
    return name;
  }

  beforeAll(async () => {
    plane = await startControlPlane();
  }, 40 * 60_000);

  afterAll(async () => {
    await plane?.stop();
  }, 60_000);

  it('kubectl and the API server are the built release', async () => {
    const version = JSON.parse(await kubectlOk('version', '-o', 'json')) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(version.clientVersion.gitVersion).toBe('v1.36.3');
    expect(version.serverVersion.gitVersion).toBe('v1.36.3');
  });

  it('the admin kubeconfig is cert-based and the API server enforces RBAC', async () => {
    expect(await kubectlOk('auth', 'can-i', '*', '*', '--all-namespaces')).toContain('yes');
    const nobody = await plane.kubectl(['auth', 'can-i', 'list', 'namespaces', '--as=nobody']);
    expect(nobody.stdout.trim()).toBe('no');
    expect(nobody.code).toBe(1);
  });

  it('a deleted namespace, and what is in it, really goes away (namespace controller)', async () => {
    const ns = await createNamespace();
    await kubectlOk('-n', ns, 'create', 'configmap', 'content', '--from-literal=a=b');
    // The serviceaccount controller gives each new namespace its `default` service account.
    await eventually(() => kubectlOk('-n', ns, 'get', 'serviceaccount', 'default'), 30_000, 250);
    await kubectlOk('delete', 'namespace', ns, '--wait=false');
    expect((await plane.request('GET', `/api/v1/namespaces/${ns}`)).status).toBe(200); // Terminating first
    await eventually(
      async () => {
        const response = await plane.request('GET', `/api/v1/namespaces/${ns}`);
        expect(response.status).toBe(404);
      },
      60_000,
      500,
    );
  }, 90_000);

  it('objects whose owner is deleted are collected (garbage collector)', async () => {
    const ns = await createNamespace();
    const owner = JSON.parse(await kubectlOk('-n', ns, 'create', 'configmap', 'owner', '-o', 'json')) as {
      metadata: { uid: string };
    };
    const dependent = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'dependent',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid }],
      },
    };
    expect((await plane.request('POST', `/api/v1/namespaces/${ns}/configmaps`, { body: dependent })).status).toBe(201);
    await kubectlOk('-n', ns, 'delete', 'configmap', 'owner');
    await eventually(
      async () => expect((await plane.request('GET', `/api/v1/namespaces/${ns}/configmaps/dependent`)).status).toBe(404),
      60_000,
      500,
    );
  }, 90_000);

  it("KubeVirt's schema rejects invalid VirtualMachineInstances with 422 and accepts this server's", async () => {
    const ns = await createNamespace();
    const vmi = buildVirtualMachineInstance(
      { namespace: ns, instanceId: 1, labId: 2, userId: 3, vms: [] },
      { name: 'vm-1', image: 'quay.io/containerdisks/fedora:latest', cpuCores: 2, memory: '1Gi' },
    );
    const path = VMIS.replace('NS', ns);

    const noDomain = { ...vmi, metadata: { ...vmi.metadata, name: 'no-domain' }, spec: { ...vmi.spec, domain: undefined } };
    const missing = await plane.request('POST', path, { body: noDomain });
    expect(missing.status).toBe(422);
    expect(JSON.parse(missing.body)).toMatchObject({ kind: 'Status', reason: 'Invalid' });
    expect(missing.body).toContain('spec.domain');

    const wrongType = structuredClone(vmi) as unknown as { metadata: { name: string }; spec: { domain: { cpu: { cores: unknown } } } };
    wrongType.metadata.name = 'wrong-type';
    wrongType.spec.domain.cpu.cores = 'two';
    const typed = await plane.request('POST', path, { body: wrongType });
    expect(typed.status).toBe(422);
    expect(typed.body).toContain('spec.domain.cpu.cores');

    const created = await plane.request('POST', path, { body: vmi });
    expect(created.status, created.body).toBe(201);
    expect(JSON.parse(created.body)).toMatchObject({ kind: 'VirtualMachineInstance', metadata: { name: 'vm-1', namespace: ns } });
    expect(await kubectlOk('-n', ns, 'get', 'vmi', 'vm-1', '-o', 'name')).toContain('virtualmachineinstance.kubevirt.io/vm-1');
  });

  it('after compaction a watch from an older resourceVersion is answered with 410 Expired', async () => {
    const ns = await createNamespace();
    const created = JSON.parse(await kubectlOk('-n', ns, 'create', 'configmap', 'watched', '-o', 'json')) as {
      metadata: { resourceVersion: string };
    };
    const oldVersion = created.metadata.resourceVersion;
    for (let i = 0; i < 3; i++) await kubectlOk('-n', ns, 'label', 'configmap', 'watched', `step=${i}`, '--overwrite');

    // Before compaction the old resourceVersion still replays the changes since.
    const before = await plane.request(
      'GET',
      `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${oldVersion}&timeoutSeconds=1`,
    );
    expect(before.status).toBe(200);
    expect(before.body).toContain('"type":"MODIFIED"');

    const revision = await plane.compact();
    expect(revision).toBeGreaterThan(Number(oldVersion));
    const after = await plane.request(
      'GET',
      `/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${oldVersion}&timeoutSeconds=5`,
    );
    const firstEvent = JSON.parse(after.body.split('\n')[0] ?? '') as { type: string; object: { code: number; reason: string } };
    expect(firstEvent).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
  });

  it('restartApiServer brings the API server back with the data kept', async () => {
    const ns = await createNamespace();
    await plane.restartApiServer();
    expect(await kubectlOk('get', 'namespace', ns, '-o', 'name')).toContain(`namespace/${ns}`);
    expect(await kubectlOk('get', 'crd', 'virtualmachineinstances.kubevirt.io', '-o', 'name')).toContain(
      'virtualmachineinstances.kubevirt.io',
    );
  }, 120_000);
});
