import type { RawData, WebSocket } from 'ws';
import type { Connection } from './connection.js';
import { CLOSE } from './connection.js';

/**
 * The legacy `graphql-ws` subprotocol (subscriptions-transport-ws, what GraphQL Playground speaks),
 * served without its archived server package: connection_init -> connection_ack and keep-alive `ka`;
 * start/stop per operation id; connection_terminate. With the same rules as graphql-transport-ws:
 * nothing runs before connection_init, which must come within the init timeout.
 */
export interface LegacyHandlers {
  /** Authenticates from the init payload (stored on the connection); true to acknowledge. */
  init(connection: Connection, payload: unknown): boolean;
  /**
   * Runs one operation: its one payload to send, or a stream of them (a subscription), formatted
   * (errors reported and masked). What it throws is sent as an `error` message.
   */
  run(connection: Connection, id: string, payload: Record<string, unknown>): Promise<{ single: unknown } | { stream: AsyncIterableIterator<unknown> }>;
  /** The formatted errors of a failure before any result (parse, validation, limits, authentication). */
  formatErrors(connection: Connection, error: unknown): unknown[];
}

type Message = { type?: unknown; id?: unknown; payload?: unknown };

export function serveLegacy(
  connection: Connection,
  handlers: LegacyHandlers,
  options: { keepAliveMs: number; initTimeoutMs: number },
): void {
  const socket: WebSocket = connection.socket;
  const operations = new Map<string, AsyncIterableIterator<unknown> | null>();
  let initialised = false;
  let keepAlive: NodeJS.Timeout | undefined;
  const initTimer = setTimeout(() => {
    if (!initialised) connection.close(CLOSE.initTimeout, 'Connection initialisation timeout');
  }, options.initTimeoutMs);

  const send = (message: object) => {
    if (socket.readyState !== socket.OPEN) return;
    socket.send(JSON.stringify(message));
    connection.checkBuffered();
  };

  const stop = (id: string) => {
    const op = operations.get(id);
    operations.delete(id);
    connection.release(id);
    if (op) void op.return?.();
  };

  const start = async (id: string, payload: Record<string, unknown>) => {
    if (operations.has(id)) stop(id);
    operations.set(id, null);
    try {
      const outcome = await handlers.run(connection, id, payload);
      if (!operations.has(id)) {
        // Stopped (or the socket closed) while it was set up: run tracked it after stop() released it.
        connection.release(id);
        if ('stream' in outcome) void outcome.stream.return?.();
        return;
      }
      if ('single' in outcome) {
        send({ type: 'data', id, payload: outcome.single });
        send({ type: 'complete', id });
        operations.delete(id);
        return;
      }
      operations.set(id, outcome.stream);
      for await (const result of outcome.stream) {
        if (!operations.has(id)) break;
        send({ type: 'data', id, payload: result });
      }
      connection.release(id);
      if (operations.delete(id)) send({ type: 'complete', id });
    } catch (err) {
      connection.release(id); // a stream that failed: it runs no more
      if (operations.delete(id)) send({ type: 'error', id, payload: handlers.formatErrors(connection, err) });
    }
  };

  socket.on('message', (data: RawData, isBinary: boolean) => {
    let message: Message;
    try {
      message = isBinary ? {} : (JSON.parse(data.toString()) as Message);
    } catch {
      message = {};
    }
    if (typeof message !== 'object' || message === null) message = {};
    switch (message.type) {
      case 'connection_init': {
        if (initialised) return connection.close(CLOSE.tooManyRequests, 'Too many initialisation requests');
        clearTimeout(initTimer);
        if (!handlers.init(connection, message.payload)) {
          send({ type: 'connection_error', payload: { message: 'Forbidden' } });
          return connection.close(CLOSE.forbidden, 'Forbidden');
        }
        initialised = true;
        send({ type: 'connection_ack' });
        send({ type: 'ka' });
        keepAlive = setInterval(() => send({ type: 'ka' }), options.keepAliveMs);
        keepAlive.unref();
        return;
      }
      case 'start': {
        if (typeof message.id !== 'string' && typeof message.id !== 'number') return;
        const id = String(message.id);
        if (!initialised) {
          // subscriptions-transport-ws answered operations before init; graphql-ws closes with 4401.
          return connection.close(4401, 'Unauthorized: send connection_init first');
        }
        const payload = (typeof message.payload === 'object' && message.payload !== null ? message.payload : {}) as Record<string, unknown>;
        void start(id, payload);
        return;
      }
      case 'stop':
        if (typeof message.id === 'string' || typeof message.id === 'number') stop(String(message.id));
        return;
      case 'connection_terminate':
        return connection.close(1000, 'Terminated by the client');
      default:
        send({ type: 'error', payload: { message: 'Invalid message type', extensions: { code: 'BAD_USER_INPUT' } } });
    }
  });

  socket.on('close', () => {
    clearTimeout(initTimer);
    clearInterval(keepAlive);
    for (const id of [...operations.keys()]) stop(id);
  });
}
