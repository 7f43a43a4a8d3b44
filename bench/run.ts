/**
 * `npm run bench`: the benchmarks against a throwaway PostgreSQL, then bench/RESULTS.md.
 * For analysis, without writing the file: BENCH_ONLY=catalogue, subscriptions or vnc runs one part;
 * BENCH_ROUNDS=10000x10 picks the subscription rounds; BENCH_CPU_PROFILE=1 profiles the servers.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { cpus, release, totalmem, tmpdir, type as osType } from 'node:os';
import { join } from 'node:path';
import { connectPostgres, startPostgresCluster } from '../test/support/postgres.js';
import { runCatalogueBench, type CatalogueOptions } from './catalogue.bench.js';
import { renderResults, renderTables, type Machine } from './results.js';
import { summarize } from './support/profile-summary.js';
import { runSubscriptionBench, type RoundPlan, type SubscriptionOptions } from './subscriptions.bench.js';
import { renderVnc, runVncBench, VNC_DEFAULTS } from './vnc.bench.js';

const RESULTS = new URL('../../bench/RESULTS.md', import.meta.url);

// BENCH_CPU_PROFILE=1 profiles the measured intervals of the servers into a temp dir, and summarises them.
const profileDir = process.env.BENCH_CPU_PROFILE ? mkdtempSync(join(tmpdir(), 'lo-bench-prof-')) : undefined;

const CATALOGUE: CatalogueOptions = { labs: 1000, images: 50, connections: 20, warmupSeconds: 3, durationSeconds: 10, profileDir };

const DEFAULT_ROUNDS: RoundPlan[] = [
  { subscribers: 1000, operationsPerSocket: 10 },
  { subscribers: 5000, operationsPerSocket: 10 },
  { subscribers: 10_000, operationsPerSocket: 10 },
  { subscribers: 10_000, operationsPerSocket: 1 },
];

/** BENCH_ROUNDS=10000x10,10000x1: subscribers x operations per socket, for a partial run. */
function parseRounds(spec: string): RoundPlan[] {
  return spec.split(',').map((part) => {
    const [subscribers, perSocket] = part.split('x').map(Number);
    if (!(subscribers > 0 && subscribers % 500 === 0 && perSocket > 0)) throw new Error(`BENCH_ROUNDS: bad round "${part}"`);
    return { subscribers, operationsPerSocket: perSocket };
  });
}

function subscriptionOptions(): SubscriptionOptions {
  return {
    instances: 500,
    users: 100,
    rounds: process.env.BENCH_ROUNDS ? parseRounds(process.env.BENCH_ROUNDS) : DEFAULT_ROUNDS,
    profileDir,
  };
}

async function machineFacts(postgresUrl: string): Promise<Machine> {
  const client = await connectPostgres(postgresUrl);
  try {
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    return {
      cores: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
      node: process.version,
      os: `${osType()} ${release()}`,
      postgres: rows[0]?.v ?? 'unknown',
    };
  } finally {
    await client.end();
  }
}

async function printProfiles(dir: string, log: (line: string) => void): Promise<void> {
  for (const file of (await readdir(dir)).sort()) {
    console.log(`\n== ${file}\n${summarize(JSON.parse(await readFile(join(dir, file), 'utf8')), 20)}`);
  }
  log(`CPU profiles in ${dir} (open them in Chrome DevTools, or: node dist/bench/support/profile-summary.js FILE)`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const only = process.env.BENCH_ONLY;
  const log = (line: string) => console.log(`[bench ${String(Math.round((Date.now() - started) / 1000)).padStart(3)} s] ${line}`);
  log('starting a throwaway PostgreSQL');
  const postgres = await startPostgresCluster();
  try {
    const machine = await machineFacts(postgres.url);
    log(`${machine.cores} cores, Node.js ${machine.node}, PostgreSQL ${machine.postgres}`);
    const catalogue = only && only !== 'catalogue' ? undefined : await runCatalogueBench(postgres.url, CATALOGUE, log);
    const options = subscriptionOptions();
    const subscriptions = only && only !== 'subscriptions' ? undefined : await runSubscriptionBench(postgres.url, options, log);
    const vnc = only && only !== 'vnc' ? undefined : await runVncBench(postgres.url, VNC_DEFAULTS, log);
    if (profileDir) await printProfiles(profileDir, log);
    if (!catalogue || !subscriptions || !vnc) {
      console.log(JSON.stringify({ catalogue, subscriptions }, null, 2));
      if (vnc) console.log(`\n${renderVnc(vnc)}`);
      return;
    }
    const report = { date: new Date(), seconds: (Date.now() - started) / 1000, machine, catalogue, subscriptionOptions: options, subscriptions };
    console.log(`\n${renderTables(report)}`);
    if (process.env.BENCH_ROUNDS || profileDir) {
      log('partial or profiled run: bench/RESULTS.md left as it was');
      return;
    }
    await writeFile(RESULTS, `${renderResults(report).trimEnd()}\n\n${renderVnc(vnc)}`);
    log('wrote bench/RESULTS.md');
  } finally {
    await postgres.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
