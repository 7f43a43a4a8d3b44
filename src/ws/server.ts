import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  execute,
  GraphQLError,
  parse,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { SubscriptionServer } from 'subscriptions-transport-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AppDeps } from '../services/index.js';
import { buildContext, type Context, type Viewer } from '../graphql/context.js';
import { endedSessions, sessionStillValid } from '../services/account.sessions.js';
import { reportAndMask } from '../graphql/errors.js';
import { enforceQueryLimits } from '../graphql/limits.js';
import { Fanout, HIGH_WATER_BYTES } from './fanout.js';
import { formatResult, PUSH_TARGET, sharedSubscribe, type SubscribeArgs } from './shared-execution.js';

/** Parsed and validated documents kept, by query text. */
const DOCUMENT_CACHE_SIZE = 500;

export interface WebSocketServers {
  /** Closes every client connection and both servers. */
  close(): Promise<void>;
  clientCount(): number;
}

function authorizationOf(params: unknown): string | null {
  if (!params || typeof params !== 'object') return null;
  const p = params as Record<string, unknown>;
  const value = p.authorization ?? p.Authorization ?? (p.headers as Record<string, unknown> | undefined)?.authorization;
  return typeof value === 'string' ? value : null;
}

type Prepared = { document: DocumentNode; errors?: undefined } | { errors: readonly GraphQLError[]; document?: undefined };

/**
 * Parses (without source locations, to keep subscriptions small) and validates once per query text;
 * thousands of subscribers of one query share one document. The limits are checked every time
 * (they depend on the variables).
 */
function documentCache(schema: GraphQLSchema) {
  const cache = new Map<string, Prepared>();
  return (query: unknown): Prepared => {
    if (typeof query !== 'string') throw new GraphQLError('query must be a string', { extensions: { code: 'BAD_USER_INPUT' } });
    let prepared = cache.get(query);
    if (!prepared) {
      const document = parse(query, { noLocation: true });
      const errors = validate(schema, document);
      prepared = errors.length ? { errors } : { document };
      if (cache.size >= DOCUMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(query, prepared);
    }
    return prepared;
  };
}

function operationOf(document: DocumentNode, operationName?: string | null): OperationDefinitionNode | undefined {
  return document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === 'OperationDefinition' && (!operationName || d.name?.value === operationName),
  );
}

/**
 * Every `sessionCheckMs`, one query over the sessions of all authenticated connections: a connection
 * whose session was revoked (logout, on any replica), expired, or whose user was deactivated is closed
 * with 4403, ending its running subscriptions too.
 */
function periodicSessionCheck(deps: AppDeps, viewers: Map<WebSocket, Viewer>): NodeJS.Timeout {
  let running = false;
  const check = async () => {
    for (const ws of viewers.keys()) if (ws.readyState !== ws.OPEN) viewers.delete(ws);
    if (!viewers.size) return;
    const ended = await endedSessions(deps.orm.em, viewers.values());
    for (const [ws, viewer] of viewers) {
      if (!ended.has(viewer.sessionId)) continue;
      viewers.delete(ws);
      ws.close(4403, 'Forbidden: the session has ended');
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

const toGraphQLError = (err: unknown) => (err instanceof GraphQLError ? err : new GraphQLError((err as Error).message));

/**
 * Subscriptions on /graphql over both subprotocols: `graphql-transport-ws` (graphql-ws) and the
 * legacy `graphql-ws` (subscriptions-transport-ws, what GraphQL Playground speaks). Both build their
 * context with the same function as HTTP, authenticated from the connection_init payload, once per
 * connection: every operation of a socket shares it.
 */
export function attachWebSockets(httpServer: Server, schema: GraphQLSchema, deps: AppDeps): WebSocketServers {
  const modern = new WebSocketServer({ noServer: true });
  const legacy = new WebSocketServer({ noServer: true });
  const prepare = documentCache(schema);
  const fanout = new Fanout();
  const contexts = new WeakMap<WebSocket, Promise<Context>>();
  /** The authenticated connections, for the periodic session check. */
  const viewers = new Map<WebSocket, Viewer>();
  /** One context per connection (its viewer, EntityManager and loaders), re-checked on every subscribe. */
  const contextFor = async (socket: WebSocket, authorization: string | null, ip?: string): Promise<Context> => {
    const cached = contexts.get(socket);
    if (cached && (await sessionStillValid(deps.orm.em, (await cached).viewer))) return cached;
    const context = buildContext(deps, { authorization, ip, congested: () => socket.bufferedAmount > HIGH_WATER_BYTES });
    contexts.set(socket, context);
    const { viewer } = await context;
    if (viewer && socket.readyState === socket.OPEN) viewers.set(socket, viewer);
    else viewers.delete(socket);
    return context;
  };
  const sessionCheck = periodicSessionCheck(deps, viewers);
  /** Errors before a context exists (parse, limits) are reported under the connection's logger. */
  const scopeOf = (socket: WebSocket) => ({ logger: deps.logger.child({ component: 'ws' }), requestId: connectionIds.get(socket) ?? connectionId(socket) });
  const connectionIds = new WeakMap<WebSocket, string>();
  const connectionId = (socket: WebSocket) => {
    const id = randomUUID();
    connectionIds.set(socket, id);
    return id;
  };
  const limits = (document: DocumentNode, variables: unknown, operationName?: string | null) => {
    const operation = operationOf(document, operationName);
    if (operation) enforceQueryLimits(schema, document, operation, variables as Record<string, unknown>, deps.config.graphql);
  };

  useServer(
    {
      schema,
      subscribe: sharedSubscribe as never,
      onSubscribe: async (ctx, id, payload) => {
        try {
          const prepared = prepare(payload.query);
          if (prepared.errors) return prepared.errors;
          limits(prepared.document, payload.variables, payload.operationName);
          const contextValue = await contextFor(ctx.extra.socket, authorizationOf(ctx.connectionParams), ctx.extra.request.socket.remoteAddress);
          const args: SubscribeArgs = {
            schema,
            document: prepared.document,
            variableValues: payload.variables ?? undefined,
            operationName: payload.operationName ?? undefined,
            contextValue,
            [PUSH_TARGET]: { fanout, socket: ctx.extra.socket, id },
          };
          return args;
        } catch (err) {
          return [toGraphQLError(err)];
        }
      },
      onError: (ctx, _id, payload, errors) => errors.map((e) => reportAndMask(scopeOf(ctx.extra.socket), e, payload.operationName)),
      onNext: (_ctx, _id, _payload, args, result) => formatResult(result, args.contextValue as Context) as never,
    },
    modern,
    deps.config.graphql.keepAliveMs,
  );

  SubscriptionServer.create(
    {
      schema,
      execute: execute as never,
      subscribe: sharedSubscribe as never,
      keepAlive: deps.config.graphql.keepAliveMs,
      onConnect: (params: unknown) => ({ authorization: authorizationOf(params) }),
      onOperation: async (message: { payload: Record<string, unknown> }, params: Record<string, unknown> & { context?: { authorization?: string | null } }, socket: WebSocket) => {
        const prepared = prepare(message.payload.query);
        if (prepared.errors) throw { errors: prepared.errors.map((e) => reportAndMask(scopeOf(socket), e)) };
        limits(prepared.document, message.payload.variables, message.payload.operationName as string);
        const context = await contextFor(socket, params.context?.authorization ?? null);
        return { ...params, query: prepared.document, context, formatResponse: (result: ExecutionResult) => formatResult(result, context) };
      },
    },
    legacy,
  );

  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0];
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
    async close() {
      clearInterval(sessionCheck);
      for (const ws of [...modern.clients, ...legacy.clients]) ws.close(1001, 'Server shutting down');
      await Promise.all([modern, legacy].map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const ws of [...modern.clients, ...legacy.clients]) ws.terminate();
    },
  };
}
