import { randomUUID } from 'node:crypto';
import { parse, type DocumentNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { CreateImageDocument, CreateLabDocument, StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { graphqlWsClient, subscribeGraphqlWs } from './support/subscriptions.js';

/**
 * What a student sees while a lab starts, through the server and a subscription, with the simulated
 * cluster playing KubeVirt and the kubelet in KubeVirt's order (docs/simulated-cluster.md).
 */
interface Vm {
  name: string;
  phase: string;
  ready: boolean;
  podReady: boolean | null;
  reason: string | null;
  message: string | null;
}
interface Event {
  labInstanceStatus: { status: string; labInstance: { statusMessage: string | null }; vms: Vm[] };
}

const FOLLOW = parse(`subscription ($id: ID!) {
  labInstanceStatus(id: $id) { status labInstance { statusMessage } vms { name phase ready podReady reason message } }
}`) as DocumentNode;

const PHASE_ORDER = ['UNKNOWN', 'PENDING', 'SCHEDULING', 'SCHEDULED', 'RUNNING'];

describe.each(ENGINES)('a lab start as the student follows it on %s', (engine) => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let owner: TestUser;

  beforeAll(async () => {
    server = await startTestServer(engine, {
      SIMULATED_VM_READY_SECONDS: '0.6',
      SIMULATED_IMAGE_PULL_BACKOFF_SECONDS: '0.2',
      START_TIMEOUT_SECONDS: '3',
      STATUS_RESYNC_SECONDS: '0.3',
    });
    cluster = server.app.simulated!;
    [admin, owner] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
  });
  afterAll(() => server?.stop());

  async function labOf(vms: Array<{ name: string; url: string; memory?: string }>): Promise<string> {
    const suffix = randomUUID().slice(0, 6);
    const imageIds: string[] = [];
    for (const [i, vm] of vms.entries()) {
      const { createImage } = await admin.client.ok(CreateImageDocument, {
        input: { name: `p-${suffix}-${i}`, description: 'progress test', url: vm.url, cpuCores: 1, memory: vm.memory ?? '1Gi' },
      });
      imageIds.push(createImage.id);
    }
    const { createLab } = await admin.client.ok(CreateLabDocument, {
      input: { name: `p-${suffix}`, namespacePrefix: `p-${suffix}`, description: 'd', vms: vms.map((vm, i) => ({ name: vm.name, imageId: imageIds[i] })) },
    });
    return createLab.id;
  }

  async function follow(labId: string, until: (e: Event) => boolean) {
    const { startLab } = await owner.client.ok(StartLabDocument, { labId });
    const client = graphqlWsClient(server.wsUrl, owner.token);
    const sub = subscribeGraphqlWs(client, FOLLOW as never, { id: startLab.labInstance.id }) as unknown as {
      events: Event[];
      until(p: (events: Event[]) => boolean, timeoutMs?: number): Promise<void>;
      close(): void;
    };
    await sub.until((events) => events.some(until), 20_000);
    sub.close();
    await client.dispose();
    return { id: startLab.labInstance.id, namespace: startLab.labInstance.namespace, events: sub.events.map((e) => ({ ...e.labInstanceStatus, statusMessage: e.labInstanceStatus.labInstance.statusMessage })) };
  }

  it("shows each VM's progress in KubeVirt's order, and READY only once every VMI is Running and Ready", async () => {
    const labId = await labOf([
      { name: 'web', url: 'registry.example.org/vms/web:1' },
      { name: 'web-2', url: 'registry.example.org/vms/web:2' },
    ]);
    const { id, events } = await follow(labId, (e) => e.labInstanceStatus.status === 'READY');
    for (const name of ['web', 'web-2']) {
      const seen = events.map((e) => e.vms.find((vm) => vm.name === name)!).filter(Boolean);
      const phases = seen.map((vm) => PHASE_ORDER.indexOf(vm.phase));
      expect(phases, `phases of ${name}`).toEqual([...phases].sort((a, b) => a - b)); // never backwards
      const firstReady = seen.findIndex((vm) => vm.ready);
      expect(seen[firstReady]).toMatchObject({ phase: 'RUNNING', podReady: true, reason: null, message: null });
      expect(seen.slice(0, firstReady).every((vm) => !vm.ready && vm.message === null)).toBe(true);
      // The pod is Ready before the VM is: a state a pod-based rule would have called READY.
      expect(seen.some((vm) => vm.podReady && !vm.ready)).toBe(true);
    }
    for (const e of events) if (e.status === 'READY') expect(e.vms.every((vm) => vm.ready)).toBe(true);
    await owner.client.ok(StopLabInstanceDocument, { id });
  });

  it('ends FAILED after the start deadline when an image cannot be pulled, saying which, and keeps the namespace', async () => {
    const labId = await labOf([
      { name: 'ok', url: 'registry.example.org/vms/fine:1' },
      { name: 'web', url: 'registry.example.org/vms/x:does-not-exist' },
    ]);
    const { id, namespace, events } = await follow(labId, (e) => e.labInstanceStatus.status === 'FAILED');
    const web = events.flatMap((e) => e.vms.filter((vm) => vm.name === 'web'));
    expect(web.map((vm) => vm.reason)).toContain('ImagePullBackOff');
    expect(web.find((vm) => vm.reason === 'ImagePullBackOff')?.message).toBe(
      'image registry.example.org/vms/x:does-not-exist could not be pulled (ImagePullBackOff)',
    );
    const failed = events.find((e) => e.status === 'FAILED')!;
    expect(failed.statusMessage).toMatch(/^Did not start within 3 s: VM web: image registry\.example\.org\/vms\/x:does-not-exist could not be pulled \((ImagePullBackOff|ErrImagePull)\)$/);
    expect(cluster.get('namespaces', undefined, namespace)).toBeDefined();
    await owner.client.ok(StopLabInstanceDocument, { id });
  });

  it("ends FAILED after the start deadline when a VM cannot be scheduled, with the scheduler's message", async () => {
    const labId = await labOf([{ name: 'huge', url: 'registry.example.org/vms/huge:1', memory: '512Gi' }]);
    const { id, events } = await follow(labId, (e) => e.labInstanceStatus.status === 'FAILED');
    const huge = events.flatMap((e) => e.vms).find((vm) => vm.reason === 'Unschedulable');
    expect(huge?.message).toMatch(/^cannot be scheduled: 0\/1 nodes are available: 1 Insufficient memory\./);
    expect(events.find((e) => e.status === 'FAILED')!.statusMessage).toMatch(/^Did not start within 3 s: VM huge: cannot be scheduled: 0\/1 nodes are available/);
    await owner.client.ok(StopLabInstanceDocument, { id });
  });
});
