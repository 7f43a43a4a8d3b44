import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabInstance } from '../src/entities/index.js';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { LabInstanceStatusDocument, LoginDocument, MeDocument, StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { uniqueEmail } from './support/accounts.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { codesOf, openInitialised, rawOperation, wsExecute } from './support/hardening/ws.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { graphqlWsClient, subscribeGraphqlWs } from './support/subscriptions.js';
import { eventually } from './support/wait.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, as a scraper reads it: comments, then `name{label="value",...} number`. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

describe.each(ENGINES)('metrics on %s', (engine) => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer(engine, {
      MAX_INSTANCES_PER_USER: '1',
      RATE_LIMIT_LOGIN: '1/300',
      STATUS_RESYNC_SECONDS: '0.2',
      LEADER_RETRY_SECONDS: '0.2',
      WS_MAX_SUBSCRIPTIONS: '1',
    });
    cluster = server.app.simulated!;
    [admin, user] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
  });
  afterAll(() => server?.stop());

  const scrape = async () => {
    const res = await fetch(server.url.replace('/graphql', '/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(await res.text());
  };
  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

  it('serves Prometheus text whose figures match a scripted session', { timeout: 30_000 }, async () => {
    await eventually(() => expect(server.app.leader.isLeader).toBe(true));
    const { lab } = await createLabWithVms(admin.client, ['a', 'b']);
    // One start that reaches READY, followed live by one subscription.
    const { startLab } = await user.client.ok(StartLabDocument, { labId: lab.id });
    const ws = graphqlWsClient(server.wsUrl, user.token);
    const sub = subscribeGraphqlWs(ws, LabInstanceStatusDocument, { id: startLab.labInstance.id });
    await sub.until((e) => e.some((x) => x.labInstanceStatus.status === 'READY'), 10_000);
    // A refusal by quota, one by rate limit, and one start that Kubernetes refuses.
    await user.client.fails(StartLabDocument, { labId: lab.id }, 'QUOTA_EXCEEDED');
    await server.client().fails(LoginDocument, { email: 'nobody@example.org', password: 'wrong password 1' }, 'UNAUTHENTICATED');
    await server.client().fails(LoginDocument, { email: 'nobody@example.org', password: 'wrong password 2' }, 'RATE_LIMITED');
    cluster.faults.failRequest({ verb: 'create', resource: 'namespaces' }, 500);
    await admin.client.fails(StartLabDocument, { labId: lab.id }, 'KUBERNETES_ERROR');

    const { samples, types } = await scrape();
    const rows = await server.app.deps.orm.em.fork().find(LabInstance, {});
    for (const status of ['READY', 'FAILED']) {
      expect(value(samples, 'lab_orchestrator_instances', { status })).toBe(rows.filter((r) => r.status === status).length);
    }
    expect(value(samples, 'lab_orchestrator_instances', { status: 'READY' })).toBe(1);
    expect(types.get('lab_orchestrator_instance_start_seconds')).toBe('histogram');
    expect(value(samples, 'lab_orchestrator_instance_start_seconds_count')).toBe(1);
    const startSeconds = value(samples, 'lab_orchestrator_instance_start_seconds_sum');
    expect(startSeconds).toBeGreaterThan(0);
    expect(startSeconds).toBeLessThan(10);
    expect(value(samples, 'lab_orchestrator_instance_start_failures_total', { reason: 'kubernetes_error' })).toBe(1);
    expect(value(samples, 'lab_orchestrator_graphql_operations_total', { operation: 'StartLab', type: 'mutation', transport: 'http', code: 'OK' })).toBe(1);
    expect(value(samples, 'lab_orchestrator_graphql_operations_total', { operation: 'StartLab', transport: 'http', code: 'QUOTA_EXCEEDED' })).toBe(1);
    expect(value(samples, 'lab_orchestrator_graphql_operations_total', { operation: 'StartLab', transport: 'http', code: 'KUBERNETES_ERROR' })).toBe(1);
    expect(value(samples, 'lab_orchestrator_graphql_operation_seconds_count', { operation: 'StartLab', transport: 'http' })).toBe(3);
    expect(value(samples, 'lab_orchestrator_refusals_total', { code: 'QUOTA_EXCEEDED', quota: 'instancesPerUser' })).toBe(1);
    expect(value(samples, 'lab_orchestrator_refusals_total', { code: 'RATE_LIMITED' })).toBe(1);
    expect(value(samples, 'lab_orchestrator_websocket_connections')).toBe(1);
    expect(value(samples, 'lab_orchestrator_subscriptions')).toBe(1);
    expect(value(samples, 'lab_orchestrator_leader')).toBe(1);
    expect(value(samples, 'lab_orchestrator_duty_runs_total', { duty: 'expiry' })).toBeGreaterThan(0);
    for (const kind of ['namespaces', 'pods', 'virtualmachineinstances']) {
      expect(value(samples, 'lab_orchestrator_watch_relists_total', { kind })).toBeGreaterThanOrEqual(1);
    }
    expect(value(samples, 'lab_orchestrator_reconcile_pass_seconds_count')).toBeGreaterThan(0);

    // After the stop, the gauges follow.
    await user.client.ok(StopLabInstanceDocument, { id: startLab.labInstance.id });
    await sub.until(() => sub.completed, 10_000);
    await ws.dispose();
    await eventually(async () => {
      const after = (await scrape()).samples;
      expect(value(after, 'lab_orchestrator_instances', { status: 'STOPPED' })).toBe(1);
      expect(value(after, 'lab_orchestrator_subscriptions')).toBe(0);
      expect(value(after, 'lab_orchestrator_websocket_connections')).toBe(0);
    });
  });

  it('counts operations over both WebSocket protocols by transport, each refusal once, and follows their sockets and subscriptions', { timeout: 30_000 }, async () => {
    const { lab } = await createLabWithVms(admin.client, ['a']);
    const student = await createUser(server, { isTrusted: true });
    const before = (await scrape()).samples;
    const change = (after: Sample[], name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);
    const ops = (after: Sample[], labels: Record<string, string>) => change(after, 'lab_orchestrator_graphql_operations_total', labels);

    // graphql-transport-ws: a query, a start, one refused by the quota, one over-long operation name,
    // a subscription the client completes later, and one refused (WS_MAX_SUBSCRIPTIONS=1).
    const modern = graphqlWsClient(server.wsUrl, student.token);
    expect(codesOf(await wsExecute(modern, MeDocument))).toEqual([]);
    const started = await wsExecute(modern, StartLabDocument, { labId: lab.id });
    const id = started.data!.startLab.labInstance.id;
    expect(codesOf(await wsExecute(modern, StartLabDocument, { labId: lab.id }))).toEqual(['QUOTA_EXCEEDED']);
    expect(codesOf(await wsExecute(modern, `query ${'Long'.repeat(40)} { __typename }`))).toEqual([]);
    const followed = subscribeGraphqlWs(modern, LabInstanceStatusDocument, { id });
    await followed.until((e) => e.length >= 1);
    expect(codesOf(await wsExecute(modern, LabInstanceStatusDocument, { id }))).toEqual(['RATE_LIMITED']);

    // The legacy protocol: a query, a login refused by its rate limit after one wrong password, a subscription.
    const legacy = await openInitialised(server.wsUrl, 'graphql-ws', student.token);
    expect(codesOf(await rawOperation(legacy, MeDocument))).toEqual([]);
    const email = uniqueEmail('metrics');
    expect(codesOf(await rawOperation(legacy, LoginDocument, { email, password: 'wrong password 1' }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await rawOperation(legacy, LoginDocument, { email, password: 'wrong password 2' }))).toEqual(['RATE_LIMITED']);
    const first = await rawOperation(legacy, LabInstanceStatusDocument, { id });
    expect(first.data.labInstanceStatus.labInstance.id).toBe(id);
    const during = (await scrape()).samples;
    expect(change(during, 'lab_orchestrator_websocket_connections')).toBe(2);
    expect(change(during, 'lab_orchestrator_subscriptions')).toBe(2);

    // Ended by the client: stop (legacy), complete (graphql-ws), and a legacy start stopped while it is set up.
    legacy.send({ id: first.id, type: 'stop' });
    followed.close();
    legacy.send({ id: 'stopped-early', type: 'start', payload: { query: print(LabInstanceStatusDocument), variables: { id } } });
    legacy.send({ id: 'stopped-early', type: 'stop' });
    await eventually(async () => {
      const after = (await scrape()).samples;
      expect(ops(after, { operation: 'LabInstanceStatus', transport: 'ws-legacy' })).toBe(2); // both set up
      expect(change(after, 'lab_orchestrator_subscriptions')).toBe(0);
    });
    // The legacy socket may run a subscription again (none is left over), then closes with it running.
    const last = await rawOperation(legacy, LabInstanceStatusDocument, { id });
    expect(codesOf(last)).toEqual([]);
    expect(change((await scrape()).samples, 'lab_orchestrator_subscriptions')).toBe(1);
    legacy.close();
    await legacy.closed;
    await modern.dispose();
    await eventually(async () => {
      const after = (await scrape()).samples;
      expect(change(after, 'lab_orchestrator_subscriptions')).toBe(0);
      expect(change(after, 'lab_orchestrator_websocket_connections')).toBe(0);
    });

    const { samples } = await scrape();
    expect(ops(samples, { operation: 'Me', type: 'query', transport: 'ws', code: 'OK' })).toBe(1);
    expect(ops(samples, { operation: 'StartLab', type: 'mutation', transport: 'ws', code: 'OK' })).toBe(1);
    expect(ops(samples, { operation: 'StartLab', type: 'mutation', transport: 'ws', code: 'QUOTA_EXCEEDED' })).toBe(1);
    expect(ops(samples, { operation: 'other', type: 'query', transport: 'ws', code: 'OK' })).toBe(1);
    expect(ops(samples, { operation: 'LabInstanceStatus', type: 'subscription', transport: 'ws', code: 'OK' })).toBe(1);
    expect(ops(samples, { operation: 'LabInstanceStatus', type: 'subscription', transport: 'ws', code: 'RATE_LIMITED' })).toBe(1);
    expect(ops(samples, { transport: 'ws' })).toBe(6);
    expect(ops(samples, { operation: 'Me', type: 'query', transport: 'ws-legacy', code: 'OK' })).toBe(1);
    expect(ops(samples, { operation: 'Login', type: 'mutation', transport: 'ws-legacy', code: 'UNAUTHENTICATED' })).toBe(1);
    expect(ops(samples, { operation: 'Login', type: 'mutation', transport: 'ws-legacy', code: 'RATE_LIMITED' })).toBe(1);
    expect(ops(samples, { operation: 'LabInstanceStatus', type: 'subscription', transport: 'ws-legacy', code: 'OK' })).toBe(3);
    expect(ops(samples, { transport: 'ws-legacy' })).toBe(6);
    expect(ops(samples, { transport: 'http' })).toBe(0); // nothing counted twice
    for (const transport of ['ws', 'ws-legacy']) {
      expect(change(samples, 'lab_orchestrator_graphql_operation_seconds_count', { transport })).toBe(6);
    }
    expect(samples.filter((s) => s.name.startsWith('lab_orchestrator_graphql_operation') && s.labels.operation?.length > 100)).toEqual([]);
    expect(change(samples, 'lab_orchestrator_refusals_total', { code: 'QUOTA_EXCEEDED', quota: 'instancesPerUser' })).toBe(1);
    expect(change(samples, 'lab_orchestrator_refusals_total', { code: 'RATE_LIMITED' })).toBe(2);
  });
});
