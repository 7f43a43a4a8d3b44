import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { execute, getOperationAST, GraphQLError, type ExecutionResult, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Context } from '../graphql/context.js';
import { createPreparer } from '../graphql/documents.js';
import { reportAndMask } from '../graphql/errors.js';
import { enforceQueryLimits } from '../graphql/limits.js';
import { recordOperation, type Transport } from '../graphql/metrics-plugin.js';
import { sessionChanges, type Viewer } from '../services/account.sessions.js';
import type { AppDeps } from '../services/index.js';
import { clientAddress, CLOSE, Connection } from './connection.js';
import { Fanout } from './fanout.js';
import { serveLegacy } from './legacy.js';
import { formatResult, formatStream, PUSH_TARGET, sharedSubscribe, type SubscribeArgs } from './shared-execution.js';
import { createVncProxy } from './vnc-proxy.js';

export interface WebSocketServers {
  /** Closes every client connection and both servers. */
  close(): Promise<void>;
  clientCount(): number;
  /** Running GraphQL subscriptions over every connection (for the metrics). */
  subscriptionCount(): number;
  /** Open VNC console sessions (the proxy on `/[WS_PROXY_PATH_PREFIX/]<token>/<vm>`). */
  vncSessionCount(): number;
}

function authorizationOf(params: unknown): string | null {
  if (!params || typeof params !== 'object') return null;
  const p = params as Record<string, unknown>;
  const value = p.authorization ?? p.Authorization ?? (p.headers as Record<string, unknown> | undefined)?.authorization;
  return typeof value === 'string' ? value : null;
}

/** When a graphql-transport-ws operation started and what it is, carried in its arguments to onOperation. */
const STARTED = Symbol('operation started');
type ModernArgs = SubscribeArgs & { [STARTED]?: { at: number; operation: OperationDefinitionNode } };

const toGraphQLError = (err: unknown) =>
  err instanceof GraphQLError ? err : new GraphQLError((err as Error)?.message ?? String(err), { originalError: err as Error });

/** A failure before execution: `{ errors }` thrown by `prepare`, or any error. */
const errorsOf = (err: unknown): GraphQLError[] =>
  err && typeof err === 'object' && 'errors' in err && Array.isArray((err as { errors: unknown }).errors)
    ? (err as { errors: GraphQLError[] }).errors
    : [toGraphQLError(err)];

/**
 * Every `sessionCheckMs`, one query over the sessions of all authenticated connections: a connection
 * whose session was revoked (logout, on any replica), expired, or whose user was deactivated is
 * closed with 4403, ending its running subscriptions too; one whose rights (admin, trusted) changed
 * has the subscriptions started under the old rights ended.
 */
function periodicSessionCheck(deps: AppDeps, connections: Set<Connection>): NodeJS.Timeout {
  let running = false;
  const check = async () => {
    const open = new Map<string, Connection[]>();
    const viewers: Viewer[] = [];
    for (const c of connections) {
      if (!c.granted) continue;
      if (!open.has(c.granted.sessionId)) viewers.push(c.granted);
      open.set(c.granted.sessionId, [...(open.get(c.granted.sessionId) ?? []), c]);
    }
    if (!viewers.length) return;
    const changes = await sessionChanges(deps.orm.em, viewers);
    for (const [sessionId, change] of changes) {
      for (const c of open.get(sessionId) ?? []) {
        if (change === 'ended') c.close(CLOSE.forbidden, 'Forbidden: the session has ended');
        else c.regrant(undefined); // rights changed: end what ran under them; the next operation reads them again
      }
    }
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void check()
      .catch((err) => deps.logger.warn('WebSocket session check failed', { error: (err as Error).message }))
      .finally(() => (running = false));
  }, deps.config.graphql.sessionCheckMs);
  timer.unref();
  return timer;
}

/**
 * Operations on /graphql over both subprotocols: `graphql-transport-ws` (graphql-ws) and the legacy
 * `graphql-ws` (served by ./legacy.ts). Both share one path for each operation: the document parsed
 * within the token limit and cached by bytes, the query limits, a fresh context per operation (built
 * by the same function as HTTP, so rights are read again each time), errors reported and masked as
 * on HTTP, messages no larger than an HTTP body, and a client that does not read is cut off.
 */
export function attachWebSockets(httpServer: Server, schema: GraphQLSchema, deps: AppDeps): WebSocketServers {
  const g = deps.config.graphql;
  const modern = new WebSocketServer({ noServer: true, maxPayload: g.wsMaxMessageBytes });
  const legacy = new WebSocketServer({ noServer: true, maxPayload: g.wsMaxMessageBytes });
  const prepare = createPreparer(schema, { maxBytes: g.documentCacheBytes, maxTokens: g.maxTokens });
  const fanout = new Fanout();
  const connections = new Set<Connection>();
  const bySocket = new WeakMap<WebSocket, Connection>();
  const sessionCheck = periodicSessionCheck(deps, connections);
  // This replica's own account changes take effect before the mutation that made them answers.
  const stopListening = deps.accountEvents.listen((change) => {
    for (const c of connections) {
      const viewer = c.granted;
      if (!viewer || viewer.user.id !== change.userId) continue;
      if (change.kind === 'sessions-ended') {
        const ended = change.sessionId ? viewer.sessionId === change.sessionId : viewer.sessionId !== change.keep;
        if (ended) c.close(CLOSE.forbidden, 'Forbidden: the session has ended');
      } else if (!change.isActive) {
        c.close(CLOSE.forbidden, 'Forbidden: the account was deactivated');
      } else if (change.isAdmin !== viewer.user.isAdmin || change.isTrusted !== viewer.user.isTrusted) {
        c.regrant(undefined);
      }
    }
  });

  const connect = (socket: WebSocket, request: IncomingMessage): Connection => {
    const connection = new Connection(socket, clientAddress(request, deps.config.http.trustProxy), deps);
    connections.add(connection);
    bySocket.set(socket, connection);
    socket.once('close', () => connections.delete(connection));
    return connection;
  };

  /** Parse, validate and limit; throws `{ errors }` (client errors) before any context is built. */
  const checked = (payload: { query?: unknown; variables?: unknown; operationName?: unknown }) => {
    const prepared = prepare(payload.query);
    if (prepared.errors) throw { errors: prepared.errors };
    const operationName = typeof payload.operationName === 'string' ? payload.operationName : undefined;
    const variables = (payload.variables && typeof payload.variables === 'object' ? payload.variables : undefined) as Record<string, unknown> | undefined;
    // As graphql-js and graphql-ws pick it; Apollo answers the same way over HTTP.
    const operation = getOperationAST(prepared.document, operationName);
    if (!operation) {
      const message = operationName ? `Unknown operation named "${operationName}".` : 'Must provide operation name if query contains multiple operations.';
      throw { errors: [new GraphQLError(message, { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } })] };
    }
    enforceQueryLimits(schema, prepared.document, operation, variables, g);
    return { document: prepared.document, operation, operationName, variables };
  };

  /** Admits operation `id` on the connection and builds its context; throws the refusal or the context's error. */
  const admitted = async (connection: Connection, id: string, operation: OperationDefinitionNode): Promise<Context> => {
    const refused = connection.admit(id, operation.operation);
    if (refused) throw refused;
    return connection.contextFor(id).catch((err) => {
      connection.release(id);
      throw err;
    });
  };

  /** Every operation over either subprotocol counts once (with HTTP's, in the same series). */
  const record = (transport: Transport, operation: OperationDefinitionNode | undefined, errors: readonly GraphQLError[] | undefined, started: number) => {
    if (deps.metrics) recordOperation(deps.metrics, transport, { name: operation?.name?.value, type: operation?.operation }, errors, started);
  };

  /** One legacy-protocol operation: a query's or mutation's result, or a subscription's stream (or the result that refused it). */
  const runLegacy = async (
    c: Connection,
    id: string,
    request: ReturnType<typeof checked>,
  ): Promise<{ result: ExecutionResult; contextValue: Context } | { stream: AsyncIterableIterator<unknown> }> => {
    const contextValue = await admitted(c, id, request.operation);
    const { document, operation, operationName, variables } = request;
    const args: SubscribeArgs = { schema, document, variableValues: variables, operationName, contextValue };
    if (operation.operation !== 'subscription') {
      try {
        return { result: await execute(args), contextValue };
      } finally {
        c.release(id);
      }
    }
    const outcome = await sharedSubscribe(args).catch((err) => {
      c.release(id);
      throw err;
    });
    if (!(Symbol.asyncIterator in outcome)) {
      c.release(id);
      return { result: outcome, contextValue };
    }
    const stream = outcome as AsyncGenerator<ExecutionResult>;
    c.track(id, contextValue, () => void stream.return(undefined));
    return { stream: formatStream(stream, contextValue) };
  };

  useServer(
    {
      schema,
      subscribe: (async (args: SubscribeArgs) => {
        const outcome = await sharedSubscribe(args);
        const target = args[PUSH_TARGET];
        const connection = target && bySocket.get(target.socket);
        if (connection && target && Symbol.asyncIterator in outcome) {
          connection.track(target.id, args.contextValue as Context, () => void outcome.return(undefined));
        }
        return outcome;
      }) as never,
      connectionInitWaitTimeout: g.wsInitTimeoutMs,
      onConnect: (ctx) => {
        const connection = bySocket.get(ctx.extra.socket);
        if (connection) connection.authorization = authorizationOf(ctx.connectionParams);
        return true;
      },
      onSubscribe: async (ctx, id, payload) => {
        const connection = bySocket.get(ctx.extra.socket)!;
        const started = performance.now();
        let operation: OperationDefinitionNode | undefined;
        try {
          const request = checked(payload);
          operation = request.operation;
          const contextValue = await admitted(connection, id, operation);
          const args: ModernArgs = {
            schema,
            document: request.document,
            variableValues: request.variables,
            operationName: request.operationName,
            contextValue,
            [PUSH_TARGET]: { fanout, socket: ctx.extra.socket, id },
            [STARTED]: { at: started, operation },
          };
          return args;
        } catch (err) {
          const errors = errorsOf(err);
          record('ws', operation, errors, started);
          return errors;
        }
      },
      // Once per operation, with the result of execute or of the subscription's set-up (never per event).
      onOperation: (_ctx, _id, _payload, args, result) => {
        const started = (args as ModernArgs)[STARTED];
        const outcome = result as ExecutionResult | AsyncIterable<unknown>; // graphql-ws awaited it
        if (started) record('ws', started.operation, Symbol.asyncIterator in outcome ? undefined : outcome.errors, started.at);
        return undefined;
      },
      onError: (ctx, _id, payload, errors) => {
        const connection = bySocket.get(ctx.extra.socket)!;
        return errors.map((e) => reportAndMask(connection.scope, e, payload.operationName));
      },
      onNext: (ctx, _id, _payload, args, result) => {
        bySocket.get(ctx.extra.socket)?.checkBuffered();
        return formatResult(result, args.contextValue as Context) as never;
      },
      onComplete: (ctx, id) => {
        const connection = bySocket.get(ctx.extra.socket);
        connection?.release(id);
      },
    },
    modern,
    g.keepAliveMs,
  );
  modern.on('connection', (socket: WebSocket, request: IncomingMessage) => void connect(socket, request));

  legacy.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const connection = connect(socket, request);
    serveLegacy(
      connection,
      {
        init: (c, payload) => {
          c.authorization = authorizationOf(payload);
          return true;
        },
        run: async (c, id, payload) => {
          const started = performance.now();
          let operation: OperationDefinitionNode | undefined;
          try {
            const request = checked(payload);
            operation = request.operation;
            const outcome = await runLegacy(c, id, request);
            record('ws-legacy', operation, 'result' in outcome ? outcome.result.errors : undefined, started);
            return 'result' in outcome ? { single: formatResult(outcome.result, outcome.contextValue) } : outcome;
          } catch (err) {
            record('ws-legacy', operation, errorsOf(err), started);
            throw err;
          }
        },
        formatErrors: (c, err) => errorsOf(err).map((e) => reportAndMask(c.scope, e)),
      },
      { keepAliveMs: g.keepAliveMs, initTimeoutMs: g.wsInitTimeoutMs },
    );
  });

  const vnc = createVncProxy(deps);
  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
    // The VNC console proxy, on the original websocket proxy's path shape (./vnc-proxy.ts).
    if (path !== '/graphql' && vnc.matches(path)) return vnc.handleUpgrade(req, socket, head);
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const target = protocols.includes('graphql-transport-ws') ? modern : protocols.includes('graphql-ws') ? legacy : undefined;
    if (path !== '/graphql' || !target) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    target.handleUpgrade(req, socket, head, (ws) => target.emit('connection', ws, req));
  });

  return {
    clientCount: () => modern.clients.size + legacy.clients.size,
    subscriptionCount: () => [...connections].reduce((n, c) => n + c.subscriptions.size, 0),
    vncSessionCount: () => vnc.sessionCount(),
    async close() {
      clearInterval(sessionCheck);
      stopListening();
      await vnc.close();
      for (const ws of [...modern.clients, ...legacy.clients]) ws.close(1001, 'Server shutting down');
      await Promise.all([modern, legacy].map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const ws of [...modern.clients, ...legacy.clients]) ws.terminate();
    },
  };
}
