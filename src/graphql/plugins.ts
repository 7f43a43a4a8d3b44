import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLSchema } from 'graphql';
import type { Context } from './context.js';
import { isUnexpected } from './errors.js';
import { enforceQueryLimits, type QueryLimits } from './limits.js';

/** Refuses too deep or too costly operations after parsing and validation, before execution. */
export function queryLimitsPlugin(getSchema: () => GraphQLSchema, limits: QueryLimits): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request }) {
          if (!operation) return;
          enforceQueryLimits(getSchema(), document, operation, request.variables, limits);
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
          for (const error of errors) {
            if (!isUnexpected(error)) continue;
            contextValue.logger.error('unexpected error', {
              operationName,
              path: error.path?.join('.'),
              error: error.originalError ?? error,
            });
          }
        },
        async willSendResponse({ contextValue, response }) {
          response.http.headers.set('x-request-id', contextValue.requestId);
          if (response.body.kind !== 'single') return;
          for (const e of response.body.singleResult.errors ?? []) {
            if (e.extensions?.code === 'INTERNAL_SERVER_ERROR') {
              (e as { extensions: Record<string, unknown> }).extensions = { ...e.extensions, requestId: contextValue.requestId };
            }
          }
        },
      };
    },
  };
}
