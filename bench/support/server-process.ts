/**
 * The server side of the benchmarks, run in a child process of its own (with --expose-gc) so that
 * the load generator or the subscribers in the parent process neither share its event loop nor its
 * heap. It runs either the real server (createApp) or the baseline, and answers the parent's
 * commands over the IPC channel (see server-child.ts).
 */
import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { startSimulatedCluster, type SimulatedCluster } from '../../src/simulated/index.js';
import { createLogger } from '../../src/logger.js';
import { startFanoutBaseline, type FanoutBaseline } from './baseline-fanout.js';
import { startBaseline, type Baseline } from './baseline-server.js';
import { now } from './stats.js';

export interface Usage {
  cpuMs: number;
  elu: EventLoopUtilization;
}

interface Command {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

let app: App | undefined;
/** A simulated cluster of its own, when this process plays the Kubernetes API for a server elsewhere. */
let standalone: SimulatedCluster | undefined;
let baseline: Baseline | undefined;
let fanoutBaseline: FanoutBaseline | undefined;
let profiler: Session | undefined;

function cluster() {
  const simulated = standalone ?? app?.simulated;
  if (!simulated) throw new Error('no simulated cluster: start the app with KUBERNETES_MODE=simulated first');
  return simulated;
}

async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the server process needs --expose-gc');
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const commands: Record<string, (args: Record<string, unknown>) => unknown> = {
  async 'app.start'(args) {
    app = await createApp(loadConfig(args.env as Record<string, string>), { logger: createLogger('silent') });
    return { url: await app.start() };
  },
  async 'cluster.start'(args) {
    standalone = await startSimulatedCluster({ vmReadySeconds: Number(args.vmReadySeconds ?? 1) });
    return { url: standalone.url };
  },
  async 'baseline.start'(args) {
    baseline = await startBaseline(String(args.postgresUrl), Number(args.poolMax), Number(args.pageSize));
    return { url: baseline.url };
  },
  async 'fanoutBaseline.start'() {
    fanoutBaseline = await startFanoutBaseline();
    return { url: fanoutBaseline.url };
  },
  'fanoutBaseline.burst'() {
    if (!fanoutBaseline) throw new Error('no fan-out baseline running');
    return fanoutBaseline.burst();
  },
  'cluster.setAutoProgress': (args) => cluster().setAutoProgress(Boolean(args.enabled)),
  /**
   * The burst: t0 just before readyAll(), t1 when it has changed every object; `emitted` once the
   * watch lines of all those changes have been handed to the watch connections (the simulated API
   * writes each connection's lines of one turn together, at the end of the turn).
   */
  async 'cluster.readyAll'() {
    const t0 = now();
    cluster().readyAll();
    const t1 = now();
    await new Promise<void>((resolve) => process.nextTick(resolve));
    return { t0, t1, emitted: now() };
  },
  'cluster.openWatches': () => cluster().openWatches(),
  'events.listeners': () => app?.deps.events.listenerCount() ?? 0,
  async memory() {
    await collectGarbage();
    return process.memoryUsage();
  },
  usage(): Usage {
    const cpu = process.cpuUsage();
    return { cpuMs: (cpu.user + cpu.system) / 1000, elu: performance.eventLoopUtilization() };
  },
  /** CPU profile of one interval (not the whole process, as --cpu-prof would), for the analysis of a missed target. */
  async 'profile.start'() {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
    await profiler.post('Profiler.start');
  },
  async 'profile.stop'(args) {
    if (!profiler) throw new Error('no profile running');
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = undefined;
    await writeFile(String(args.file), JSON.stringify(profile));
  },
  /** A heap snapshot (after GC), to see what an idle subscription holds. */
  async 'heap.snapshot'(args) {
    await collectGarbage();
    return writeHeapSnapshot(String(args.file));
  },
  stop: () => shutdown(),
};

let stopping: Promise<void> | undefined;
function shutdown(): Promise<void> {
  stopping ??= (async () => {
    await app?.stop();
    await baseline?.close();
    await fanoutBaseline?.close();
    await standalone?.stop();
  })();
  return stopping;
}

async function handle(message: Command): Promise<void> {
  let reply: { id: number; ok: boolean; result?: unknown; error?: string };
  try {
    const command = commands[message.cmd];
    if (!command) throw new Error(`unknown command ${message.cmd}`);
    reply = { id: message.id, ok: true, result: await command(message.args ?? {}) };
  } catch (err) {
    reply = { id: message.id, ok: false, error: (err as Error).stack ?? String(err) };
  }
  process.send?.(reply, undefined, undefined, () => {
    // Exit normally (not killed) so that --cpu-prof, when given, writes its profile.
    if (message.cmd === 'stop') process.exit(0);
  });
}

process.on('message', (message: Command) => void handle(message));
// The parent went away (finished or crashed): leave nothing behind.
process.on('disconnect', () => void shutdown().finally(() => process.exit(0)));
