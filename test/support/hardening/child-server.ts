/**
 * The server of the memory tests, in a child process of its own (forked by child.ts with --expose-gc
 * and a small --max-old-space-size), so that what the server holds can be measured apart from the
 * test runner's heap, and so that exhausting its memory crashes it, not the test run. It starts the
 * real app through the test harness (startTestServer) on a database the parent made, and answers the
 * parent's commands over the IPC channel.
 */
import 'reflect-metadata';
import type { Socket } from 'node:net';
import { startTestServer, type Engine, type TestServer } from '../server.js';

interface Command {
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}

let server: TestServer | undefined;
/** The server's side of every TCP connection it accepted, by the client's port. */
const sockets = new Map<number, Socket>();

async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the server process needs --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const commands: Record<string, (args: Record<string, unknown>) => unknown> = {
  async start(args) {
    const databaseEnv = args.databaseEnv as Record<string, string>;
    server = await startTestServer(args.engine as Engine, { ...databaseEnv, ...(args.env as Record<string, string>) }, { databaseEnv });
    server.app.httpServer.on('connection', (socket: Socket) => {
      const port = socket.remotePort;
      if (port === undefined) return;
      sockets.set(port, socket);
      socket.once('close', () => sockets.delete(port));
    });
    return { url: server.url };
  },
  /** process.memoryUsage() after full garbage collections. */
  async memory() {
    await collectGarbage();
    return process.memoryUsage();
  },
  /** The server's side of the connection from this client port, or null once it is closed. */
  socket(args) {
    const socket = sockets.get(Number(args.port));
    if (!socket || socket.destroyed) return null;
    return { readingPaused: socket.isPaused(), writableLength: socket.writableLength, bytesRead: socket.bytesRead, bytesWritten: socket.bytesWritten };
  },
  stop: () => shutdown(),
};

let stopping: Promise<void> | undefined;
function shutdown(): Promise<void> {
  stopping ??= (async () => {
    await server?.app.stop();
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
    if (message.cmd === 'stop') process.exit(0);
  });
}

process.on('message', (message: Command) => void handle(message));
// The parent went away: leave nothing behind.
process.on('disconnect', () => void shutdown().finally(() => process.exit(0)));
