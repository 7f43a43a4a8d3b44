/**
 * Issue 2's benchmark: `labs(first: 50)` with VMs and their images, on PostgreSQL seeded with
 * 1,000 labs of 3 VMs over 50 images, loaded with autocannon; then the same page from a bare
 * node:http + pg baseline. Each server runs alone in a fresh child process; autocannon runs in this
 * process; PostgreSQL's backends are the third party. The two are measured one after the other.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { connectPostgres, createDatabase } from '../test/support/postgres.js';
import { CpuMeter, parentOf, withChildren, type CpuShares } from './support/cpu.js';
import { seedCatalogue, VM_NAMES } from './support/seed.js';
import { forkServer, type ServerChild } from './support/server-child.js';
import { serverEnv } from './support/server-env.js';

export const CATALOGUE_QUERY = '{ labs(first: 50) { edges { node { name vms { name image { name url } } } } } }';
const PAGE_SIZE = 50;
const POOL_MAX = 10; // the server's default POSTGRES_POOL_MAX; the baseline gets the same

export interface CatalogueOptions {
  labs: number;
  images: number;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** When set, the measured interval of each server is CPU-profiled into this directory. */
  profileDir?: string;
}

export interface LoadResult {
  label: string;
  requestsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  meanMs: number;
  requests: number;
  failures: number;
  responseBytes: number;
  cpu: CpuShares;
}

export interface CatalogueResult {
  options: CatalogueOptions;
  graphql: LoadResult;
  /** The same server with its catalogue response cache off (CATALOGUE_CACHE_ENTRIES=0): every request executes. */
  uncached: LoadResult;
  baseline: LoadResult;
  ratio: number;
  uncachedRatio: number;
}

interface AutocannonHistogram {
  average: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

interface AutocannonResult {
  requests: AutocannonHistogram & { total: number };
  latency: AutocannonHistogram;
  errors: number;
  timeouts: number;
  non2xx: number;
}

type Autocannon = (
  options: { url: string; connections: number; duration: number; method: string; headers: Record<string, string>; body: string },
  done: (err: Error | null, result: AutocannonResult) => void,
) => unknown;

// autocannon ships no type declarations: load it through require with the small interface above.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

function load(url: string, connections: number, seconds: number): Promise<AutocannonResult> {
  const body = JSON.stringify({ query: CATALOGUE_QUERY });
  return new Promise((resolve, reject) =>
    autocannon(
      { url, connections, duration: seconds, method: 'POST', headers: { 'content-type': 'application/json' }, body },
      (err, result) => (err ? reject(err) : resolve(result)),
    ),
  );
}

async function fetchPage(url: string): Promise<{ json: unknown; bytes: number }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: CATALOGUE_QUERY }) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 500)}`);
  return { json: JSON.parse(text), bytes: Buffer.byteLength(text) };
}

function checkPage(json: unknown, vmsPerLab: number): void {
  const edges = (json as { data?: { labs?: { edges?: { node: { vms: unknown[] } }[] } } }).data?.labs?.edges ?? [];
  if (edges.length !== PAGE_SIZE || edges.some((e) => e.node.vms.length !== vmsPerLab)) {
    throw new Error(`unexpected page: ${JSON.stringify(json).slice(0, 500)}`);
  }
}

/** Checks the page, warms up, then measures one server that is already listening at `url`. */
async function measure(target: Target, url: string, server: ServerChild, postmaster: number, o: CatalogueOptions): Promise<LoadResult & { page: unknown }> {
  const page = await fetchPage(url);
  checkPage(page.json, VM_NAMES.length);
  await load(url, o.connections, o.warmupSeconds);
  const meter = new CpuMeter({
    'server process': () => [server.pid],
    'autocannon (bench process)': () => [process.pid],
    PostgreSQL: () => withChildren(postmaster),
  });
  if (o.profileDir) await server.call('profile.start');
  meter.start();
  const r = await load(url, o.connections, o.durationSeconds);
  const cpu = meter.stop();
  if (o.profileDir) await server.call('profile.stop', { file: join(o.profileDir, `catalogue-${target.name}.cpuprofile`) });
  return {
    label: target.label,
    requestsPerSecond: r.requests.average,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    meanMs: r.latency.mean,
    requests: r.requests.total,
    failures: r.errors + r.timeouts + r.non2xx,
    responseBytes: page.bytes,
    cpu,
    page: page.json,
  };
}

/** The postmaster's pid, as the parent of a backend's (to count the CPU of PostgreSQL's processes). */
async function postmasterPid(url: string): Promise<number> {
  const client = await connectPostgres(url);
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return parentOf(rows[0].pid) ?? -1;
  } finally {
    await client.end();
  }
}

interface Target {
  name: string;
  label: string;
  /** Starts the server in the child process; resolves with its URL. */
  start(server: ServerChild): Promise<string>;
}

/** One server in a fresh child process, measured, then stopped. */
async function run(target: Target, postmaster: number, o: CatalogueOptions, log: (line: string) => void) {
  log(`${target.label}: ${o.warmupSeconds} s warm-up, ${o.durationSeconds} s measured, ${o.connections} connections`);
  const server = await forkServer();
  try {
    return await measure(target, await target.start(server), server, postmaster, o);
  } finally {
    await server.stop();
  }
}

export async function runCatalogueBench(postgresBaseUrl: string, o: CatalogueOptions, log: (line: string) => void): Promise<CatalogueResult> {
  const db = await createDatabase(postgresBaseUrl, 'lo_bench_catalogue_');
  try {
    const env = serverEnv(db.url);
    log(`seeding ${o.labs} labs of 3 VMs over ${o.images} images`);
    await seedCatalogue(env, o.labs, o.images);
    const postmaster = await postmasterPid(db.url);
    const { page: graphqlPage, ...graphql } = await run(
      { name: 'graphql', label: 'GraphQL server (createApp)', start: async (s) => (await s.call<{ url: string }>('app.start', { env })).url },
      postmaster, o, log,
    );
    const uncachedEnv = { ...env, CATALOGUE_CACHE_ENTRIES: '0' };
    const { page: uncachedPage, ...uncached } = await run(
      {
        name: 'graphql-uncached',
        label: 'GraphQL server, response cache off',
        start: async (s) => (await s.call<{ url: string }>('app.start', { env: uncachedEnv })).url,
      },
      postmaster, o, log,
    );
    const baselineArgs = { postgresUrl: db.url, poolMax: POOL_MAX, pageSize: PAGE_SIZE };
    const { page: baselinePage, ...baseline } = await run(
      { name: 'baseline', label: 'baseline (node:http + pg)', start: async (s) => (await s.call<{ url: string }>('baseline.start', baselineArgs)).url },
      postmaster, o, log,
    );
    if (!isDeepStrictEqual(graphqlPage, baselinePage) || !isDeepStrictEqual(uncachedPage, baselinePage)) {
      throw new Error('the baseline does not answer the same JSON as the GraphQL server');
    }
    const ratioOf = (r: LoadResult) => r.requestsPerSecond / baseline.requestsPerSecond;
    return { options: o, graphql, uncached, baseline, ratio: ratioOf(graphql), uncachedRatio: ratioOf(uncached) };
  } finally {
    await db.drop();
  }
}
