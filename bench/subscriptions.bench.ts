/**
 * Issue 5's benchmark: N concurrent `labInstanceStatus` subscribers spread over 500 lab instances on
 * one server process, then the simulated cluster turns every pod Ready in one burst. The server runs
 * in a child process (with --expose-gc, for the memory figures); the subscribers are raw WebSockets in
 * this process. Each N gets a fresh database and a fresh server process, so that one round's heap
 * does not blur the next one's memory figures.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createDatabase } from '../test/support/postgres.js';
import { gql, waitUntilReady } from './support/graphql.js';
import { seedUsersAndLab } from './support/seed.js';
import { forkServer, type ServerChild } from './support/server-child.js';
import { serverEnv } from './support/server-env.js';
import type { Usage } from './support/server-process.js';
import { distribution, mapLimit, sleep, type Distribution } from './support/stats.js';
import { SubscriberPool, type SocketPlan } from './support/subscribers.js';

/** What a status dashboard asks for. */
export const STATUS_SUBSCRIPTION =
  'subscription Status($id: ID!) { labInstanceStatus(id: $id) { at status ready vms { name phase ready } } }';
const LOGIN = 'mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) { token } }';
const START_LAB = 'mutation Start($labId: ID!) { startLab(labId: $labId) { labInstance { id status } } }';
const PASSWORD = 'bench-password-long-enough-1';

export interface RoundPlan {
  subscribers: number;
  /** Subscriptions sharing one WebSocket (graphql-ws multiplexes operations). */
  operationsPerSocket: number;
}

export interface SubscriptionOptions {
  instances: number;
  users: number;
  rounds: RoundPlan[];
  /** When set, each round's burst is CPU-profiled into this directory. */
  profileDir?: string;
}

export interface MemoryUsage {
  rss: number;
  heapUsed: number;
  external: number;
}

export interface RoundResult {
  subscribers: number;
  sockets: number;
  operationsPerSocket: number;
  instances: number;
  connectMs: number;
  /** Share of the connect phase during which the server's event loop was busy. */
  connectElu: number;
  /** Bytes per idle subscription: after minus before, divided by N, after forced GC. */
  perSubscription: { heap: number; rss: number };
  serverIdle: MemoryUsage;
  readyReceived: number;
  /** Event to client: the burst's watch events handed to the watch connections -> client received READY. */
  latency: Distribution;
  /** readyAll() called (before the simulated cluster changed anything) -> client received READY. */
  fromBurstStart: Distribution;
  /** Events handed to the watch connections -> server published READY (the event's `at`). */
  toPublish: Distribution;
  /** Server published READY (`at`) -> client received it. */
  delivery: Distribution;
  /** next messages received during the burst, over all subscriptions. */
  eventsDelivered: number;
  watches: { beforeSubscribers: number; idle: number; afterBurst: number };
  listenersIdle: number;
  burst: { serverCpuMs: number; serverElu: number; clientElu: number; readyAllMs: number; emitMs: number };
  /** The same sockets and subscriptions served by a bare ws server (baseline-fanout.ts). */
  baseline: { latency: Distribution; sendMs: number };
  errors: string[];
}

interface Fixtures {
  labId: string;
  emails: string[];
}

/** Subscriptions per socket for one user's instances: each copy of the list in turn, chunked. */
function planSockets(tokens: string[], instancesByUser: string[][], perInstance: number, perSocket: number): SocketPlan[] {
  const plans: SocketPlan[] = [];
  tokens.forEach((token, u) => {
    const ops = Array.from({ length: perInstance }, () => instancesByUser[u]).flat();
    for (let i = 0; i < ops.length; i += perSocket) plans.push({ token, instanceIds: ops.slice(i, i + perSocket) });
  });
  return plans;
}

async function startInstances(url: string, tokens: string[], labId: string, perUser: number): Promise<string[][]> {
  const jobs = tokens.flatMap((token, u) => Array.from({ length: perUser }, () => ({ token, u })));
  const byUser: string[][] = tokens.map(() => []);
  await mapLimit(jobs, 8, async ({ token, u }) => {
    const { startLab } = await gql<{ startLab: { labInstance: { id: string } } }>(url, START_LAB, { labId }, token);
    byUser[u].push(startLab.labInstance.id);
  });
  return byUser;
}

const pick = (m: NodeJS.MemoryUsage): MemoryUsage => ({ rss: m.rss, heapUsed: m.heapUsed, external: m.external });
const memory = async (server: ServerChild) => pick(await server.call<NodeJS.MemoryUsage>('memory'));
const watches = (cluster: ServerChild) => cluster.call<number>('cluster.openWatches');

/** Starts the server, logs every user in and starts the instances, each waiting in STARTING. */
async function setUp(server: ServerChild, cluster: ServerChild, env: Record<string, string>, fixtures: Fixtures, o: SubscriptionOptions) {
  const { url } = await server.call<{ url: string }>('app.start', { env });
  await cluster.call('cluster.setAutoProgress', { enabled: false });
  await waitUntilReady(url);
  const tokens = await mapLimit(fixtures.emails, 4, async (email) =>
    (await gql<{ login: { token: string } }>(url, LOGIN, { email, password: PASSWORD })).login.token,
  );
  const instancesByUser = await startInstances(url, tokens, fixtures.labId, o.instances / o.users);
  await sleep(1500); // the reconciler's first pass over the new instances settles
  return { url, tokens, instancesByUser };
}

/** Opens every subscription and measures what the idle subscribers cost the server. */
async function connectIdle(server: ServerChild, cluster: ServerChild, pool: SubscriberPool, plans: SocketPlan[]) {
  const before = await memory(server);
  const usage = await server.call<Usage>('usage');
  const started = Date.now();
  await pool.open(plans, 64);
  const connectMs = Date.now() - started;
  const connectElu = performance.eventLoopUtilization((await server.call<Usage>('usage')).elu, usage.elu).utilization;
  await sleep(1000);
  const idle = await memory(server);
  const perSubscription = {
    heap: (idle.heapUsed + idle.external - before.heapUsed - before.external) / pool.operations,
    rss: (idle.rss - before.rss) / pool.operations,
  };
  return { connectMs, connectElu, idle, perSubscription, watches: await watches(cluster), listeners: await server.call<number>('events.listeners') };
}

/** Turns every pod Ready at once and waits until every subscription has seen READY. */
async function burst(server: ServerChild, cluster: ServerChild, pool: SubscriberPool, profileFile: string | undefined) {
  const messagesBefore = pool.nextMessages;
  const usage0 = await server.call<Usage>('usage');
  const clientElu0 = performance.eventLoopUtilization();
  if (profileFile) await server.call('profile.start');
  const { t0, t1, emitted } = await cluster.call<{ t0: number; t1: number; emitted: number }>('cluster.readyAll');
  const timedOut = await pool.waitForAllReady(60_000).then(() => undefined, (err: Error) => err.message);
  const clientElu = performance.eventLoopUtilization(clientElu0).utilization;
  const usage1 = await server.call<Usage>('usage');
  if (profileFile) await server.call('profile.stop', { file: profileFile });
  const latency: number[] = [];
  const fromBurstStart: number[] = [];
  const toPublish: number[] = [];
  const delivery: number[] = [];
  pool.readyReceivedAt.forEach((received, i) => {
    if (Number.isNaN(received)) return;
    latency.push(received - emitted);
    fromBurstStart.push(received - t0);
    toPublish.push(pool.readyEventAt[i] - emitted);
    delivery.push(received - pool.readyEventAt[i]);
  });
  return {
    latency: distribution(latency),
    fromBurstStart: distribution(fromBurstStart),
    toPublish: distribution(toPublish),
    delivery: distribution(delivery),
    eventsDelivered: pool.nextMessages - messagesBefore,
    timedOut,
    usage: {
      serverCpuMs: usage1.cpuMs - usage0.cpuMs,
      serverElu: performance.eventLoopUtilization(usage1.elu, usage0.elu).utilization,
      clientElu,
      readyAllMs: t1 - t0,
      emitMs: emitted - t0,
    },
  };
}

/**
 * The baseline, in the same run: the same socket plan against a bare ws server in a fresh process,
 * which sends each subscription one READY message; latency from just before its first send.
 */
async function baselineBurst(plans: SocketPlan[], operations: number): Promise<RoundResult['baseline']> {
  const child = await forkServer();
  try {
    const { url } = await child.call<{ url: string }>('fanoutBaseline.start');
    const pool = new SubscriberPool(url.replace(/^http/, 'ws'), STATUS_SUBSCRIPTION, operations);
    try {
      await pool.open(plans, 64);
      await sleep(500);
      const { t0, t1 } = await child.call<{ t0: number; t1: number }>('fanoutBaseline.burst');
      await pool.waitForAllReady(60_000);
      return { latency: distribution(Array.from(pool.readyReceivedAt, (received) => received - t0)), sendMs: t1 - t0 };
    } finally {
      await pool.close();
    }
  } finally {
    await child.stop();
  }
}

async function round(
  server: ServerChild,
  cluster: ServerChild,
  env: Record<string, string>,
  fixtures: Fixtures,
  o: SubscriptionOptions,
  plan: RoundPlan,
): Promise<RoundResult> {
  const { url, tokens, instancesByUser } = await setUp(server, cluster, env, fixtures, o);
  const watchesBefore = await watches(cluster);
  const plans = planSockets(tokens, instancesByUser, plan.subscribers / o.instances, plan.operationsPerSocket);
  const pool = new SubscriberPool(url.replace(/^http/, 'ws'), STATUS_SUBSCRIPTION, plan.subscribers);
  let b: Awaited<ReturnType<typeof burst>>;
  let idle: Awaited<ReturnType<typeof connectIdle>>;
  let watchesAfter: number;
  try {
    idle = await connectIdle(server, cluster, pool, plans);
    const profile = o.profileDir && join(o.profileDir, `subscriptions-${plan.subscribers}x${plan.operationsPerSocket}.cpuprofile`);
    b = await burst(server, cluster, pool, profile);
    watchesAfter = await watches(cluster);
  } finally {
    await pool.close();
  }
  const baseline = await baselineBurst(plans, plan.subscribers);
  return {
    subscribers: plan.subscribers,
    sockets: pool.socketCount,
    operationsPerSocket: plan.operationsPerSocket,
    instances: o.instances,
    connectMs: idle.connectMs,
    connectElu: idle.connectElu,
    perSubscription: idle.perSubscription,
    serverIdle: idle.idle,
    readyReceived: pool.ready,
    latency: b.latency,
    fromBurstStart: b.fromBurstStart,
    toPublish: b.toPublish,
    delivery: b.delivery,
    eventsDelivered: b.eventsDelivered,
    watches: { beforeSubscribers: watchesBefore, idle: idle.watches, afterBurst: watchesAfter },
    listenersIdle: idle.listeners,
    burst: b.usage,
    baseline,
    errors: [...pool.errors.slice(0, 5), ...(b.timedOut ? [b.timedOut] : [])],
  };
}

export async function runSubscriptionBench(postgresBaseUrl: string, o: SubscriptionOptions, log: (line: string) => void): Promise<RoundResult[]> {
  const results: RoundResult[] = [];
  for (const plan of o.rounds) {
    const db = await createDatabase(postgresBaseUrl, 'lo_bench_subs_');
    try {
      // The simulated Kubernetes API runs in a process of its own, as a real API server would.
      const cluster = await forkServer();
      const { url: clusterUrl } = await cluster.call<{ url: string }>('cluster.start', { vmReadySeconds: 1 });
      const api = new URL(clusterUrl);
      const env = serverEnv(db.url, { KUBERNETES_MODE: 'proxy', KUBERNETES_SERVICE_HOST: api.hostname, KUBERNETES_SERVICE_PORT: api.port });
      const fixtures: Fixtures = await seedUsersAndLab(env, o.users, PASSWORD);
      const server = await forkServer();
      try {
        log(`${plan.subscribers} subscribers, ${plan.operationsPerSocket} per socket, over ${o.instances} instances`);
        const result = await round(server, cluster, env, fixtures, o, plan);
        log(`  READY p50 ${result.latency.p50.toFixed(1)} ms, p99 ${result.latency.p99.toFixed(1)} ms; ${(result.perSubscription.heap / 1024).toFixed(1)} KB heap per subscription`);
        results.push(result);
      } finally {
        await server.stop();
        await cluster.stop();
      }
    } finally {
      await db.drop();
    }
  }
  return results;
}
