import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  execute,
  GraphQLError,
  parse,
  subscribe,
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
import { buildContext } from './context.js';
import { formatError } from './errors.js';
import { enforceQueryLimits } from './limits.js';

/** A socket with more unsent bytes than this makes its subscriptions wait (and coalesce). */
const HIGH_WATER_BYTES = 1 << 20;

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

function prepare(schema: GraphQLSchema, deps: AppDeps, query: unknown, variables: unknown, operationName?: string | null) {
  if (typeof query !== 'string') throw new GraphQLError('query must be a string', { extensions: { code: 'BAD_USER_INPUT' } });
  const document: DocumentNode = parse(query);
  const errors = validate(schema, document);
  if (errors.length) return { errors };
  const operation = document.definitions.find(
    (d): d is OperationDefinitionNode => d.kind === 'OperationDefinition' && (!operationName || d.name?.value === operationName),
  );
  if (operation) enforceQueryLimits(schema, document, operation, variables as Record<string, unknown>, deps.config.graphql);
  return { document };
}

const formatResult = (result: ExecutionResult) =>
  result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : result;

/**
 * Subscriptions on /graphql over both subprotocols: `graphql-transport-ws` (graphql-ws) and the
 * legacy `graphql-ws` (subscriptions-transport-ws, what GraphQL Playground speaks). Both build their
 * context with the same function as HTTP, authenticated from the connection_init payload.
 */
export function attachWebSockets(httpServer: Server, schema: GraphQLSchema, deps: AppDeps): WebSocketServers {
  const modern = new WebSocketServer({ noServer: true });
  const legacy = new WebSocketServer({ noServer: true });
  const congestion = (socket: WebSocket) => () => socket.bufferedAmount > HIGH_WATER_BYTES;

  useServer(
    {
      schema,
      context: (ctx) =>
        buildContext(deps, {
          authorization: authorizationOf(ctx.connectionParams),
          ip: ctx.extra.request.socket.remoteAddress,
          congested: congestion(ctx.extra.socket),
        }) as never,
      onSubscribe: (_ctx, _id, payload) => {
        try {
          const prepared = prepare(schema, deps, payload.query, payload.variables, payload.operationName);
          if (prepared.errors) return prepared.errors;
        } catch (err) {
          return [err instanceof GraphQLError ? err : new GraphQLError((err as Error).message)];
        }
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
      onNext: (_ctx, _id, _payload, _args, result) => formatResult(result) as never,
    },
    modern,
    deps.config.graphql.keepAliveMs,
  );

  SubscriptionServer.create(
    {
      schema,
      execute: execute as never,
      subscribe: subscribe as never,
      keepAlive: deps.config.graphql.keepAliveMs,
      onConnect: (params: unknown) => ({ authorization: authorizationOf(params) }),
      onOperation: async (message: { payload: Record<string, unknown> }, params: Record<string, any>, socket: WebSocket) => {
        const prepared = prepare(schema, deps, message.payload.query, message.payload.variables, message.payload.operationName as string);
        if (prepared.errors) throw { errors: prepared.errors.map((e) => formatError(e.toJSON(), e)) };
        const context = await buildContext(deps, { authorization: params.context?.authorization, congested: congestion(socket) });
        return { ...params, context, formatResponse: formatResult };
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
      for (const ws of [...modern.clients, ...legacy.clients]) ws.close(1001, 'Server shutting down');
      await Promise.all([modern, legacy].map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const ws of [...modern.clients, ...legacy.clients]) ws.terminate();
    },
  };
}
