import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import type { Metrics } from '../metrics.js';
import type { Context } from './context.js';
import { formatError } from './errors.js';

/**
 * Counts every GraphQL operation over HTTP by name, type and outcome (OK or the code the client got,
 * as formatError maps it), times it, and counts refusals by rate limit and quota.
 */
export function metricsPlugin(metrics: Metrics): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      const started = performance.now();
      let first: GraphQLError | undefined;
      return {
        async didEncounterErrors({ errors }) {
          first ??= errors[0];
        },
        async willSendResponse({ operation, operationName }) {
          const labels = { operation: metrics.operationLabel(operationName), type: operation?.operation ?? 'unknown' };
          const formatted = first ? formatError(first.toJSON(), first) : undefined;
          const code = String(formatted?.extensions?.code ?? (first ? 'INTERNAL_SERVER_ERROR' : 'OK'));
          metrics.operations.inc({ ...labels, code });
          metrics.operationSeconds.observe(labels, (performance.now() - started) / 1000);
          if (code === 'RATE_LIMITED' || code === 'QUOTA_EXCEEDED') {
            metrics.refusals.inc({ code, quota: String(formatted?.extensions?.quota ?? '') });
          }
        },
      };
    },
  };
}
