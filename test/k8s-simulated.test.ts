import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, NetworkingV1Api, Watch, makeInformer,
  type KubernetesObject, type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedCluster, type KubeObject, type SimulatedCluster } from '../src/simulated/index.js';

const runFile = promisify(execFile);
const KUBEVIRT = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' };

let cluster: SimulatedCluster;
let kc: KubeConfig;
let core: CoreV1Api;
let net: NetworkingV1Api;
let custom: CustomObjectsApi;
let tmp: string;
let seq = 0;

function kubeConfigFor(url: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'sim', server: url, skipTLSVerify: true }], users: [{ name: 'u' }],
    contexts: [{ name: 'sim', cluster: 'sim', user: 'u' }], currentContext: 'sim',
  });
  return config;
}

const unique = (prefix: string): string => `${prefix}-${++seq}`;

/** Polls until `probe` returns something truthy; fails with `what` after the deadline. */
async function waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 4000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function apiError(promise: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiException);
  const { code, body } = err as ApiException<string>;
  return { code, status: JSON.parse(body) as Record<string, unknown> };
}

interface WatchLog {
  events: Array<{ type: string; object: KubeObject }>;
  done: Promise<unknown>;
  stop(): void;
}

async function watch(path: string, query: Record<string, string | boolean> = {}, config = kc): Promise<WatchLog> {
  const events: WatchLog['events'] = [];
  let finish: (err: unknown) => void = () => undefined;
  const done = new Promise((resolve) => { finish = resolve; });
  const controller = await new Watch(config).watch(path, query, (type, object) => events.push({ type, object }),
    (err) => finish(err ?? null));
  return { events, done, stop: () => controller.abort() };
}

type Log = Array<{ verb: string; obj: KubernetesObject }>;

function record(informer: { on(verb: 'add' | 'update' | 'delete', cb: (obj: KubernetesObject) => void): void }): Log {
  const log: Log = [];
  for (const verb of ['add', 'update', 'delete'] as const) informer.on(verb, (obj) => log.push({ verb, obj }));
  return log;
}

function vmiBody(name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, labels },
    spec: {
      domain: { cpu: { cores: 3 }, resources: { requests: { memory: '3G' } }, devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] } },
      volumes: [{ name: 'containerdisk', containerDisk: { image: 'registry.example/images/lab:1' } }],
    },
  };
}

async function namespaceWith(labels: Record<string, string> = {}): Promise<string> {
  const name = unique('ns');
  await core.createNamespace({ body: { metadata: { name, labels } } });
  return name;
}

function createVmi(namespace: string, name: string, labels: Record<string, string> = {}): Promise<unknown> {
  return custom.createNamespacedCustomObject({ ...KUBEVIRT, namespace, body: vmiBody(name, labels) });
}

const isReady = (pod: KubeObject | V1Pod | undefined): boolean =>
  ((pod?.status?.conditions ?? []) as Array<{ type: string; status: string }>).some((c) => c.type === 'Ready' && c.status === 'True');

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await runFile('kubectl', ['--kubeconfig', join(tmp, 'config'), '--cache-dir', join(tmp, 'cache'), ...args]);
  return stdout;
}

beforeAll(async () => {
  cluster = await startSimulatedCluster({
    vmReadySeconds: 0.05, namespaceTerminationMs: 250, podTerminationMs: 50, imagePullBackOffMs: 50, bookmarkIntervalMs: 50,
  });
  kc = kubeConfigFor(cluster.url);
  core = kc.makeApiClient(CoreV1Api);
  net = kc.makeApiClient(NetworkingV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  tmp = await mkdtemp(join(tmpdir(), 'k8s-sim-'));
  await writeFile(join(tmp, 'config'), [
    'apiVersion: v1', 'kind: Config', 'current-context: sim',
    `clusters: [{name: sim, cluster: {server: "${cluster.url}"}}]`,
    'users: [{name: u, user: {}}]', 'contexts: [{name: sim, context: {cluster: sim, user: u}}]', '',
  ].join('\n'));
});

afterEach(() => {
  cluster.faults.clear();
  cluster.setAutoProgress(true);
});

afterAll(async () => {
  await cluster?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('simulated Kubernetes API through client-node', () => {
  it('creates, reads, lists by label selector and deletes objects', async () => {
    const team = unique('team');
    const a = await namespaceWith({ team, tier: 'gold' });
    const b = await namespaceWith({ team, tier: 'silver' });
    const c = await namespaceWith({ team });

    const names = async (labelSelector: string): Promise<string[]> =>
      (await core.listNamespace({ labelSelector })).items.map((n) => n.metadata?.name ?? '').sort();
    expect(await names(`team=${team},tier=gold`)).toEqual([a]);
    expect(await names(`team==${team},tier!=gold`)).toEqual([b, c].sort());
    expect(await names(`team=${team},tier in (gold, silver)`)).toEqual([a, b].sort());
    expect(await names(`team=${team},tier notin (gold)`)).toEqual([b, c].sort());
    expect(await names(`team=${team},tier`)).toEqual([a, b].sort());
    expect(await names(`team=${team},!tier`)).toEqual([c]);
    expect((await core.listNamespace({ fieldSelector: `metadata.name=${b}` })).items.map((n) => n.metadata?.name)).toEqual([b]);

    const policy = await net.createNamespacedNetworkPolicy({
      namespace: a, body: { metadata: { name: 'allow-same-namespace', labels: { team } }, spec: { podSelector: {}, ingress: [{ _from: [{ podSelector: {} }] }] } },
    });
    expect(policy.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(policy.metadata?.namespace).toBe(a);
    const read = await net.readNamespacedNetworkPolicy({ namespace: a, name: 'allow-same-namespace' });
    expect(cluster.get('networkpolicies', a, 'allow-same-namespace')?.spec).toEqual({ podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] });
    expect(read.spec?.ingress?.[0]._from).toHaveLength(1);
    const listed = await net.listNetworkPolicyForAllNamespaces({ labelSelector: `team=${team}` });
    expect(listed.kind).toBe('NetworkPolicyList');
    // As the real API server sends a typed list: its items carry no kind and apiVersion (test/simulated-kubevirt.real.test.ts).
    expect(listed.items.map((p) => [p.kind, p.apiVersion, p.metadata?.namespace])).toEqual([[undefined, undefined, a]]);

    const deleted = await net.deleteNamespacedNetworkPolicy({ namespace: a, name: 'allow-same-namespace' });
    expect(deleted.status).toBe('Success');
    expect(cluster.get('networkpolicies', a, 'allow-same-namespace')).toBeUndefined();
  });

  it('answers conflicts, missing objects and invalid names with Kubernetes Status objects', async () => {
    const ns = await namespaceWith();
    const dup = await apiError(core.createNamespace({ body: { metadata: { name: ns } } }));
    expect(dup.code).toBe(409);
    expect(dup.status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409, details: { name: ns, kind: 'namespaces' } });

    const missing = await apiError(core.readNamespacedPod({ namespace: ns, name: 'nope' }));
    expect(missing).toMatchObject({ code: 404, status: { reason: 'NotFound', message: 'pods "nope" not found' } });
    const noNamespace = await apiError(createVmi('no-such-namespace', 'vm'));
    expect(noNamespace).toMatchObject({ code: 404, status: { reason: 'NotFound', details: { name: 'no-such-namespace', kind: 'namespaces' } } });
    const vmiMissing = await apiError(custom.getNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, name: 'gone' }));
    expect(vmiMissing.status.details).toEqual({ name: 'gone', group: 'kubevirt.io', kind: 'virtualmachineinstances' });

    const badName = await apiError(core.createNamespace({ body: { metadata: { name: 'Bad_Name' } } }));
    expect(badName).toMatchObject({ code: 422, status: { reason: 'Invalid', details: { kind: 'Namespace', causes: [{ field: 'metadata.name' }] } } });
    const noName = await apiError(core.createNamespace({ body: { metadata: {} } }));
    expect(noName).toMatchObject({ code: 422, status: { reason: 'Invalid' } });
    const generated = await core.createNamespace({ body: { metadata: { generateName: 'gen-' } } });
    expect(generated.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);

    const bad = await fetch(`${cluster.url}/api/v1/namespaces`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
  });

  it('starts a VMI\'s virt-launcher pod and brings it to Ready', async () => {
    const instance = unique('inst');
    const ns = await namespaceWith();
    const informer = makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: `lab/instance=${instance}` }),
      `lab/instance=${instance}`);
    const log = record(informer);
    await informer.start();
    try {
      const created = (await createVmi(ns, 'vm-a', { 'lab/instance': instance })) as KubeObject;
      const ready = await waitFor('pod Ready', () => log.find((e) => e.verb === 'update' && isReady(e.obj as V1Pod))?.obj as V1Pod);
      expect(ready.metadata?.name).toMatch(/^virt-launcher-vm-a-[a-z0-9]{5}$/);
      expect(ready.metadata?.labels).toMatchObject({
        'lab/instance': instance, 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': created.metadata.uid,
      });
      expect(ready.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachineInstance', name: 'vm-a', uid: created.metadata.uid });
      expect(ready.spec?.nodeName).toBe('sim-node-1');
      expect(ready.status?.phase).toBe('Running');
      expect(log[0].verb).toBe('add');
      expect(isReady(log[0].obj as V1Pod)).toBe(false);
      // KubeVirt hands a VMI over (Scheduled) when its pod runs; Running comes later, from virt-handler
      // (pkg/virt-controller/watch/vmi/lifecycle.go): a Ready pod does not mean a Running VMI.
      await waitFor('VMI Running', () => cluster.get('virtualmachineinstances', ns, 'vm-a')?.status?.phase === 'Running');
      const vmi = (await custom.getNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, name: 'vm-a' })) as KubeObject;
      expect(vmi.status).toMatchObject({ phase: 'Running', nodeName: 'sim-node-1' });
    } finally {
      await informer.stop();
    }
  });

  it('fails a VMI whose pod is deleted, and removes the pod of a deleted VMI', async () => {
    const ns = await namespaceWith();
    await createVmi(ns, 'vm-a');
    await createVmi(ns, 'vm-b');
    const podOf = (vm: string): KubeObject | undefined => cluster.list('pods', ns).find((p) => p.metadata.labels?.['vm.kubevirt.io/name'] === vm);
    const pod = await waitFor('pod of vm-a', () => podOf('vm-a'));
    await core.deleteNamespacedPod({ namespace: ns, name: pod.metadata.name ?? '' });
    await waitFor('vm-a Failed', () => cluster.get('virtualmachineinstances', ns, 'vm-a')?.status?.phase === 'Failed');

    await waitFor('pod of vm-b', () => podOf('vm-b'));
    await custom.deleteNamespacedCustomObject({ ...KUBEVIRT, namespace: ns, name: 'vm-b' });
    // The pod has a grace period and the VMI KubeVirt's finalizer, removed once the pod is gone
    // (lifecycle.go, IsFinal): both go, but not within the DELETE request.
    await waitFor('pod of vm-b gone', () => podOf('vm-b') === undefined);
    await waitFor('vm-b gone', () => cluster.get('virtualmachineinstances', ns, 'vm-b') === undefined);
  });

  it('deletes a namespace through Terminating, refusing new content, then removes all it holds', async () => {
    const ns = await namespaceWith();
    await createVmi(ns, 'vm-a');
    await net.createNamespacedNetworkPolicy({ namespace: ns, body: { metadata: { name: 'p' }, spec: { podSelector: {} } } });
    const events = await watch('/api/v1/namespaces', { fieldSelector: `metadata.name=${ns}` });
    const pods = await watch(`/api/v1/namespaces/${ns}/pods`);
    try {
      const terminating = await core.deleteNamespace({ name: ns });
      expect((terminating as KubeObject).status).toEqual({ phase: 'Terminating' });
      const refused = await apiError(createVmi(ns, 'vm-late'));
      expect(refused).toMatchObject({ code: 403, status: { reason: 'Forbidden' } });
      expect(String(refused.status.message)).toContain('being terminated');
      await waitFor('namespace DELETED', () => events.events.some((e) => e.type === 'DELETED'));
      expect(events.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
      expect(events.events[1].object.metadata.deletionTimestamp).toBeTruthy();
      await waitFor('pod DELETED', () => pods.events.some((e) => e.type === 'DELETED'));
      expect(pods.events.map((e) => e.type).filter((t) => t !== 'MODIFIED')).toEqual(['ADDED', 'DELETED']);
      for (const resource of ['pods', 'virtualmachineinstances', 'networkpolicies']) expect(cluster.list(resource, ns)).toEqual([]);
      expect((await apiError(core.readNamespace({ name: ns }))).code).toBe(404);
    } finally {
      events.stop();
      pods.stop();
    }
  });
});

describe('simulated watches', () => {
  it('replays the events missed since a resourceVersion', async () => {
    const ns = await namespaceWith();
    const from = (await core.listNamespacedPod({ namespace: ns })).metadata?.resourceVersion ?? '';
    for (const name of ['p1', 'p2']) await core.createNamespacedPod({ namespace: ns, body: { metadata: { name }, spec: { containers: [] } } });
    await core.deleteNamespacedPod({ namespace: ns, name: 'p1' });
    const log = await watch(`/api/v1/namespaces/${ns}/pods`, { resourceVersion: from });
    try {
      await waitFor('three events', () => log.events.length >= 3);
      expect(log.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED p1', 'ADDED p2', 'DELETED p1']);
      const versions = log.events.map((e) => Number(e.object.metadata.resourceVersion));
      expect([...versions].sort((x, y) => x - y)).toEqual(versions);
      expect(versions[0]).toBeGreaterThan(Number(from));
    } finally {
      log.stop();
    }
  });

  it('answers an old resourceVersion after compact() with a 410 ERROR event and ends the watch', async () => {
    const from = (await core.listNamespace()).metadata?.resourceVersion ?? '';
    await namespaceWith();
    cluster.faults.compact();
    const log = await watch('/api/v1/namespaces', { resourceVersion: from });
    expect(await log.done).toBeNull();
    expect(log.events).toHaveLength(1);
    expect(log.events[0].type).toBe('ERROR');
    expect(log.events[0].object).toMatchObject({ kind: 'Status', status: 'Failure', code: 410, reason: 'Expired' });
  });

  it('lets the informer relist after a 410 and see what it missed', async () => {
    const team = unique('team');
    const first = await namespaceWith({ team });
    const informer = makeInformer(kc, '/api/v1/namespaces', () => core.listNamespace({ labelSelector: `team=${team}` }), `team=${team}`);
    const log = record(informer);
    await informer.start();
    try {
      await waitFor('first namespace', () => log.some((e) => e.obj.metadata?.name === first));
      cluster.faults.stallWatches(true);
      const missed = await namespaceWith({ team });
      await namespaceWith(); // moves the resourceVersion past the informer's last one
      cluster.faults.compact();
      const lists = cluster.requestCounts()['list namespaces'];
      cluster.faults.dropWatches('namespaces', 'end');
      await waitFor('missed namespace', () => log.some((e) => e.verb === 'add' && e.obj.metadata?.name === missed));
      expect(cluster.requestCounts()['list namespaces']).toBe(lists + 1);
      expect(informer.list().map((n) => n.metadata?.name).sort()).toEqual([first, missed].sort());
    } finally {
      await informer.stop();
    }
  });

  it('sends label-selected events, turning an object that leaves the selector into DELETED', async () => {
    const ns = await namespaceWith();
    const log = await watch(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'role=web' });
    try {
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'other', labels: { role: 'db' } }, spec: { containers: [] } } });
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'web', labels: { role: 'web' } }, spec: { containers: [] } } });
      await core.patchNamespacedPod({ namespace: ns, name: 'web', body: [{ op: 'replace', path: '/metadata/labels/role', value: 'gone' }] });
      await waitFor('DELETED', () => log.events.length >= 2);
      expect(log.events.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED web', 'DELETED web']);
    } finally {
      log.stop();
    }
  });

  it('sends bookmarks when allowed and ends the watch at timeoutSeconds', async () => {
    // The watch cache sends no bookmark to a watch that ends within 2 s (cache_watcher.go nextBookmarkTime).
    const log = await watch('/api/v1/pods', { allowWatchBookmarks: true, timeoutSeconds: '3' });
    await waitFor('bookmark', () => log.events.some((e) => e.type === 'BOOKMARK'));
    const bookmark = log.events.find((e) => e.type === 'BOOKMARK')?.object;
    expect(bookmark).toEqual({ kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: expect.stringMatching(/^\d+$/) } });
    expect(await log.done).toBeNull();
  });

  it('holds events on a stalled watch and delivers them when the stall ends', async () => {
    const ns = await namespaceWith();
    const stalled = await watch(`/api/v1/namespaces/${ns}/pods`);
    cluster.faults.stallWatches(true);
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'p1' }, spec: { containers: [] } } });
    const fresh = await watch(`/api/v1/namespaces/${ns}/pods`);
    try {
      await waitFor('a new watch, not stalled, to see p1', () => fresh.events.length === 1);
      expect(stalled.events).toEqual([]);
      cluster.faults.stallWatches(false);
      await waitFor('the held event', () => stalled.events.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'p1'));
    } finally {
      stalled.stop();
      fresh.stop();
    }
  });

  it('closes open watches on dropWatches()', async () => {
    const log = await watch('/api/v1/pods');
    await waitFor('open watch', () => cluster.openWatches('pods') >= 1);
    cluster.faults.dropWatches('pods');
    expect(await log.done).toBeInstanceOf(Error);
    await waitFor('no open watch', () => cluster.openWatches('pods') === 0);
  });
});

describe('simulated faults and cluster actions', () => {
  it('fails exactly the nth matching request with a Status or a reset', async () => {
    const ns = await namespaceWith();
    cluster.faults.failRequest({ verb: 'get', resource: 'namespaces', nth: 2 }, 500);
    await core.readNamespace({ name: ns });
    expect(await apiError(core.readNamespace({ name: ns }))).toMatchObject({ code: 500, status: { reason: 'InternalError' } });
    await core.readNamespace({ name: ns });

    cluster.faults.failRequest({ verb: 'create', resource: 'virtualmachineinstances' }, 'reset');
    await expect(createVmi(ns, 'vm-a')).rejects.toThrow();
    expect(cluster.get('virtualmachineinstances', ns, 'vm-a')).toBeUndefined();
    await createVmi(ns, 'vm-a');

    cluster.faults.failRequest({ verb: 'watch', resource: 'pods' }, 403);
    const refused = await watch('/api/v1/pods');
    expect(await refused.done).toMatchObject({ statusCode: 403 });

    cluster.faults.failRequest({ verb: 'list', resource: 'pods' }, 'timeout');
    const hung = fetch(`${cluster.url}/api/v1/pods`, { signal: AbortSignal.timeout(100) });
    await expect(hung).rejects.toThrow(/abort|timeout/i);
  });

  it('is unavailable between down() and up()', async () => {
    cluster.faults.down();
    expect(await apiError(core.listNamespace())).toMatchObject({ code: 503, status: { reason: 'ServiceUnavailable' } });
    cluster.faults.up();
    await core.listNamespace();
  });

  it('holds VMIs while auto-progress is paused and makes them all Ready at once with readyAll()', async () => {
    cluster.setAutoProgress(false);
    const ns = await namespaceWith();
    for (const vm of ['vm-1', 'vm-2', 'vm-3']) await createVmi(ns, vm);
    const pods = cluster.list('pods', ns);
    expect(pods).toHaveLength(3);
    expect(pods.some(isReady)).toBe(false);
    expect(cluster.list('virtualmachineinstances', ns).map((v) => v.status?.phase)).toEqual(['Scheduling', 'Scheduling', 'Scheduling']);
    cluster.readyAll();
    expect(cluster.list('pods', ns).every(isReady)).toBe(true);
    expect(cluster.list('virtualmachineinstances', ns).map((v) => v.status?.phase)).toEqual(['Running', 'Running', 'Running']);

    cluster.setPodReady(ns, pods[0].metadata.name ?? '', false);
    expect(isReady(cluster.get('pods', ns, pods[0].metadata.name ?? ''))).toBe(false);
    cluster.setVmiPhase(ns, 'vm-2', 'Failed', 'disk error');
    expect(cluster.get('virtualmachineinstances', ns, 'vm-2')?.status).toMatchObject({ phase: 'Failed', reason: 'disk error' });
  });

  it('stops promptly with hanging requests and open watches', async () => {
    const other = await startSimulatedCluster();
    const config = kubeConfigFor(other.url);
    const log = await watch('/api/v1/namespaces', {}, config);
    other.faults.failRequest({ verb: 'get', resource: 'namespaces' }, 'timeout');
    const hung = fetch(`${other.url}/api/v1/namespaces/default`).catch((e: unknown) => e);
    await waitFor('requests served', () => other.requestCounts()['get namespaces'] === 1);
    await other.stop();
    expect(await hung).toBeInstanceOf(Error);
    await log.done;
    expect(other.openWatches()).toBe(0);
  });
});

describe('simulated Kubernetes API through kubectl', () => {
  it('gets pods and VMIs across namespaces', async () => {
    const ns = await namespaceWith();
    await createVmi(ns, 'vm-k');
    const pod = await waitFor('ready pod', () => cluster.list('pods', ns).find(isReady));
    await waitFor('VMI Ready', () => isReady(cluster.get('virtualmachineinstances', ns, 'vm-k')));
    const json = JSON.parse(await kubectl('get', 'pods', '-A', '-o', 'json')) as { items: KubeObject[] };
    expect(json.items.map((p) => p.metadata.name)).toContain(pod.metadata.name);
    const table = await kubectl('get', 'vmi', '-n', ns);
    expect(table).toMatch(/^NAME\s+AGE\s+PHASE/);
    expect(table).toMatch(/vm-k\s+\S+\s+Running/);
    // compute, the containerDisk's container and the guest-console-log sidecar (template.go): 3/3, not 1/1.
    expect(await kubectl('get', 'pods', '-A')).toMatch(new RegExp(`\\n${ns}\\s+${pod.metadata.name}\\s+3/3\\s+Running`));
  });

  it('watches pods and deletes a pod and a namespace', async () => {
    const ns = await namespaceWith();
    const args = ['--kubeconfig', join(tmp, 'config'), '--cache-dir', join(tmp, 'cache'), 'get', 'pods', '-n', ns, '--watch', '--request-timeout=10s'];
    const child = spawn('kubectl', args);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    try {
      await waitFor('kubectl watch', () => cluster.openWatches('pods') >= 1);
      await createVmi(ns, 'vm-w');
      const podName = await waitFor('watched pod', () => /(virt-launcher-vm-w-\S+)/.exec(out)?.[1]);
      await kubectl('delete', 'pod', '-n', ns, podName);
      expect(cluster.get('pods', ns, podName)).toBeUndefined();
      expect(cluster.get('virtualmachineinstances', ns, 'vm-w')?.status?.phase).toBe('Failed');
    } finally {
      child.kill();
    }
    expect(await kubectl('delete', 'namespace', ns)).toContain(`namespace "${ns}" deleted`);
    expect(cluster.get('namespaces', undefined, ns)).toBeUndefined();
  });
});
