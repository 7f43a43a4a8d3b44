/**
 * The parent's handle on a server replica run in a child process (child.ts): killed with SIGKILL by
 * the test, or by itself at a step of startLab (TEST_CRASH_AT, a test-only setting), against a
 * Kubernetes API and a database that outlive it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { baseTestEnv } from '../server.js';
import { GqlClient } from '../graphql-client.js';

const ENTRY = fileURLToPath(new URL('./child.ts', import.meta.url));

export interface Replica {
  readonly pid: number;
  readonly url: string;
  readonly identity: string;
  /** What the child last reported: whether it leads, and how many passes of each duty it ran. */
  readonly state: { leader: boolean; runs: Record<string, number> };
  /** Set once the child has exited. */
  readonly exit: { code: number | null; signal: string | null } | undefined;
  readonly exited: Promise<void>;
  client(token?: string): GqlClient;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** The environment of a replica that reaches this cluster through `proxy` mode (plain HTTP). */
export function clusterEnv(clusterUrl: string): Record<string, string> {
  const { hostname, port } = new URL(clusterUrl);
  return { KUBERNETES_MODE: 'proxy', KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port };
}

export async function startReplica(env: Record<string, string>): Promise<Replica> {
  const child = fork(ENTRY, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, NODE_OPTIONS: '', REPLICA_ENV: JSON.stringify({ ...baseTestEnv(), ...env, ...(process.env.REPLICA_LOGS ? { LOG_LEVEL: process.env.REPLICA_LOGS } : {}) }) },
    stdio: ['ignore', process.env.REPLICA_LOGS ? 'inherit' : 'ignore', 'pipe', 'ipc'],
  });
  child.on('error', () => undefined);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  let exit: Replica['exit'];
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve();
    }),
  );
  const state = { leader: false, runs: {} as Record<string, number> };
  const started = await new Promise<{ url: string; identity: string }>((resolve, reject) => {
    child.on('message', (m: { url?: string; identity?: string; leader?: boolean; runs?: Record<string, number> }) => {
      if (m.url) resolve({ url: m.url, identity: m.identity ?? '' });
      if (m.leader !== undefined) Object.assign(state, { leader: m.leader, runs: m.runs ?? {} });
    });
    void exited.then(() => reject(new Error(`replica exited before it listened (${exit?.signal ?? exit?.code}): ${stderr}`)));
  });
  const kill = async () => {
    if (!exit) child.kill('SIGKILL');
    await exited;
  };
  return {
    pid: child.pid!,
    url: started.url,
    identity: started.identity,
    state,
    get exit() {
      return exit;
    },
    exited,
    client: (token?: string) => new GqlClient(started.url, token),
    kill,
    async stop() {
      if (exit) return;
      const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
      if (child.connected) child.send({ cmd: 'stop' });
      else child.kill('SIGKILL');
      await exited;
      clearTimeout(force);
    },
  };
}
