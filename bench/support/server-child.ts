import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parent's handle on a server process (server-process.ts). */
export interface ServerChild {
  readonly pid: number;
  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  /** Stops what the child runs and lets it exit; kills it if it has not exited within 15 s. Idempotent. */
  stop(): Promise<void>;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

const ENTRY = fileURLToPath(new URL('./server-process.js', import.meta.url));

/** The Docker image's NODE_OPTIONS (its ENV line), run from the project root as `npm run bench` is. */
function imageNodeOptions(): string {
  const match = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(readFileSync(join(process.cwd(), 'Dockerfile'), 'utf8'));
  if (!match) throw new Error('Dockerfile: no ENV NODE_OPTIONS line');
  return match[1];
}

/**
 * Forks a server process with --expose-gc (and whatever else `execArgv` adds, e.g. --cpu-prof), and
 * NODE_ENV=production and NODE_OPTIONS in its environment as the Docker image has them (graphql-js,
 * for one, skips its development-only checks then; V8's young generation is sized for bursts).
 */
export async function forkServer(execArgv: string[] = []): Promise<ServerChild> {
  const child = fork(ENTRY, [], {
    execArgv: ['--expose-gc', ...execArgv],
    env: { ...process.env, NODE_ENV: 'production', NODE_OPTIONS: imageNodeOptions() },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      for (const p of pending.values()) p.reject(new Error(`server process exited (${signal ?? code})`));
      pending.clear();
      resolve();
    }),
  );
  child.on('message', (reply: Reply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) p?.resolve(reply.result);
    else p?.reject(new Error(`server process: ${reply.error}`));
  });
  let stopped: Promise<void> | undefined;
  return {
    pid: child.pid!,
    call<T>(cmd: string, args: Record<string, unknown> = {}) {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error('server process has exited'));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ id, cmd, args });
      });
    },
    stop() {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.send({ id: 0, cmd: 'stop', args: {} });
        await exited;
        clearTimeout(kill);
      })();
      return stopped;
    },
  };
}
