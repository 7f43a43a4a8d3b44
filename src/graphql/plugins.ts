import type { ApolloServerPlugin } from '@apollo/server';
import type { DocumentNode, GraphQLSchema } from 'graphql';
import type { Context } from './context.js';
import { AppError } from '../errors.js';
import { reportError, withRequestId } from './errors.js';
import { enforceQueryLimits, type QueryLimits } from './limits.js';

/** Refuses too deep or too costly operations after parsing and validation, before execution. */
export function queryLimitsPlugin(getSchema: () => GraphQLSchema, limits: QueryLimits): ApolloServerPlugin<Context> {
  // Apollo reuses one parsed document per query text: what passed once passes again.
  const passed = new WeakMap<DocumentNode, Set<string>>();
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request }) {
          if (!operation) return;
          if (operation.operation === 'subscription') {
            throw new AppError('Subscriptions run over WebSocket on this path (graphql-transport-ws or graphql-ws), not over HTTP', 'BAD_USER_INPUT', {
              reason: 'SUBSCRIPTION_OVER_HTTP',
              http: { status: 400 },
            });
          }
          const key = `${operation.name?.value ?? ''}\n${JSON.stringify(request.variables ?? {})}`;
          if (passed.get(document)?.has(key)) return;
          enforceQueryLimits(getSchema(), document, operation, request.variables, limits);
          let set = passed.get(document);
          if (!set) passed.set(document, (set = new Set()));
          if (set.size < 100) set.add(key);
        },
      };
    },
  };
}

/**
 * Logs every error that formatError will mask, with the request id that the client also gets in
 * `extensions.requestId`, so a user's report can be matched to the log line.
 */
export function errorReportingPlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ contextValue, errors, operationName }) {
          for (const error of errors) reportError(contextValue, error, operationName);
        },
        async willSendResponse({ contextValue, response, request }) {
          response.http.headers.set('x-request-id', contextValue.requestId);
          if (response.body.kind !== 'single') return;
          // GraphQL over HTTP: with the legacy application/json response type, a request that fails
          // to parse, validate or coerce its variables SHOULD still be 200 (4xx only for
          // application/graphql-response+json).
          const json = !request.http?.headers.get('accept')?.includes('application/graphql-response+json');
          const errors = response.body.singleResult.errors;
          // Not for a malformed HTTP request (reason BAD_REQUEST: a query that is not a string, ...).
          const requestErrors = errors?.every((e) => e.extensions?.code === 'BAD_USER_INPUT' && e.extensions?.reason !== 'BAD_REQUEST');
          if (json && response.http.status === 400 && requestErrors && !('data' in response.body.singleResult)) {
            response.http.status = 200;
          }
          if (errors) response.body.singleResult.errors = errors.map((e) => withRequestId(e, contextValue.requestId));
        },
      };
    },
  };
}
