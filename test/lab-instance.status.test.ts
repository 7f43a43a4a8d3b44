import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { LabInstance } from '../src/entities/index.js';
import {
  LabInstanceDocument,
  LabInstancesDocument,
  LabInstancesStatusDocument,
  LabInstanceStatusDocument,
  StartLabDocument,
  StopLabInstanceDocument,
  type LabInstanceStatusSubscription,
  type LabInstancesStatusSubscription,
} from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { kubectl } from './support/kubectl.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { graphqlWsClient, subscribeApollo, subscribeGraphqlWs, subscribeLegacy, type Received } from './support/subscriptions.js';
import { eventually } from './support/wait.js';

type AnyEvent = LabInstancesStatusSubscription['labInstancesStatus'];

const statuses = (events: { status: string }[]) => events.map((e) => e.status).filter((s, i, all) => s !== all[i - 1]);
const one = (r: Received<LabInstanceStatusSubscription>) => r.events.map((e) => e.labInstanceStatus);

describe.each(ENGINES)('live status on %s', (engine) => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let owner: TestUser;
  let other: TestUser;
  let labId: string;

  beforeAll(async () => {
    server = await startTestServer(engine, {
      STATUS_RESYNC_SECONDS: '0.5',
      STATUS_WRITE_BATCH: '40',
      WATCH_STALL_SECONDS: '2.5',
      WATCH_BACKOFF_MAX_SECONDS: '0.5',
    });
    cluster = server.app.simulated!;
    cluster.setAutoProgress(false);
    [admin, owner, other] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true }), createUser(server)]);
    labId = (await createLabWithVms(admin.client, ['router', 'client-a', 'client-b'])).lab.id;
    await eventually(async () => expect((await fetch(server.url.replace('/graphql', '/readyz'))).status).toBe(200));
  });
  afterAll(() => server?.stop());

  async function startAndFollow(follow: (id: string) => Received<LabInstanceStatusSubscription>) {
    const { startLab } = await owner.client.ok(StartLabDocument, { labId });
    const sub = follow(startLab.labInstance.id);
    await sub.until((e) => e.length >= 1);
    return { id: startLab.labInstance.id, namespace: startLab.labInstance.namespace, sub };
  }

  async function runToStopped(id: string, sub: Received<LabInstanceStatusSubscription>) {
    cluster.readyAll();
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'));
    await owner.client.ok(StopLabInstanceDocument, { id });
    await sub.until(() => sub.completed, 10_000).catch(() => undefined);
    await eventually(() => expect(sub.completed).toBe(true));
  }

  it('follows a lab of three VMs from PENDING to READY to STOPPED with the graphql-ws client', async () => {
    const dashboard = subscribeGraphqlWs(graphqlWsClient(server.wsUrl, admin.token), LabInstancesStatusDocument);
    await new Promise((r) => setTimeout(r, 0));
    const client = graphqlWsClient(server.wsUrl, owner.token);
    const { id, sub } = await startAndFollow((id) => subscribeGraphqlWs(client, LabInstanceStatusDocument, { id }));
    const first = one(sub)[0];
    expect(first.labInstance.id).toBe(id);
    expect(first.status).toBe('STARTING');
    expect(first.vms.map((vm) => vm.name)).toEqual(['router', 'client-a', 'client-b']);
    await runToStopped(id, sub);
    const events = one(sub);
    expect(statuses(events)).toEqual(['STARTING', 'READY', 'STOPPING', 'STOPPED']);
    const ready = events.find((e) => e.status === 'READY')!;
    expect(ready.ready).toBe(true);
    expect(ready.vms.every((vm) => vm.ready && vm.phase === 'RUNNING' && vm.podName?.startsWith(`virt-launcher-${vm.name}-`))).toBe(true);
    const mine = await dashboard.until((e) => e.some((x) => x.labInstancesStatus.labInstance.id === id && x.labInstancesStatus.status === 'STOPPED'));
    expect(statuses(mine.map((e) => e.labInstancesStatus).filter((e) => e.labInstance.id === id))).toEqual([
      'PENDING',
      'STARTING',
      'READY',
      'STOPPING',
      'STOPPED',
    ]);
    dashboard.close();
    await client.dispose();
  });

  it('follows the same life cycle with the legacy subscriptions-transport-ws client', async () => {
    const { id, sub } = await startAndFollow((id) => subscribeLegacy(server.wsUrl, owner.token, LabInstanceStatusDocument, { id }));
    await runToStopped(id, sub);
    expect(statuses(one(sub))).toEqual(['STARTING', 'READY', 'STOPPING', 'STOPPED']);
    sub.close();
  });

  it('follows the same life cycle with Apollo Client and its WebSocket link', async () => {
    const { id, sub } = await startAndFollow((id) => subscribeApollo(server.wsUrl, owner.token, LabInstanceStatusDocument, { id }));
    await runToStopped(id, sub);
    expect(statuses(one(sub))).toEqual(['STARTING', 'READY', 'STOPPING', 'STOPPED']);
    sub.close();
  });

  it('lets only the owner and admins subscribe to an instance', async () => {
    const { startLab } = await owner.client.ok(StartLabDocument, { labId });
    const id = startLab.labInstance.id;
    const anonymous = subscribeGraphqlWs(graphqlWsClient(server.wsUrl), LabInstanceStatusDocument, { id });
    await eventually(() => expect(anonymous.errors).toHaveLength(1));
    expect(JSON.stringify(anonymous.errors)).toContain('UNAUTHENTICATED');
    const stranger = subscribeLegacy(server.wsUrl, other.token, LabInstanceStatusDocument, { id });
    await eventually(() => expect(stranger.errors).toHaveLength(1));
    expect(JSON.stringify(stranger.errors)).toContain('NOT_FOUND');
    const byAdmin = subscribeGraphqlWs(graphqlWsClient(server.wsUrl, admin.token), LabInstanceStatusDocument, { id });
    await byAdmin.until((e) => e.length === 1);
    const feed = subscribeGraphqlWs(graphqlWsClient(server.wsUrl, other.token), LabInstancesStatusDocument);
    await owner.client.ok(StopLabInstanceDocument, { id });
    await byAdmin.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
    expect(feed.events.filter((e: { labInstancesStatus: AnyEvent }) => e.labInstancesStatus.labInstance.id === id)).toEqual([]);
    for (const s of [anonymous, stranger, byAdmin, feed]) s.close();
  });

  it('refuses new subscriptions on an open connection once its session is revoked (the connection is closed with 4403)', async () => {
    const session = await createUser(server, { isTrusted: true });
    const { startLab } = await session.client.ok(StartLabDocument, { labId });
    const client = graphqlWsClient(server.wsUrl, session.token);
    const before = subscribeGraphqlWs(client, LabInstanceStatusDocument, { id: startLab.labInstance.id });
    await before.until((e) => e.length === 1);
    await session.client.ok('mutation { logout }');
    const after = subscribeGraphqlWs(client, LabInstanceStatusDocument, { id: startLab.labInstance.id });
    await eventually(() => expect(after.errors).toHaveLength(1));
    // Logout on this replica closes the connection at once (4403); an operation that races it answers UNAUTHENTICATED.
    const [error] = after.errors as Array<{ code?: number }>;
    expect(error?.code === 4403 || JSON.stringify(error).includes('UNAUTHENTICATED'), JSON.stringify(error)).toBe(true);
    before.close();
    await client.dispose();
    await owner.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id }).catch(() => undefined);
    await admin.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
  });

  it('loses no transition when the watches drop in the middle of a start', async () => {
    const { id, sub } = await startAndFollow((id) => subscribeGraphqlWs(graphqlWsClient(server.wsUrl, owner.token), LabInstanceStatusDocument, { id }));
    cluster.faults.dropWatches();
    cluster.readyAll();
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'));
    await owner.client.ok(StopLabInstanceDocument, { id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
    sub.close();
  });

  it('relists after 410 Gone and reaches the right state', async () => {
    const { id, sub } = await startAndFollow((id) => subscribeGraphqlWs(graphqlWsClient(server.wsUrl, owner.token), LabInstanceStatusDocument, { id }));
    // READY follows the VMI (Running, Ready=True): the VMI watch's relist is what brings it.
    const listsBefore = cluster.requestCounts()['list virtualmachineinstances'] ?? 0;
    cluster.faults.stallWatches(true);
    cluster.readyAll();
    cluster.faults.compact();
    cluster.faults.dropWatches();
    cluster.faults.stallWatches(false);
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'));
    expect(cluster.requestCounts()['list virtualmachineinstances']).toBeGreaterThan(listsBefore);
    await owner.client.ok(StopLabInstanceDocument, { id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
  });

  it('is not ready while the Kubernetes API is down, and catches up when it is back', async () => {
    const readyz = () => fetch(server.url.replace('/graphql', '/readyz')).then((r) => r.status);
    const { id, sub } = await startAndFollow((id) => subscribeGraphqlWs(graphqlWsClient(server.wsUrl, owner.token), LabInstanceStatusDocument, { id }));
    cluster.faults.down();
    await eventually(async () => expect(await readyz()).toBe(503), 10_000);
    cluster.readyAll();
    cluster.faults.up();
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'));
    await eventually(async () => expect(await readyz()).toBe(200), 10_000);
    await owner.client.ok(StopLabInstanceDocument, { id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
  });

  it('shows a pod deleted with kubectl as a failed VM', async () => {
    const { id, namespace, sub } = await startAndFollow((id) =>
      subscribeGraphqlWs(graphqlWsClient(server.wsUrl, owner.token), LabInstanceStatusDocument, { id }),
    );
    cluster.readyAll();
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'));
    const k = kubectl(cluster.url);
    const pods = JSON.parse(await k('get', 'pods', '-n', namespace, '-o', 'json')).items as { metadata: { name: string } }[];
    const victim = pods.find((p) => p.metadata.name.startsWith('virt-launcher-client-a-'))!;
    await k('delete', 'pod', '-n', namespace, victim.metadata.name, '--wait=false');
    const events = await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'FAILED'));
    const failed = events.map((e) => e.labInstanceStatus).find((e) => e.status === 'FAILED')!;
    expect(failed.vms.find((vm) => vm.name === 'client-a')?.phase).toBe('FAILED');
    expect(failed.labInstance.status).toBe('FAILED');
    await owner.client.ok(StopLabInstanceDocument, { id });
    await sub.until(() => sub.completed);
  });

  it('shows a namespace deleted with kubectl and ends the subscription after STOPPED', async () => {
    const { namespace, sub } = await startAndFollow((id) => subscribeLegacy(server.wsUrl, owner.token, LabInstanceStatusDocument, { id }));
    const k = kubectl(cluster.url);
    expect(await k('get', 'namespace', namespace, '-o', 'name')).toContain(namespace);
    await k('delete', 'namespace', namespace, '--wait=false');
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
    expect(statuses(one(sub))).toEqual(['STARTING', 'STOPPING', 'STOPPED']);
    await eventually(() => expect(sub.completed).toBe(true));
  });

  it('restarts a watch that goes silent and catches up', async () => {
    const { id, sub } = await startAndFollow((id) => subscribeGraphqlWs(graphqlWsClient(server.wsUrl, owner.token), LabInstanceStatusDocument, { id }));
    const watchesBefore = cluster.requestCounts()['watch pods'] ?? 0;
    cluster.faults.stallWatches(true);
    cluster.readyAll();
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'), 15_000);
    expect(cluster.requestCounts()['watch pods']).toBeGreaterThan(watchesBefore);
    cluster.faults.stallWatches(false);
    await owner.client.ok(StopLabInstanceDocument, { id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
  });

  it('stops an instance whose lifetime is over, and says why', async () => {
    const { id, sub } = await startAndFollow((id) => subscribeGraphqlWs(graphqlWsClient(server.wsUrl, owner.token), LabInstanceStatusDocument, { id }));
    const em = server.app.deps.orm.em.fork();
    await em.nativeUpdate(LabInstance, { id: Number(id) }, { expiresAt: new Date(Date.now() - 1000) });
    const events = await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
    expect(statuses(events.map((e) => e.labInstanceStatus))).toEqual(['STARTING', 'STOPPING', 'STOPPED']);
    const { labInstance } = await owner.client.ok(LabInstanceDocument, { id });
    expect(labInstance?.statusMessage).toMatch(/lifetime is over/);
  });

  it('deletes the namespace of a failed start when the rollback could not', async () => {
    cluster.faults.failRequest({ verb: 'create', resource: 'virtualmachineinstances', nth: 2 }, 500);
    cluster.faults.failRequest({ verb: 'delete', resource: 'namespaces' }, 500);
    await owner.client.fails(StartLabDocument, { labId }, 'KUBERNETES_ERROR');
    const failed = (await owner.client.ok(LabInstancesDocument, { first: 1 })).labInstances.edges[0].node;
    expect(failed.status).toBe('FAILED');
    await eventually(() => expect(cluster.get('namespaces', undefined, failed.namespace)).toBeUndefined(), 10_000);
    cluster.faults.clear();
  });

  it('holds one watch per kind whatever the number of subscribers', async () => {
    const clients = Array.from({ length: 25 }, () => subscribeGraphqlWs(graphqlWsClient(server.wsUrl, admin.token), LabInstancesStatusDocument));
    await eventually(() => expect(server.app.deps.events.listenerCount()).toBeGreaterThanOrEqual(25));
    const { startLab } = await owner.client.ok(StartLabDocument, { labId });
    const seen = (e: { labInstancesStatus: AnyEvent }[]) => e.some((x) => x.labInstancesStatus.labInstance.id === startLab.labInstance.id);
    await Promise.all(clients.map((c) => c.until(seen)));
    expect(cluster.openWatches('pods')).toBe(1);
    expect(cluster.openWatches('namespaces')).toBe(1);
    expect(cluster.openWatches('virtualmachineinstances')).toBe(1);
    for (const c of clients) c.close();
    await owner.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
  });

  it('delivers every change to subscribers of a second replica on the same database and cluster', async () => {
    const [host, port] = new URL(cluster.url).host.split(':');
    const replica = await startTestServer(
      engine,
      { KUBERNETES_MODE: 'proxy', KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port, STATUS_RESYNC_SECONDS: '0.5' },
      { databaseEnv: (server as TestServer & { databaseEnv: Record<string, string> }).databaseEnv },
    );
    try {
      const feed = subscribeGraphqlWs(graphqlWsClient(replica.wsUrl, admin.token), LabInstancesStatusDocument);
      await new Promise((r) => setTimeout(r, 50));
      const { startLab } = await owner.client.ok(StartLabDocument, { labId });
      const id = startLab.labInstance.id;
      const onReplica = subscribeGraphqlWs(graphqlWsClient(replica.wsUrl, owner.token), LabInstanceStatusDocument, { id });
      await onReplica.until((e) => e.length > 0);
      cluster.readyAll();
      await onReplica.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'));
      await owner.client.ok(StopLabInstanceDocument, { id }); // on the first replica
      await onReplica.until((e) => e.some((x) => x.labInstanceStatus.status === 'STOPPED'));
      await feed.until((e) => e.some((x) => x.labInstancesStatus.labInstance.id === id && x.labInstancesStatus.status === 'STOPPED'));
      feed.close();
    } finally {
      await replica.stop();
    }
  });

  // 60 s: the simulated cluster now takes each of the 150 VMIs through KubeVirt's seven writes.
  it('brings a burst of 150 instances to READY in batched writes (40 a statement here), publishing each READY once', { timeout: 60_000 }, async () => {
    const soloLab = (await createLabWithVms(admin.client, ['solo'])).lab.id;
    const dashboard = subscribeGraphqlWs(graphqlWsClient(server.wsUrl, admin.token), LabInstancesStatusDocument);
    await new Promise((r) => setTimeout(r, 50));
    const ids: string[] = [];
    for (let i = 0; i < 150; i += 15) {
      const started = await Promise.all(Array.from({ length: 15 }, () => owner.client.ok(StartLabDocument, { labId: soloLab })));
      ids.push(...started.map((s) => s.startLab.labInstance.id));
    }
    const mine = new Set(ids);
    const readyEvents = (events: { labInstancesStatus: AnyEvent }[]) =>
      events.filter((e) => mine.has(e.labInstancesStatus.labInstance.id) && e.labInstancesStatus.status === 'READY');
    await eventually(async () => {
      const rows = await server.app.deps.orm.em.fork().find(LabInstance, { id: { $in: ids.map(Number) } });
      expect(rows.every((r) => r.status === 'STARTING')).toBe(true);
    });
    cluster.readyAll();
    const events = await dashboard.until((e) => new Set(readyEvents(e).map((x) => x.labInstancesStatus.labInstance.id)).size === ids.length);
    await new Promise((r) => setTimeout(r, 600)); // a resync pass (every 0.5 s here) must not publish READY again
    expect(readyEvents(events)).toHaveLength(ids.length);
    const rows = await server.app.deps.orm.em.fork().find(LabInstance, { id: { $in: ids.map(Number) } });
    expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'READY'));
    dashboard.close();
    await Promise.all(ids.map((id) => owner.client.ok(StopLabInstanceDocument, { id })));
  });
});

describe.each(ENGINES)('WebSocket sessions on %s', (engine) => {
  it('closes the connections of a session that has ended, with their running subscriptions', async () => {
    const server = await startTestServer(engine, { WS_SESSION_CHECK_SECONDS: '0.1' });
    try {
      const admin = await createAdmin(server);
      const [leaving, staying, deactivated] = await Promise.all(
        [1, 2, 3].map(() => createUser(server, { isTrusted: true })),
      );
      const labId = (await createLabWithVms(admin.client, ['vm'])).lab.id;
      const follow = async (user: TestUser) => {
        const { startLab } = await user.client.ok(StartLabDocument, { labId });
        const id = startLab.labInstance.id;
        const modern = subscribeGraphqlWs(graphqlWsClient(server.wsUrl, user.token), LabInstanceStatusDocument, { id });
        const legacy = subscribeLegacy(server.wsUrl, user.token, LabInstanceStatusDocument, { id });
        await Promise.all([modern.until((e) => e.length > 0), legacy.until((e) => e.length > 0)]);
        return { modern, legacy };
      };
      const [gone, kept, barred] = await Promise.all([follow(leaving), follow(staying), follow(deactivated)]);
      await leaving.client.ok('mutation { logout }');
      await admin.client.ok(`mutation { updateUser(id: "${deactivated.user.id}", input: { isActive: false }) { id } }`);
      for (const ended of [gone, barred]) {
        await eventually(() => expect(ended.modern.errors).toHaveLength(1));
        expect((ended.modern.errors[0] as { code?: number }).code).toBe(4403);
        await eventually(() => expect(ended.legacy.disconnected).toBe(true));
      }
      await new Promise((r) => setTimeout(r, 300)); // three more checks: the other user's connections stay open
      expect([kept.modern.completed, kept.modern.errors.length, kept.legacy.disconnected]).toEqual([false, 0, false]);
      expect(server.app.deps.events.listenerCount()).toBe(2); // the kept user's two subscriptions
      for (const s of [gone, kept, barred].flatMap((f) => [f.modern, f.legacy])) s.close();
      await eventually(() => expect(server.app.deps.events.listenerCount()).toBe(0));
    } finally {
      await server.stop();
    }
  });
});

describe('WebSocket keep-alive', () => {
  it('pings clients of both protocols at the configured interval (at most every 15 s)', async () => {
    const { default: WebSocket } = await import('ws');
    const server = await startTestServer('sqlite', { WS_KEEPALIVE_SECONDS: '0.2' });
    const firstMessageOfType = (protocol: string, init: object, type: string) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(server.wsUrl, protocol);
        ws.on('open', () => ws.send(JSON.stringify(init)));
        const done = () => {
          ws.close();
          resolve();
        };
        // graphql-ws pings with WebSocket ping frames; subscriptions-transport-ws with "ka" messages.
        if (type === 'ping-frame') ws.on('ping', done);
        ws.on('message', (raw) => JSON.parse(raw.toString()).type === type && done());
        ws.on('error', reject);
      });
    try {
      await firstMessageOfType('graphql-transport-ws', { type: 'connection_init', payload: {} }, 'ping-frame');
      await firstMessageOfType('graphql-ws', { type: 'connection_init', payload: {} }, 'ka');
    } finally {
      await server.stop();
    }
  });
});
