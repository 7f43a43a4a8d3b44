import type { Json } from './support/hardening/ws.js';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedCluster, type KubeObject, type SimulatedCluster } from '../src/simulated/index.js';

/**
 * The simulated cluster playing KubeVirt and the kubelet, driven over HTTP as the server drives a real
 * one. Orders are checked on what watches deliver: pods and VMIs share one resourceVersion counter, so
 * the events of both watches, sorted by it, are the cluster's own order of changes.
 */

const KUBEVIRT = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' };
const FINALIZER = 'kubevirt.io/foregroundDeleteVirtualMachine';
const READY_SECONDS = 0.3;

let cluster: SimulatedCluster;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let kc: KubeConfig;
let seq = 0;

function kubeConfigFor(url: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'sim', server: url, skipTLSVerify: true }], users: [{ name: 'u' }],
    contexts: [{ name: 'sim', cluster: 'sim', user: 'u' }], currentContext: 'sim',
  });
  return config;
}

async function waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Condition = { type: string; status: string; reason?: string; message?: string };
const condition = (obj: KubeObject | undefined, type: string): Condition | undefined =>
  ((obj?.status?.conditions ?? []) as Condition[]).find((c) => c.type === type);
const isTrue = (obj: KubeObject | undefined, type: string): boolean => condition(obj, type)?.status === 'True';
const phaseOf = (obj: KubeObject | undefined): string | undefined => obj?.status?.phase as string | undefined;

interface Event {
  kind: 'pod' | 'vmi';
  type: string;
  object: KubeObject;
}

/** Watches the pods and VMIs of a namespace; `events()` merges both streams in resourceVersion order. */
async function observe(namespace: string): Promise<{ events(): Event[]; stop(): void }> {
  const log: Event[] = [];
  const watch = new Watch(kc);
  const controllers = await Promise.all([
    watch.watch(`/api/v1/namespaces/${namespace}/pods`, {}, (type, object) => log.push({ kind: 'pod', type, object }), () => undefined),
    watch.watch(`/apis/kubevirt.io/v1/namespaces/${namespace}/virtualmachineinstances`, {}, (type, object) => log.push({ kind: 'vmi', type, object }),
      () => undefined),
  ]);
  return {
    events: () => [...log].sort((a, b) => Number(a.object.metadata.resourceVersion) - Number(b.object.metadata.resourceVersion)),
    stop: () => controllers.forEach((c) => c.abort()),
  };
}

const firstIndex = (events: Event[], test: (e: Event) => boolean): number => events.findIndex(test);

interface VmOptions {
  image?: string;
  memory?: string;
  labels?: Record<string, string>;
  binding?: 'masquerade' | 'bridge';
}

function vmiBody(name: string, o: VmOptions = {}): KubeObject {
  const devices: Record<string, unknown> = { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] };
  const spec: Record<string, unknown> = {
    domain: { cpu: { cores: 2 }, resources: { requests: { memory: o.memory ?? '1Gi' } }, devices },
    volumes: [{ name: 'containerdisk', containerDisk: { image: o.image ?? 'registry.example/images/lab:1' } }],
  };
  if (o.binding) {
    devices.interfaces = [{ name: 'default', [o.binding]: {} }];
    spec.networks = [{ name: 'default', pod: {} }];
  }
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, labels: o.labels ?? {} }, spec };
}

async function createVmi(namespace: string, name: string, o: VmOptions = {}): Promise<KubeObject> {
  return (await custom.createNamespacedCustomObject({ ...KUBEVIRT, namespace, body: vmiBody(name, o) })) as KubeObject;
}

async function namespace(): Promise<string> {
  const name = `kv-${++seq}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

const vmiOf = (ns: string, name: string): KubeObject | undefined => cluster.get('virtualmachineinstances', ns, name);
const podsOf = (ns: string, vmi: KubeObject | undefined): KubeObject[] =>
  cluster.list('pods', ns).filter((p) => vmi && p.metadata.labels?.['kubevirt.io/created-by'] === vmi.metadata.uid);

async function apiError(promise: Promise<unknown>): Promise<{ code: number; status: Record<string, Json> }> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiException);
  const { code, body } = err as ApiException<string>;
  return { code, status: JSON.parse(body) as Record<string, Json> };
}

async function runningAndReady(ns: string, name: string): Promise<KubeObject> {
  return waitFor(`${name} Running and Ready`, () => {
    const vmi = vmiOf(ns, name);
    return phaseOf(vmi) === 'Running' && isTrue(vmi, 'Ready') ? vmi : undefined;
  });
}

beforeAll(async () => {
  cluster = await startSimulatedCluster({
    vmReadySeconds: READY_SECONDS,
    podTerminationMs: 150,
    namespaceTerminationMs: 200,
    imagePullBackOffMs: 100,
    bookmarkIntervalMs: 100,
    unpullableImages: ['*:does-not-exist', 'registry.example/private/*'],
    node: { cpu: '8', memory: '16Gi' },
  });
  kc = kubeConfigFor(cluster.url);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
});

afterEach(() => cluster.setAutoProgress(true));

afterAll(async () => {
  await cluster?.stop();
});

describe('a VMI starting, in KubeVirt\'s order', () => {
  it('goes Pending, gets its pod, Scheduling, pod Ready while Scheduled, Running, then Ready=True', async () => {
    const ns = await namespace();
    const log = await observe(ns);
    try {
      const started = Date.now();
      const created = await createVmi(ns, 'web', { binding: 'masquerade', labels: { app: 'lab' } });
      // virt-api's mutating webhook: the finalizer and phase Pending are in what the create stores.
      expect(created.metadata.finalizers).toEqual([FINALIZER]);
      expect(created.status).toMatchObject({ phase: 'Pending', phaseTransitionTimestamps: [{ phase: 'Pending' }] });
      await runningAndReady(ns, 'web');
      expect(Date.now() - started).toBeGreaterThanOrEqual(READY_SECONDS * 1000 * 0.9);
      await waitFor('the Ready event', () => log.events().some((e) => e.kind === 'vmi' && isTrue(e.object, 'Ready')));
      const events = log.events();
      const vmiEvents = events.filter((e) => e.kind === 'vmi');
      const podEvents = events.filter((e) => e.kind === 'pod');

      expect(events[0]).toMatchObject({ kind: 'vmi', type: 'ADDED' });
      expect(phaseOf(events[0].object)).toBe('Pending');
      const podAdded = firstIndex(events, (e) => e.kind === 'pod' && e.type === 'ADDED');
      const scheduling = firstIndex(events, (e) => e.kind === 'vmi' && phaseOf(e.object) === 'Scheduling');
      const podReady = firstIndex(events, (e) => e.kind === 'pod' && isTrue(e.object, 'Ready'));
      const scheduled = firstIndex(events, (e) => e.kind === 'vmi' && phaseOf(e.object) === 'Scheduled');
      const running = firstIndex(events, (e) => e.kind === 'vmi' && phaseOf(e.object) === 'Running');
      const vmiReady = firstIndex(events, (e) => e.kind === 'vmi' && isTrue(e.object, 'Ready'));
      expect([podAdded, scheduling, podReady, scheduled, running, vmiReady].every((i) => i > 0)).toBe(true);
      expect(podAdded).toBeLessThan(scheduling);
      expect(scheduling).toBeLessThan(podReady);
      expect(podReady).toBeLessThan(scheduled);
      expect(scheduled).toBeLessThan(running);
      expect(running).toBeLessThan(vmiReady);

      // The phases, each once and in order; Ready=True only ever on a Running VMI.
      const phases = vmiEvents.map((e) => phaseOf(e.object)).filter((p, i, all) => p !== all[i - 1]);
      expect(phases).toEqual(['Pending', 'Scheduling', 'Scheduled', 'Running']);
      // virt-controller's first write records the API version it observed, before it creates the pod.
      const annotated = firstIndex(events, (e) => e.kind === 'vmi' && e.object.metadata.annotations?.['kubevirt.io/latest-observed-api-version'] === 'v1');
      expect(annotated).toBeGreaterThan(0);
      expect(annotated).toBeLessThan(podAdded);
      for (const e of vmiEvents) if (isTrue(e.object, 'Ready')) expect(phaseOf(e.object)).toBe('Running');

      // While starting, the VMI says why it is not Ready, in KubeVirt's words.
      expect(condition(events[scheduling].object, 'Ready')).toMatchObject({
        status: 'False', reason: 'GuestNotRunning', message: 'Guest VM is not reported as running',
      });
      // The pod is Ready (its last state before the hand-over) when the VMI is Scheduled, on the pod's node.
      const podAtHandover = [...events.slice(0, scheduled)].reverse().find((e) => e.kind === 'pod')?.object;
      expect(isTrue(podAtHandover, 'Ready')).toBe(true);
      expect(events[scheduled].object.status).toMatchObject({ nodeName: 'sim-node-1' });
      expect(events[scheduled].object.metadata.labels).toMatchObject({ 'kubevirt.io/nodeName': 'sim-node-1' });
      // Ready=True is the pod's Ready condition copied once virt-handler reports Running.
      expect(condition(events[running].object, 'Ready')?.status).toBe('False');
      expect(condition(events[vmiReady].object, 'Ready')).toMatchObject({ status: 'True' });
      expect(condition(events[running].object, 'LiveMigratable')).toMatchObject({ status: 'True' });

      // The pod on its way: created Pending without node, bound, then Running with every container up.
      expect(phaseOf(podEvents[0].object)).toBe('Pending');
      expect(podEvents[0].object.spec?.nodeName).toBeUndefined();
      expect(isTrue(podEvents[0].object, 'Ready')).toBe(false);
      expect(phaseOf(events[podReady].object)).toBe('Running');
      expect(condition(events[podReady].object, 'kubevirt.io/virtual-machine-unpaused')).toMatchObject({ status: 'True', reason: 'NotPaused' });
    } finally {
      log.stop();
    }
  });

  it('renders the virt-launcher pod as KubeVirt does: generateName, labels, owner reference, no readiness probe', async () => {
    const ns = await namespace();
    const vmi = await createVmi(ns, 'db.internal', { labels: { tier: 'db' } });
    const [pod] = podsOf(ns, vmi);
    expect(pod.metadata.name).toMatch(/^virt-launcher-db\.internal-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(pod.metadata.generateName).toBe('virt-launcher-db.internal-');
    expect(pod.metadata.labels).toEqual({
      tier: 'db',
      'kubevirt.io': 'virt-launcher',
      'kubevirt.io/created-by': vmi.metadata.uid,
      'vm.kubevirt.io/name': 'db', // the sanitized hostname: up to the first dot
      'vmi.kubevirt.io/id': 'db.internal',
    });
    expect(pod.metadata.ownerReferences).toEqual([{
      apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'db.internal', uid: vmi.metadata.uid, controller: true, blockOwnerDeletion: true,
    }]);
    expect(pod.metadata.annotations).toMatchObject({ 'kubevirt.io/domain': 'db.internal', 'kubectl.kubernetes.io/default-container': 'compute' });
    const spec = pod.spec as Record<string, Json>;
    expect(spec.hostname).toBe('db');
    expect(spec.readinessGates).toEqual([{ conditionType: 'kubevirt.io/virtual-machine-unpaused' }]);
    expect(spec.terminationGracePeriodSeconds).toBe(60);
    expect(spec.containers.map((c: { name: string }) => c.name)).toEqual(['compute', 'volumecontainerdisk']);
    expect(spec.initContainers.map((c: { name: string }) => c.name)).toEqual(['guest-console-log', 'container-disk-binary', 'volumecontainerdisk-init']);
    expect(spec.containers[0].readinessProbe).toBeUndefined();
    // 2 vCPUs at the default allocation ratio of 10; 1Gi of guest memory plus KubeVirt's overhead estimate:
    // page tables 2097 kB, 240Mi for the processes, 8Mi per vCPU, 8Mi IO thread, 32Mi video.
    expect(spec.containers[0].resources.requests).toMatchObject({ cpu: '200m' });
    expect(spec.containers[0].resources.requests.memory).toBe(String(2 ** 30 + 2_097_000 + (240 + 16 + 8 + 32) * 2 ** 20));
  });

  it('gives web and web-2 a pod each, labelled with their own uid', async () => {
    const ns = await namespace();
    const web = await createVmi(ns, 'web');
    const web2 = await createVmi(ns, 'web-2');
    expect(web.metadata.uid).not.toBe(web2.metadata.uid);
    for (const [vmi, prefix] of [[web, 'virt-launcher-web-'], [web2, 'virt-launcher-web-2-']] as const) {
      const listed = await core.listNamespacedPod({ namespace: ns, labelSelector: `kubevirt.io/created-by=${vmi.metadata.uid}` });
      expect(listed.items).toHaveLength(1);
      const pod = listed.items[0];
      expect(pod.metadata?.name?.startsWith(prefix)).toBe(true);
      expect(pod.metadata?.name).toHaveLength(prefix.length + 5);
      expect(pod.metadata?.labels?.['vm.kubevirt.io/name']).toBe(vmi.metadata.name);
      expect(pod.metadata?.ownerReferences?.[0].uid).toBe(vmi.metadata.uid);
    }
    // The name prefix alone would confuse them: virt-launcher-web-2-xxxxx starts with virt-launcher-web-.
    expect(cluster.list('pods', ns).filter((p) => p.metadata.name?.startsWith('virt-launcher-web-'))).toHaveLength(2);
  });

  it('cuts a generated name to 58 characters before the random suffix, as the API server does', async () => {
    const ns = await namespace();
    const name = `vm-${'x'.repeat(67)}`;
    const vmi = await createVmi(ns, name);
    const [pod] = podsOf(ns, vmi);
    expect(pod.metadata.name).toHaveLength(63);
    expect(pod.metadata.name?.slice(0, 58)).toBe(`virt-launcher-${name}-`.slice(0, 58));
    expect(pod.metadata.labels?.['vmi.kubevirt.io/id']).toMatch(/^vm-x{51}-[0-9a-f]{8}$/);
    expect(pod.metadata.labels?.['vm.kubevirt.io/name']).toBe(name.slice(0, 63));
  });

  it('marks a VMI on the pod network with bridge (KubeVirt\'s default interface) as not live-migratable', async () => {
    const ns = await namespace();
    await createVmi(ns, 'plain');
    await createVmi(ns, 'bridged', { binding: 'bridge' });
    for (const name of ['plain', 'bridged']) {
      const vmi = await runningAndReady(ns, name);
      expect(condition(vmi, 'LiveMigratable')).toMatchObject({
        status: 'False', reason: 'InterfaceNotLiveMigratable',
        message: 'cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network',
      });
      expect(vmi.status?.migrationMethod).toBe('BlockMigration');
    }
  });

  it('holds every step while auto-progress is paused, and readyAll() takes them in the same order', async () => {
    cluster.setAutoProgress(false);
    const ns = await namespace();
    const log = await observe(ns);
    try {
      await createVmi(ns, 'burst');
      await sleep(READY_SECONDS * 1000 * 1.5);
      expect(phaseOf(vmiOf(ns, 'burst'))).toBe('Scheduling');
      cluster.readyAll();
      await waitFor('Ready event', () => log.events().some((e) => e.kind === 'vmi' && isTrue(e.object, 'Ready')));
      const events = log.events();
      const order = ['pod Ready', 'Scheduled', 'Running', 'VMI Ready'].map((step) => firstIndex(events, (e) => {
        if (step === 'pod Ready') return e.kind === 'pod' && isTrue(e.object, 'Ready');
        if (step === 'VMI Ready') return e.kind === 'vmi' && isTrue(e.object, 'Ready');
        return e.kind === 'vmi' && phaseOf(e.object) === step;
      }));
      expect(order.every((i) => i >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
    } finally {
      log.stop();
    }
  });
});

describe('a VMI that cannot start', () => {
  it('waits on an image that cannot be pulled: ErrImagePull, then ImagePullBackOff; the VMI stays Scheduling', async () => {
    const ns = await namespace();
    const log = await observe(ns);
    const image = 'registry.example/images/lab:does-not-exist';
    try {
      const vmi = await createVmi(ns, 'broken', { image });
      const backOff = await waitFor('ImagePullBackOff', () => podsOf(ns, vmi).find((p) =>
        ((p.status?.initContainerStatuses ?? []) as Array<{ state: { waiting?: { reason: string } } }>).some((s) => s.state.waiting?.reason === 'ImagePullBackOff')));
      await waitFor('the ImagePullBackOff event', () => log.events().some((e) => e.kind === 'pod' && JSON.stringify(e.object.status).includes('"ImagePullBackOff"')));
      const init = (backOff.status?.initContainerStatuses ?? []) as Array<{ name: string; state: Record<string, Json> }>;
      expect(init.map((s) => [s.name, Object.keys(s.state)[0]])).toEqual([
        ['guest-console-log', 'running'], ['container-disk-binary', 'terminated'], ['volumecontainerdisk-init', 'waiting'],
      ]);
      expect(init[2].state.waiting).toEqual({ reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` });
      expect(backOff.status?.phase).toBe('Pending');
      expect(backOff.spec?.nodeName).toBe('sim-node-1');
      expect(condition(backOff, 'Initialized')).toMatchObject({
        status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [volumecontainerdisk-init]',
      });
      expect(condition(backOff, 'Ready')).toMatchObject({
        status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [compute volumecontainerdisk]',
      });

      const events = log.events();
      const pull = firstIndex(events, (e) => e.kind === 'pod' && JSON.stringify(e.object.status).includes('"ErrImagePull"'));
      const back = firstIndex(events, (e) => e.kind === 'pod' && JSON.stringify(e.object.status).includes('"ImagePullBackOff"'));
      expect(pull).toBeGreaterThan(0);
      expect(pull).toBeLessThan(back);
      const errStatus = (events[pull].object.status?.initContainerStatuses as Array<{ state: Record<string, Json> }>)[2].state.waiting;
      expect(errStatus).toEqual({
        reason: 'ErrImagePull',
        message: `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`,
      });
      // virt-controller reports the image error on the VMI (Synchronized=False) and keeps it Scheduling.
      const synced = await waitFor('Synchronized ImagePullBackOff', () => condition(vmiOf(ns, 'broken'), 'Synchronized')?.reason === 'ImagePullBackOff' && vmiOf(ns, 'broken'));
      expect(condition(synced, 'Synchronized')).toMatchObject({ status: 'False', message: `Back-off pulling image "${image}"` });
      expect(log.events().some((e) => e.kind === 'vmi' && condition(e.object, 'Synchronized')?.reason === 'ErrImagePull')).toBe(true);
      await sleep(READY_SECONDS * 1000);
      expect(phaseOf(vmiOf(ns, 'broken'))).toBe('Scheduling');
      expect(log.events().filter((e) => e.kind === 'vmi').every((e) => ['Pending', 'Scheduling'].includes(phaseOf(e.object) ?? ''))).toBe(true);
      // The kubelet retries after its back-off, and fails again.
      await waitFor('a second ErrImagePull', () => log.events().filter((e) => e.kind === 'pod' && JSON.stringify(e.object.status).includes('"ErrImagePull"')).length >= 2);
    } finally {
      log.stop();
    }
  });

  it('matches unpullable images by the configured globs, and readyAll() leaves such VMIs alone', async () => {
    const ns = await namespace();
    const vmi = await createVmi(ns, 'private', { image: 'registry.example/private/lab:1' });
    await waitFor('ErrImagePull', () => JSON.stringify(podsOf(ns, vmi)[0]?.status).includes('ErrImagePull'));
    cluster.readyAll();
    expect(phaseOf(vmiOf(ns, 'private'))).toBe('Scheduling');
  });

  it('stays Pending without a node when it asks for more than the node has: PodScheduled=False, Unschedulable', async () => {
    const ns = await namespace();
    const vmi = await createVmi(ns, 'huge', { memory: '100Gi' });
    const message = '0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.';
    const pod = await waitFor('Unschedulable', () => podsOf(ns, vmi).find((p) => condition(p, 'PodScheduled')?.reason === 'Unschedulable'));
    expect(condition(pod, 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable', message });
    expect(pod.spec?.nodeName).toBeUndefined();
    expect(pod.status?.phase).toBe('Pending');
    // virt-controller copies the pod's PodScheduled=False onto the VMI, which stays Scheduling.
    const scheduling = await waitFor('VMI PodScheduled', () => condition(vmiOf(ns, 'huge'), 'PodScheduled') && vmiOf(ns, 'huge'));
    expect(condition(scheduling, 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable', message });
    expect(condition(scheduling, 'Ready')).toMatchObject({ status: 'False', reason: 'GuestNotRunning' });
    await sleep(READY_SECONDS * 1000 * 1.5);
    expect(phaseOf(vmiOf(ns, 'huge'))).toBe('Scheduling');
    expect(podsOf(ns, vmi)[0].spec?.nodeName).toBeUndefined();
    cluster.readyAll();
    expect(phaseOf(vmiOf(ns, 'huge'))).toBe('Scheduling');
  });

  it('names every insufficient resource, sorted', async () => {
    const ns = await namespace();
    const body = vmiBody('greedy', { memory: '64Gi' });
    (body.spec as Record<string, Json>).domain.cpu = { cores: 100 };
    const vmi = (await custom.createNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, body })) as KubeObject;
    const pod = await waitFor('Unschedulable', () => podsOf(ns, vmi).find((p) => condition(p, 'PodScheduled')?.reason === 'Unschedulable'));
    expect(condition(pod, 'PodScheduled')?.message).toMatch(/^0\/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory\. preemption: /);
  });
});

describe('deletion', () => {
  it('holds a deleted VMI by its finalizer until its pod, deleted with a grace period, is gone', async () => {
    const ns = await namespace();
    await createVmi(ns, 'doomed', { binding: 'masquerade' });
    const vmi = await runningAndReady(ns, 'doomed');
    const [pod] = podsOf(ns, vmi);
    const log = await observe(ns);
    try {
      const answer = (await custom.deleteNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, name: 'doomed' })) as KubeObject;
      expect(answer.metadata.deletionTimestamp).toBeTruthy();
      expect(answer.metadata.finalizers).toEqual([FINALIZER]);
      const marked = podsOf(ns, vmi)[0];
      expect(marked.metadata.name).toBe(pod.metadata.name);
      expect(marked.metadata.deletionGracePeriodSeconds).toBe(60);
      // deletionTimestamp is when the grace period ends (apiserver rest/delete.go BeforeDelete).
      expect(Date.parse(marked.metadata.deletionTimestamp ?? '') - Date.now()).toBeGreaterThan(50_000);
      await waitFor('VMI gone', () => vmiOf(ns, 'doomed') === undefined);
      await waitFor('the DELETED event', () => log.events().some((e) => e.kind === 'vmi' && e.type === 'DELETED'));
      const events = log.events();
      const podMarked = firstIndex(events, (e) => e.kind === 'pod' && Boolean(e.object.metadata.deletionTimestamp));
      const terminating = firstIndex(events, (e) => e.kind === 'vmi' && condition(e.object, 'Ready')?.reason === 'PodTerminating');
      const succeeded = firstIndex(events, (e) => e.kind === 'vmi' && phaseOf(e.object) === 'Succeeded');
      const podGone = firstIndex(events, (e) => e.kind === 'pod' && e.type === 'DELETED');
      const vmiGone = firstIndex(events, (e) => e.kind === 'vmi' && e.type === 'DELETED');
      const vmiMarked = firstIndex(events, (e) => e.kind === 'vmi' && Boolean(e.object.metadata.deletionTimestamp));
      expect([vmiMarked, podMarked, terminating, succeeded, podGone, vmiGone].every((i) => i >= 0)).toBe(true);
      expect(vmiMarked).toBeLessThan(podMarked);
      expect(podMarked).toBeLessThan(terminating);
      expect(terminating).toBeLessThan(succeeded);
      expect(succeeded).toBeLessThan(podGone);
      expect(podGone).toBeLessThan(vmiGone);
      expect(condition(events[terminating].object, 'Ready')?.message).toBe('virt-launcher pod is terminating');
      // Every VMI event before the last carries the finalizer; the DELETED one no longer does.
      for (const e of events.slice(0, vmiGone).filter((x) => x.kind === 'vmi')) expect(e.object.metadata.finalizers).toEqual([FINALIZER]);
      expect(events[vmiGone].object.metadata.finalizers ?? []).toEqual([]);
      expect(events.some((e) => e.kind === 'vmi' && phaseOf(e.object) === 'Failed')).toBe(false);
    } finally {
      log.stop();
    }
  });

  it('fails a VMI whose pod is deleted out of band; the VMI itself stays', async () => {
    const ns = await namespace();
    await createVmi(ns, 'orphan');
    const vmi = await runningAndReady(ns, 'orphan');
    const [pod] = podsOf(ns, vmi);
    const log = await observe(ns);
    try {
      const answer = await core.deleteNamespacedPod({ namespace: ns, name: pod.metadata.name ?? '' });
      expect(answer.metadata?.deletionTimestamp).toBeTruthy();
      expect(phaseOf(vmiOf(ns, 'orphan'))).toBe('Running');
      await waitFor('VMI Failed', () => phaseOf(vmiOf(ns, 'orphan')) === 'Failed');
      await waitFor('the Failed event', () => log.events().some((e) => e.kind === 'vmi' && phaseOf(e.object) === 'Failed'));
      const events = log.events();
      const terminating = firstIndex(events, (e) => e.kind === 'vmi' && condition(e.object, 'Ready')?.reason === 'PodTerminating');
      const podGone = firstIndex(events, (e) => e.kind === 'pod' && e.type === 'DELETED');
      const failed = firstIndex(events, (e) => e.kind === 'vmi' && phaseOf(e.object) === 'Failed');
      expect(terminating).toBeGreaterThanOrEqual(0);
      expect(terminating).toBeLessThan(podGone);
      expect(podGone).toBeLessThan(failed);
      const left = vmiOf(ns, 'orphan');
      expect(left?.metadata.deletionTimestamp).toBeUndefined();
      // A final VMI without pods loses its finalizer ("all pods have been deleted, removing finalizer").
      expect(left?.metadata.finalizers).toBeUndefined();
      expect(podsOf(ns, vmi)).toEqual([]);
      // Deleting it now is immediate: nothing holds it.
      await custom.deleteNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, name: 'orphan' });
      expect(vmiOf(ns, 'orphan')).toBeUndefined();
    } finally {
      log.stop();
    }
  });

  it('deletes a pod that never reached a node at once', async () => {
    const ns = await namespace();
    const vmi = await createVmi(ns, 'stuck', { memory: '100Gi' });
    const [pod] = podsOf(ns, vmi);
    await core.deleteNamespacedPod({ namespace: ns, name: pod.metadata.name ?? '' });
    expect(cluster.get('pods', ns, pod.metadata.name ?? '')).toBeUndefined();
    expect(phaseOf(vmiOf(ns, 'stuck'))).toBe('Failed');
  });

  it('keeps a namespace Terminating until its controller pass is over and its content is gone', async () => {
    const ns = await namespace();
    await createVmi(ns, 'a');
    await runningAndReady(ns, 'a');
    const started = Date.now();
    const answer = await core.deleteNamespace({ name: ns });
    expect((answer as unknown as KubeObject).status?.phase).toBe('Terminating');
    await waitFor('namespace gone', () => cluster.get('namespaces', undefined, ns) === undefined);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(cluster.list('pods', ns)).toEqual([]);
    expect(cluster.list('virtualmachineinstances', ns)).toEqual([]);
  });
});

describe('finalizers on other kinds', () => {
  it('marks an object a finalizer holds, and removes it when the last finalizer goes', async () => {
    const ns = await namespace();
    const base = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
    const body = { metadata: { name: 'held', finalizers: ['example.com/hold'] }, spec: { podSelector: {} } };
    await fetch(`${cluster.url}${base}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    const answer = await (await fetch(`${cluster.url}${base}/held`, { method: 'DELETE' })).json() as KubeObject;
    expect(answer.kind).toBe('NetworkPolicy');
    expect(answer.metadata).toMatchObject({ deletionTimestamp: expect.any(String), deletionGracePeriodSeconds: 0, finalizers: ['example.com/hold'] });
    expect(cluster.get('networkpolicies', ns, 'held')).toBeDefined();
    const patch = await fetch(`${cluster.url}${base}/held`, {
      method: 'PATCH', body: JSON.stringify({ metadata: { finalizers: null } }), headers: { 'content-type': 'application/merge-patch+json' },
    });
    expect(patch.status).toBe(200);
    expect(cluster.get('networkpolicies', ns, 'held')).toBeUndefined();
  });
});

describe('admission', () => {
  it('refuses a VMI asking for less than 1M of memory, as KubeVirt\'s validating webhook does', async () => {
    const ns = await namespace();
    const refused = await apiError(createVmi(ns, 'tiny', { memory: '512' }));
    expect(refused.code).toBe(422);
    expect(refused.status).toMatchObject({
      kind: 'Status', status: 'Failure', reason: 'Invalid', code: 422,
      message: 'admission webhook "virtualmachineinstances-create-validator.kubevirt.io" denied the request: ' +
        "spec.domain.resources.requests.memory '512': must be greater than or equal to 1M.",
      details: { causes: [{ type: 'FieldValueInvalid', field: 'spec.domain.resources.requests.memory' }] },
    });
    expect(vmiOf(ns, 'tiny')).toBeUndefined();
    expect(cluster.list('pods', ns)).toEqual([]);
    const halfMega = await apiError(createVmi(ns, 'tiny', { memory: '0.5M' }));
    expect(halfMega.status.message).toContain("spec.domain.resources.requests.memory '500k': must be greater than or equal to 1M.");
    await createVmi(ns, 'small', { memory: '1M' });
  });

  it('refuses a VMI without memory, and a memory that is not a quantity', async () => {
    const ns = await namespace();
    const body = vmiBody('none');
    delete (body.spec as Record<string, Json>).domain.resources;
    const none = await apiError(custom.createNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, body }));
    expect(none.code).toBe(422);
    expect(none.status.message).toContain('no memory requested');
    const garbage = await apiError(createVmi(ns, 'garbage', { memory: 'lots' }));
    expect(garbage).toMatchObject({ code: 422, status: { reason: 'Invalid', details: { causes: [{ field: 'spec.domain.resources.requests.memory' }] } } });
  });
});

describe('bookmarks', () => {
  it('come about once a minute by default, or 2 s before a watch\'s deadline', async () => {
    const other = await startSimulatedCluster();
    try {
      const events: Array<{ type: string; at: number }> = [];
      const opened = Date.now();
      let done: (v?: unknown) => void = () => undefined;
      const ended = new Promise((r) => { done = r; });
      await new Watch(kubeConfigFor(other.url)).watch('/api/v1/namespaces', { allowWatchBookmarks: true, timeoutSeconds: 3 },
        (type) => events.push({ type, at: Date.now() - opened }), () => done());
      await ended;
      const bookmarks = events.filter((e) => e.type === 'BOOKMARK');
      expect(bookmarks).toHaveLength(1);
      expect(bookmarks[0].at).toBeGreaterThanOrEqual(900);
    } finally {
      await other.stop();
    }
  });
});
