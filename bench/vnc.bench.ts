/**
 * The VNC console proxy against a direct connection to the same VNC endpoint, in one run: a client
 * reads the simulated VM's framebuffer (raw encoding, 800x600x32 bits: 1.9 MB a frame) through KubeVirt's
 * VNC subresource of the simulated cluster directly, and through the server's proxy
 * (`/<token>/<vm>`). The simulated Kubernetes API runs in a process of its own, the server in another,
 * the client in this one, as in the subscription benchmark.
 *
 * - Throughput: full-frame update requests kept 4 deep for `seconds`, in alternating rounds (direct,
 *   proxied, ...); the ratio is the median of each proxied round over the direct round before it.
 *   Target: the proxy at least 0.8 of direct.
 * - Latency: one 1x1 update request at a time, request to complete answer; the proxy's added latency
 *   is the difference of the medians.
 */
import { createDatabase } from '../test/support/postgres.js';
import { gql, waitUntilReady } from './support/graphql.js';
import { RfbTestClient } from './support/rfb-client.js';
import { seedUsersAndLab } from './support/seed.js';
import { forkServer } from './support/server-child.js';
import { serverEnv } from './support/server-env.js';
import { distribution, fmt, markdownTable, sleep, type Distribution } from './support/stats.js';

export interface VncOptions {
  rounds: number;
  seconds: number;
  depth: number;
  latencySamples: number;
}

export const VNC_DEFAULTS: VncOptions = { rounds: 5, seconds: 3, depth: Number(process.env.BENCH_VNC_DEPTH ?? 4), latencySamples: 2000 };

interface PathResult {
  /** Bytes per second received, per round. */
  throughput: number[];
  latency: Distribution;
}

export interface VncResult {
  options: VncOptions;
  frameBytes: number;
  direct: PathResult;
  proxied: PathResult;
}

const PASSWORD = 'bench-password-not-common-42';
/** KubeVirt's subresource speaks plain.kubevirt.io; the proxy, noVNC's binary. */
const protocolsFor = (url: string) => (url.includes('/apis/subresources.kubevirt.io/') ? ['plain.kubevirt.io'] : ['binary']);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function throughput(url: string, seconds: number, depth: number): Promise<number> {
  const client = await RfbTestClient.connect(url, { protocols: protocolsFor(url) });
  try {
    for (let i = 0; i < depth; i++) client.requestUpdate(false);
    const warmUntil = Date.now() + 500;
    while (Date.now() < warmUntil) {
      await client.readUpdate();
      client.requestUpdate(false);
    }
    const start = performance.now();
    const bytes0 = client.received;
    const until = start + seconds * 1000;
    while (performance.now() < until) {
      await client.readUpdate();
      client.requestUpdate(false);
    }
    return ((client.received - bytes0) * 1000) / (performance.now() - start);
  } finally {
    client.close();
    await client.closed;
  }
}

async function latency(url: string, samples: number): Promise<Distribution> {
  const client = await RfbTestClient.connect(url, { protocols: protocolsFor(url) });
  try {
    const times: number[] = [];
    for (let i = 0; i < samples + 100; i++) {
      const t0 = performance.now();
      client.requestUpdate(false, i % 700, 10, 1, 1);
      await client.readUpdate();
      if (i >= 100) times.push(performance.now() - t0);
    }
    return distribution(times);
  } finally {
    client.close();
    await client.closed;
  }
}

export async function runVncBench(postgresBaseUrl: string, o: VncOptions, log: (line: string) => void): Promise<VncResult> {
  const db = await createDatabase(postgresBaseUrl, 'lo_bench_vnc_');
  const cluster = await forkServer();
  const server = await forkServer();
  try {
    const { url: clusterUrl } = await cluster.call<{ url: string }>('cluster.start', { vmReadySeconds: 0.2 });
    const api = new URL(clusterUrl);
    const env = serverEnv(db.url, { KUBERNETES_MODE: 'proxy', KUBERNETES_SERVICE_HOST: api.hostname, KUBERNETES_SERVICE_PORT: api.port });
    const { labId, emails } = await seedUsersAndLab(env, 1, PASSWORD);
    const { url } = await server.call<{ url: string }>('app.start', { env });
    await waitUntilReady(url);
    const { login } = await gql<{ login: { token: string } }>(url, 'mutation ($e: String!, $p: String!) { login(email: $e, password: $p) { token } }', { e: emails[0], p: PASSWORD });
    const { startLab } = await gql<{ startLab: { labInstance: { namespace: string }; vncAccess: { token: string; allowedVms: string[] } } }>(
      url,
      'mutation ($id: ID!) { startLab(labId: $id) { labInstance { namespace } vncAccess { token allowedVms } } }',
      { id: labId },
      login.token,
    );
    const vm = startLab.vncAccess.allowedVms[0];
    const direct = `${clusterUrl.replace(/^http/, 'ws')}/apis/subresources.kubevirt.io/v1/namespaces/${startLab.labInstance.namespace}/virtualmachineinstances/${vm}/vnc`;
    const proxied = `${url.replace(/^http/, 'ws').replace(/\/graphql$/, '')}/${startLab.vncAccess.token}/${vm}`;
    // Until the VM runs, the subresource answers 400.
    for (let i = 0; ; i++) {
      const outcome = await RfbTestClient.connect(direct, { protocols: protocolsFor(direct) }).then(
        (c) => (c.close(), 'ok'),
        (err: Error) => err.message,
      );
      if (outcome === 'ok') break;
      if (i > 100) throw new Error(`the VM never ran: ${outcome}`);
      await sleep(100);
    }
    const probe = await RfbTestClient.connect(direct, { protocols: protocolsFor(direct) });
    const frameBytes = probe.width * probe.height * 4;
    probe.close();
    const result: VncResult = { options: o, frameBytes, direct: { throughput: [], latency: undefined as never }, proxied: { throughput: [], latency: undefined as never } };
    for (let r = 0; r < o.rounds; r++) {
      for (const [name, target] of [['direct', direct], ['proxied', proxied]] as const) {
        const bps = await throughput(target, o.seconds, o.depth);
        result[name].throughput.push(bps);
        log(`  vnc round ${r + 1} ${name}: ${fmt.mb(bps)}/s`);
      }
    }
    result.direct.latency = await latency(direct, o.latencySamples);
    result.proxied.latency = await latency(proxied, o.latencySamples);
    log(`  vnc latency p50 direct ${fmt.ms(result.direct.latency.p50, 3)}, proxied ${fmt.ms(result.proxied.latency.p50, 3)}`);
    return result;
  } finally {
    await server.stop();
    await cluster.stop();
    await db.drop();
  }
}

/** The section of bench/RESULTS.md. */
export function renderVnc(r: VncResult): string {
  const d = median(r.direct.throughput);
  const p = median(r.proxied.throughput);
  // Each proxied round against the direct round just before it: load that drifts over the run cancels out.
  const ratio = median(r.proxied.throughput.map((x, i) => x / r.direct.throughput[i]));
  const added = r.proxied.latency.p50 - r.direct.latency.p50;
  return [
    '## VNC console proxy',
    '',
    `A client reads the simulated VM's framebuffer (raw, ${fmt.mb(r.frameBytes)} a frame), ${r.options.depth} full-frame update requests in flight, ` +
      `${r.options.seconds} s per round, ${r.options.rounds} alternating rounds (median shown): directly from KubeVirt's VNC subresource of the ` +
      'simulated cluster (its own process), and through the server (`/<token>/<vm>`, another process). Latency: one 1x1 update at a time, ' +
      `${r.options.latencySamples} round trips.`,
    '',
    markdownTable(
      ['path', 'throughput (median)', 'rounds', 'latency p50', 'latency p99'],
      [
        ['direct', `${fmt.mb(d)}/s`, r.direct.throughput.map((x) => (x / 2 ** 20).toFixed(0)).join(', '), fmt.ms(r.direct.latency.p50, 3), fmt.ms(r.direct.latency.p99, 3)],
        ['through the proxy', `${fmt.mb(p)}/s`, r.proxied.throughput.map((x) => (x / 2 ** 20).toFixed(0)).join(', '), fmt.ms(r.proxied.latency.p50, 3), fmt.ms(r.proxied.latency.p99, 3)],
      ],
    ),
    '',
    `Proxy throughput **${ratio.toFixed(2)}** of direct (median of the per-round ratios; target at least 0.8: ${ratio >= 0.8 ? 'met' : '**missed**'}); ` +
      `added latency p50 ${fmt.ms(added, 3)}.`,
    '',
  ].join('\n');
}
