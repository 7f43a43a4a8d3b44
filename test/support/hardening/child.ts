/**
 * The parent's handle on a server run in a child process (child-server.ts): started with
 * --expose-gc and a small heap, on a database of its own made here, so that a test can measure the
 * memory the server holds after garbage collection, and see it crash when it runs out.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testDatabaseEnv, type Engine } from '../server.js';

const ENTRY = fileURLToPath(new URL('./child-server.ts', import.meta.url));

export interface ChildMemory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface ServerSocketState {
  readingPaused: boolean;
  writableLength: number;
  bytesRead: number;
  bytesWritten: number;
}

export interface ChildServer {
  readonly pid: number;
  readonly url: string;
  readonly wsUrl: string;
  /** Memory after full garbage collections in the child. */
  memory(): Promise<ChildMemory>;
  /** The server's side of the TCP connection whose client port this is; null once closed. */
  serverSocket(clientPort: number): Promise<ServerSocketState | null>;
  /** Set once the child has exited (how, and the end of its stderr). */
  readonly exit: { code: number | null; signal: string | null; stderr: string } | undefined;
  /** Resolves once the child has exited. */
  readonly exited: Promise<void>;
  stop(): Promise<void>;
}

export const MB = 1024 * 1024;

/** How the child ended, in one line: the fatal error V8 printed (out of memory), or the exit code or signal. */
export function deathOf(exit: ChildServer['exit']): string {
  if (!exit) return 'still running';
  const fatal = /FATAL ERROR:[^\n]*/.exec(exit.stderr)?.[0];
  return `exited (${exit.signal ?? exit.code})${fatal ? `: ${fatal}` : ''}`;
}

/**
 * Memory the server holds: the V8 heap plus Buffers (what ws keeps queued for a socket lives there).
 */
export const held = (m: ChildMemory) => m.heapUsed + m.arrayBuffers;

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export async function startChildServer(
  engine: Engine,
  env: Record<string, string> = {},
  options: { maxOldSpaceMb?: number } = {},
): Promise<ChildServer> {
  const db = await testDatabaseEnv(engine);
  const child = fork(ENTRY, [], {
    // The tsx loader itself keeps ~120 MB of heap (transpiled sources); the server gets the rest.
    execArgv: ['--import', 'tsx', '--expose-gc', `--max-old-space-size=${options.maxOldSpaceMb ?? 192}`],
    env: { ...process.env, NODE_ENV: 'production', NODE_OPTIONS: '' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  child.on('error', () => undefined); // a send to a child that just died: its exit event says how
  let stderr = '';
  /** V8's fatal line (out of memory) comes before a long native stack: kept whatever follows. */
  let fatal = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    fatal ||= /FATAL ERROR:[^\n]*/.exec(text)?.[0] ?? '';
    stderr = (stderr + text).slice(-4000);
  });
  let exit: ChildServer['exit'];
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal, stderr: fatal ? `${fatal}\n${stderr}` : stderr };
      for (const p of pending.values()) p.reject(new Error(`server process ${deathOf(exit)}`));
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
  let nextId = 1;
  const call = <T>(cmd: string, args: Record<string, unknown> = {}) => {
    if (exit) return Promise.reject(new Error(`server process ${deathOf(exit)}`));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, cmd, args }, (err) => {
        if (!err) return;
        pending.delete(id);
        reject(new Error(`server process unreachable (${err.message}): ${stderr.slice(-1500)}`));
      });
    });
  };
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (!exit) {
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        if (child.connected) child.send({ id: 0, cmd: 'stop', args: {} }, (err) => err && child.kill('SIGKILL'));
        else child.kill('SIGKILL');
        await exited;
        clearTimeout(kill);
      }
      await db.drop();
    })());
  try {
    const { url } = await call<{ url: string }>('start', { engine, env, databaseEnv: db.env });
    return {
      pid: child.pid!,
      url,
      wsUrl: url.replace(/^http/, 'ws'),
      memory: () => call<ChildMemory>('memory'),
      serverSocket: (port) => call<ServerSocketState | null>('socket', { port }),
      get exit() {
        return exit;
      },
      exited,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
