import type { CatalogueResult, LoadResult } from './catalogue.bench.js';
import { CATALOGUE_QUERY } from './catalogue.bench.js';
import type { RoundResult, SubscriptionOptions } from './subscriptions.bench.js';
import { STATUS_SUBSCRIPTION } from './subscriptions.bench.js';
import { fmt, markdownTable } from './support/stats.js';

export interface Machine {
  cores: number;
  cpuModel: string;
  memory: string;
  node: string;
  os: string;
  postgres: string;
}

export interface BenchReport {
  date: Date;
  seconds: number;
  machine: Machine;
  catalogue: CatalogueResult;
  subscriptionOptions: SubscriptionOptions;
  subscriptions: RoundResult[];
}

const SERVER = 'server process';
const MACHINE = 'machine (all processes)';
const TARGETS = { ratio: 0.5, subscribers: 10_000, p99Ms: 250, bytesPerSubscription: 30 * 1024, watches: 3 };
const verdict = (ok: boolean) => (ok ? '**met**' : '**missed**');

/** CPU time a party spent per request served: its share of a core over the measured run, divided by the requests. */
const cpuPerRequest = (r: LoadResult, party: string, seconds: number) => (r.cpu[party] / 100) * seconds * 1000 / r.requests;

function catalogueTables(c: CatalogueResult): string {
  const seconds = c.options.durationSeconds;
  const row = (r: LoadResult, ratio: string) => [
    r.label, fmt.int(r.requestsPerSecond), `${r.p50} ms`, `${r.p90} ms`, `${r.p99} ms`, fmt.int(r.requests), r.failures, fmt.int(r.responseBytes),
    fmt.ms(cpuPerRequest(r, SERVER, seconds), 2), fmt.ms(cpuPerRequest(r, 'PostgreSQL', seconds), 2), ratio,
  ];
  const load = markdownTable(
    ['server', 'requests/s', 'p50', 'p90', 'p99', 'requests', 'failures', 'response bytes', 'server CPU per request', 'PostgreSQL CPU per request', 'throughput vs baseline'],
    [row(c.graphql, c.ratio.toFixed(2)), row(c.uncached, c.uncachedRatio.toFixed(2)), row(c.baseline, '1.00')],
  );
  const parties = Object.keys(c.graphql.cpu);
  const cpu = markdownTable(
    ['CPU, % of one core (200 % = both)', 'GraphQL run', 'GraphQL run, cache off', 'baseline run'],
    parties.map((p) => [p, fmt.pct(c.graphql.cpu[p]), fmt.pct(c.uncached.cpu[p]), fmt.pct(c.baseline.cpu[p])]),
  );
  const target =
    `Target: at least ${TARGETS.ratio} of the baseline's throughput: ${verdict(c.ratio >= TARGETS.ratio)} (${c.ratio.toFixed(2)}) ` +
    `with the server as it runs by default; with its catalogue response cache off, every request executes and the ratio is ${c.uncachedRatio.toFixed(2)}.`;
  return `${load}\n\n${cpu}\n\n${target}`;
}

function subscriptionTables(rounds: RoundResult[]): string {
  const ms = (n: number) => fmt.ms(n);
  const latency = markdownTable(
    [
      'subscribers', 'sockets x operations', 'got READY', 'event -> client, p50', 'p99', 'max', 'bare ws server, p99', 'p99 vs bare ws server',
      'event -> published, p99', 'published -> client, p99', 'burst start -> client, p99', 'next messages in burst',
    ],
    rounds.map((r) => [
      fmt.int(r.subscribers), `${fmt.int(r.sockets)} x ${r.operationsPerSocket}`, fmt.int(r.readyReceived),
      ms(r.latency.p50), ms(r.latency.p99), ms(r.latency.max), ms(r.baseline.latency.p99), `${(r.latency.p99 / r.baseline.latency.p99).toFixed(2)}`,
      ms(r.toPublish.p99), ms(r.delivery.p99), ms(r.fromBurstStart.p99), fmt.int(r.eventsDelivered),
    ]),
  );
  const memory = markdownTable(
    ['subscribers', 'heap + external per idle subscription', 'RSS per idle subscription', 'server RSS idle', 'server heap idle', 'watches: before / idle / after burst', 'listeners idle'],
    rounds.map((r) => [
      fmt.int(r.subscribers), fmt.kb(r.perSubscription.heap), fmt.kb(r.perSubscription.rss), fmt.mb(r.serverIdle.rss), fmt.mb(r.serverIdle.heapUsed),
      `${r.watches.beforeSubscribers} / ${r.watches.idle} / ${r.watches.afterBurst}`, fmt.int(r.listenersIdle),
    ]),
  );
  const burst = markdownTable(
    [
      'subscribers', 'connect + first event, all', 'per subscription', 'server event loop busy while connecting', 'readyAll() itself',
      'burst start -> events handed to the watches', 'server CPU in burst', 'server event loop busy in burst', 'subscriber event loop busy in burst',
    ],
    rounds.map((r) => [
      fmt.int(r.subscribers), fmt.ms(r.connectMs, 0), fmt.ms(r.connectMs / r.subscribers, 2), fmt.pct(100 * r.connectElu), ms(r.burst.readyAllMs),
      ms(r.burst.emitMs), fmt.ms(r.burst.serverCpuMs, 0),
      fmt.pct(100 * r.burst.serverElu), fmt.pct(100 * r.burst.clientElu),
    ]),
  );
  return `${latency}\n\n${memory}\n\n${burst}\n\n${subscriptionVerdicts(rounds)}`;
}

function subscriptionVerdicts(rounds: RoundResult[]): string {
  const big = rounds.filter((r) => r.subscribers >= TARGETS.subscribers);
  const allReady = big.length > 0 && big.every((r) => r.readyReceived === r.subscribers && !r.errors.length);

  const heap = Math.max(...rounds.map((r) => r.perSubscription.heap));
  const rss = Math.max(...rounds.map((r) => r.perSubscription.rss));
  const watches = rounds.every((r) => [r.watches.beforeSubscribers, r.watches.idle, r.watches.afterBurst].every((w) => w === TARGETS.watches));
  const errors = rounds.flatMap((r) => r.errors.map((e) => `- ${fmt.int(r.subscribers)} subscribers: ${e}`));
  return [
    'Targets:',
    `- ${fmt.int(TARGETS.subscribers)} subscribers each receiving READY: ${verdict(allReady)}`,
    ...big.map(
      (r) =>
        `- p99 under ${TARGETS.p99Ms} ms at ${fmt.int(r.subscribers)} subscribers on ${fmt.int(r.sockets)} sockets (${r.operationsPerSocket} per socket), event to client: ` +
        `${verdict(r.latency.p99 < TARGETS.p99Ms)} (${fmt.ms(r.latency.p99)}; a bare ws server, ${fmt.ms(r.baseline.latency.p99)}; ` +
        `from the start of the burst, before the simulated cluster has changed anything, ${fmt.ms(r.fromBurstStart.p99)})`,
    ),
    `- at most 30 KB per idle subscription, every round: ${verdict(heap <= TARGETS.bytesPerSubscription)} by heap + external (worst ${fmt.kb(heap)}); ` +
      `by RSS, which is noisier (V8 grows its heap in steps), worst ${fmt.kb(rss)}`,
    `- ${TARGETS.watches} watch connections whatever N: ${verdict(watches)}`,
    ...(errors.length ? ['', 'Errors seen:', ...errors] : []),
  ].join('\n');
}

/** Facts derived from the figures, so that the reader need not do the arithmetic. */
function reading(r: BenchReport): string {
  const c = r.catalogue;
  const s = c.options.durationSeconds;
  const big = [...r.subscriptions].sort((a, b) => b.subscribers - a.subscribers || a.operationsPerSocket - b.operationsPerSocket)[0];
  const small = [...r.subscriptions].sort((a, b) => a.subscribers - b.subscribers)[0];
  return `## Reading the figures

- Catalogue: the GraphQL server spent ${fmt.ms(cpuPerRequest(c.graphql, SERVER, s), 2)} of CPU in its own process per request, the
  baseline ${fmt.ms(cpuPerRequest(c.baseline, SERVER, s), 2)}; PostgreSQL ${fmt.ms(cpuPerRequest(c.graphql, 'PostgreSQL', s), 2)} against ${fmt.ms(cpuPerRequest(c.baseline, 'PostgreSQL', s), 2)}.
  During the GraphQL run the server process used ${fmt.pct(c.graphql.cpu[SERVER])} of a core (more than 100 % means V8's GC and
  libuv threads too) and the whole machine was ${fmt.pct(c.graphql.cpu[MACHINE])} busy: the server's one JavaScript thread is the
  limit. During the baseline run the whole machine was ${fmt.pct(c.baseline.cpu[MACHINE])} busy.
- Subscriptions: at ${fmt.int(big.subscribers)} subscribers (${fmt.int(big.sockets)} sockets) the event-to-client p99 of ${fmt.ms(big.latency.p99)} is
  ${fmt.ms(big.toPublish.p99)} from the events leaving the simulated cluster until the server published READY (the event's \`at\`:
  watch events read, a quiet 10 ms waited for, rows read, derived, written in batches of 250) and ${fmt.ms(big.delivery.p99)} from
  there to the client. A bare \`ws\` server sending the same subscriptions one pre-serialised message each
  took ${fmt.ms(big.baseline.latency.p99)} (p99; its send loop ${fmt.ms(big.baseline.sendMs)}): that part of the cost is the sockets'.
  Before the events left, \`readyAll()\` spent ${fmt.ms(big.burst.readyAllMs)} changing 3,000 objects in the simulated cluster's own
  process (${fmt.ms(big.fromBurstStart.p99)} p99 counted from its start).
  With one socket per subscription every message is a write of its own; with ${big.operationsPerSocket === 1 ? 'several' : big.operationsPerSocket} subscriptions
  per socket the fan-out writes a socket's messages together, one system call per socket per turn of the event loop.
  With ${fmt.int(small.subscribers)} subscribers the same burst took ${fmt.ms(small.toPublish.p99)} (p99) to publish.
- Subscribing took about ${fmt.ms(big.connectMs / big.subscribers, 2)} per subscription (wall time, ${fmt.int(big.subscribers)} subscriptions opened
  64 sockets at a time; the server's event loop was ${fmt.pct(100 * big.connectElu)} busy meanwhile).
`;
}

/** The tables alone, as printed at the end of a run. */
export function renderTables(r: BenchReport): string {
  return `Catalogue: labs(first: 50)\n\n${catalogueTables(r.catalogue)}\n\nSubscriptions: labInstanceStatus\n\n${subscriptionTables(r.subscriptions)}\n`;
}

function method(r: BenchReport): string {
  const c = r.catalogue.options;
  const s = r.subscriptionOptions;
  return `## Method

Everything runs on this one machine and talks over 127.0.0.1 only. \`npm run bench\` starts a throwaway
PostgreSQL cluster (test/support/postgres.ts: fsync off, trust auth), gives each part a fresh database, and
stops and removes it all at the end.

**How the ${r.machine.cores} cores are shared.** Each server under test runs alone in a child process of its
own (\`bench/support/server-process.ts\`, started with \`--expose-gc\`, and \`NODE_ENV=production\` and
\`NODE_OPTIONS\` as in the Docker image); the load (autocannon, or the
WebSocket subscribers) runs in the bench's main process; PostgreSQL's backends are the third party. No
process is pinned to a core: the tables give the CPU each party actually used during the measured
interval (from /proc), in percent of one core, so 200 % is the whole machine. The GraphQL server and the
baseline are measured one after the other, never at the same time.

**Catalogue (issue 2).** ${fmt.int(c.labs)} labs of 3 VMs over ${c.images} images, inserted with the server's own ORM
(and its migrations). Query, sent as \`POST /graphql\` with a JSON body:
\`${CATALOGUE_QUERY}\`.
autocannon 9 with ${c.connections} keep-alive connections: ${c.warmupSeconds} s of warm-up (discarded), then ${c.durationSeconds} s measured.
The GraphQL server runs twice: as configured by default, where catalogue-only queries are answered from
its response cache while the catalogue's version row in PostgreSQL is unchanged (every request still
reads that row, so this is one SQL round trip per request instead of five), and with
\`CATALOGUE_CACHE_ENTRIES=0\`, where every request parses nothing (Apollo caches the parsed document) but
executes in full: the labs page, then its VMs and their images through batch loaders (three statements; no COUNT, as the query does not ask for totalCount).
The baseline is a bare \`node:http\` handler (\`bench/support/baseline-server.ts\`) that answers the same
page with one hand-written SQL statement (labs LIMIT 50 joined to their VMs and images, a named prepared
statement through \`pg\`) and the same JSON; the bench checks that both answers are deep-equal before
measuring. Both use a pool of 10 PostgreSQL connections (the server's default \`POSTGRES_POOL_MAX\`).
Requests/s is autocannon's mean of per-second samples; its latencies have 1 ms resolution.

**Subscriptions (issue 5).** For each N: a fresh database and server process (\`createApp\`, simulated
cluster in a process of its own, reached over HTTP in \`proxy\` mode as a real API server would be, production mode); ${s.users} trusted users log in with the \`login\` mutation, then
start ${s.instances} lab instances (${s.instances / s.users} each, a lab of 3 VMs) with \`startLab\`, with the simulated
cluster's automatic progress off, so every instance waits in STARTING. N subscribers, N/${s.instances} per
instance, each subscription authenticated as the instance's owner, are opened over raw \`ws\` sockets speaking
graphql-transport-ws (connection_init with the bearer token, then one \`subscribe\` per operation; several
operations share a socket, as graphql-ws allows; the table gives sockets x operations). Subscription:
\`${STATUS_SUBSCRIPTION}\`.
Idle memory: the server process's \`process.memoryUsage()\` after three forced GCs, taken before the
subscribers connect and 1 s after every subscription has received its first event (the current state);
the difference divided by N. Then the bench calls \`cluster.readyAll()\` in the cluster's process (every VMI
Running, every pod Ready at once: 3 VMIs and 3 pods per instance) and waits until every subscription has
received a READY event. Event-to-client latency is taken per subscription from the moment the simulated
cluster has handed the burst's watch events to its watch connections (it writes each connection's events
of one turn of its event loop together, at the end of the turn, right after \`readyAll()\` returns) to the
moment the subscriber's \`message\` handler runs (both read the same machine clock, with sub-millisecond
resolution); it splits into *event -> published* (the event's own \`at\`, stamped by the server when it
publishes, 1 ms resolution) and *published -> client*. *Burst start -> client* counts from just before
\`readyAll()\` instead, so it includes the simulated cluster's own work. The watch connections the server
holds come from \`cluster.openWatches()\`.
The baseline of each round runs after it, in a fresh process: a bare \`ws\` server
(\`bench/support/baseline-fanout.ts\`) that answers the same socket plan's \`connection_init\` and
\`subscribe\` messages, and on a signal sends each subscription one READY message (serialised once,
one \`ws.send()\` each); its latency runs from just before its first send. The server processes run with
the Docker image's \`NODE_OPTIONS\` (read from the Dockerfile).
`;
}

export function renderResults(r: BenchReport): string {
  const m = r.machine;
  return `# Benchmark results

Written by \`npm run bench\` (bench/run.ts) on ${r.date.toISOString()}; the run took ${Math.round(r.seconds)} s.
Node.js 20 against 24, and this code against the previous round's, measured side by side (kept by hand,
not rewritten by this run): [NODE-24.md](NODE-24.md).

| machine | |
|---|---|
| CPU cores | ${m.cores} (${m.cpuModel}) |
| memory | ${m.memory} |
| Node.js | ${m.node} |
| OS | ${m.os} |
| PostgreSQL | ${m.postgres} |

## Catalogue: \`labs(first: 50)\` with VMs and images (issue 2)

${catalogueTables(r.catalogue)}

## Live status: \`labInstanceStatus\` subscribers (issue 5)

${subscriptionTables(r.subscriptions)}

${reading(r)}
${method(r)}`;
}
