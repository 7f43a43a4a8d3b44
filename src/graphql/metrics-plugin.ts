import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLError } from 'graphql';
import type { Metrics } from '../metrics.js';
import type { Context } from './context.js';
import { formatError } from './errors.js';

/** How an operation came: HTTP, graphql-transport-ws (graphql-ws), or the legacy `graphql-ws` subprotocol. */
export type Transport = 'http' | 'ws' | 'ws-legacy';

/** An operation as far as it was resolved: its definition's name and type (none when it did not parse). */
export interface OperationFacts {
  name?: string | null;
  type?: string;
}

const REFUSALS = new Set(['RATE_LIMITED', 'QUOTA_EXCEEDED']);

/**
 * Counts one GraphQL operation, whatever its transport, once its outcome is known (for a subscription:
 * once it is set up): by name (bounded by operationLabel), type and transport, with the code the client
 * got for the first error as formatError maps it (OK without errors), and its duration since `started`.
 * Each error answered RATE_LIMITED or QUOTA_EXCEEDED counts as one refusal: every refusal reaches the
 * client in exactly one operation's errors, so it is counted here once, over any transport.
 */
export function recordOperation(
  metrics: Metrics,
  transport: Transport,
  operation: OperationFacts | undefined,
  errors: readonly GraphQLError[] | undefined,
  started: number,
): void {
  const labels = { operation: metrics.operationLabel(operation?.name), type: operation?.type ?? 'unknown', transport };
  let code = 'OK';
  errors?.forEach((error, i) => {
    // Only the first error and the refusals need formatting (the others never show in a label).
    if (i > 0 && !REFUSALS.has(String(error.extensions?.code))) return;
    const extensions = formatError(error.toJSON(), error).extensions;
    const answered = String(extensions?.code ?? 'INTERNAL_SERVER_ERROR');
    if (i === 0) code = answered;
    if (REFUSALS.has(answered)) metrics.refusals.inc({ code: answered, quota: String(extensions?.quota ?? '') });
  });
  metrics.operations.inc({ ...labels, code });
  metrics.operationSeconds.observe(labels, (performance.now() - started) / 1000);
}

/** Counts every GraphQL operation over HTTP (recordOperation); WebSocket operations are counted in src/ws. */
export function metricsPlugin(metrics: Metrics): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      const started = performance.now();
      const errors: GraphQLError[] = [];
      return {
        async didEncounterErrors({ errors: encountered }) {
          errors.push(...encountered);
        },
        async willSendResponse({ operation, operationName }) {
          recordOperation(metrics, 'http', { name: operationName, type: operation?.operation }, errors, started);
        },
      };
    },
  };
}
